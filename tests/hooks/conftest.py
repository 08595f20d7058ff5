"""Fixtures for the package-manager hook tests.

`verifier` is the ONE place to change to test the hooks against the real `wotr verify`
instead of the stub (see testing.sandbox.Verifier).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from testing.sandbox import Verifier

STUB = Path(__file__).resolve().parent / "stub_verifier.py"


@pytest.fixture
def verifier(tmp_path: Path) -> Verifier:
    cmd = f"{shlex.quote(sys.executable)} {shlex.quote(str(STUB))}"
    return Verifier(command=cmd, log=tmp_path / "verifier-calls.jsonl")
