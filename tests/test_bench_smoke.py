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
    # Every registered case printed at least one row (3 prints 3a and 3b, 7 prints 7 and 7b).
    from bench.main import all_cases

    numbers = {n for n, _ in all_cases()}
    # a case registered as "20" prints rows 20a and 20b; one registered as "8b" prints 8b
    assert rows | {r.rstrip("abcdefgh") for r in rows} >= numbers, res.stdout
    assert rows >= {"20a", "20b", "21", "22", "23"}, res.stdout  # distribution scale, offline
    assert rows >= {"24", "25", "25b"}, res.stdout  # distribution scale, sync
    assert "8" in rows, res.stdout  # audit over many noted commits
    assert rows >= {"1s", "1m", "2s", "2k"}, res.stdout  # SSH signers (bench/ssh_cases.py)
    assert "ERROR" not in res.stdout
