"""``bench/run --quick`` still runs every case and prints the table (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quick_runs_every_case() -> None:
    res = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    rows = {line.split()[0] for line in res.stdout.splitlines() if line[:1].isdigit()}
    ssh = {"1s", "1m", "2s", "2k"}  # bench/ssh_cases.py
    assert rows == {"1", "2", "3a", "3b", "4", "5", "6", "7", "7b", "16", *ssh}, res.stdout
    assert "ERROR" not in res.stdout
