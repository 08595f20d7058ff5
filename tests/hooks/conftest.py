"""Fixtures for the package-manager hook tests; see hookutil.py for how to swap the verifier."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from tests.hooks.hookutil import STUB, Verifier


@pytest.fixture
def verifier(tmp_path: Path) -> Verifier:
    cmd = f"{shlex.quote(sys.executable)} {shlex.quote(str(STUB))}"
    return Verifier(command=cmd, log=tmp_path / "verifier-calls.jsonl")
