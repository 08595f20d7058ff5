"""demo/policy-chain.sh runs end to end (docs/policy.md, issue 11)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_policy_chain_demo() -> None:
    bindir = Path(sys.executable).parent
    if shutil.which("git-wotr", path=str(bindir)) is None:
        pytest.skip("console scripts not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "WOTR_", "GNUPG"))}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    res = subprocess.run(
        ["bash", str(ROOT / "demo" / "policy-chain.sh")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "serial 3" in res.stdout and "VERIFIED" in res.stdout
