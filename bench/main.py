"""``bench/run [--quick] [--reps N] [--only 1,4]``: run the cases, print one table.

Exit 0 when every case ran (and, with ``--strict``, met its target); 1 when a target was
missed under ``--strict``; 2 when a case failed to run at all.
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import subprocess
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from wotr import __version__

from . import fixtures as fx
from . import scale_offline, ssh_cases
from .cases import CASES, Ctx, Row, Sizes
from .cases_status import case_16
from .sync_cases import SYNC_CASES
from .timing import machine


def _versions() -> str:
    out = []
    for argv in (["git", "--version"], ["gpg", "--version"], ["openssl", "version"]):
        try:
            res = subprocess.run(argv, capture_output=True, check=False, text=True)
            out.append(res.stdout.splitlines()[0] if res.stdout else f"{argv[0]}: ?")
        except OSError:
            out.append(f"{argv[0]}: missing")
    return "; ".join(out)


def table(rows: Sequence[Row], *, judged: bool = True) -> str:
    """The table; with ``judged=False`` (smoke mode) no case is marked ok or MISS."""
    head = ("#", "case", "measured", "target", "result", "detail")
    cells = [head] + [
        (
            r.number,
            r.case,
            r.measured,
            r.target,
            ("ok" if r.ok else "MISS") if judged or r.measured == "ERROR" else "-",
            r.detail,
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head) - 1)]
    lines = []
    for n, c in enumerate(cells):
        lines.append(
            "  ".join(v.ljust(w) for v, w in zip(c[:-1], widths, strict=True)) + "  " + c[-1]
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * len(head[-1]))
    return "\n".join(lines)


def all_cases() -> list[tuple[str, Callable[[Ctx], Row | list[Row]]]]:
    """Every case ``bench/run`` knows, by number."""
    return [*CASES, ("16", case_16), *scale_offline.CASES, *SYNC_CASES, *ssh_cases.CASES]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 1 repetition, no timing")
    ap.add_argument("--reps", type=int, default=7, help="repetitions per case (default 7)")
    ap.add_argument("--only", default="", help="comma-separated case numbers, e.g. 1,4")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument(
        "--bin",
        metavar="DIR",
        help="put DIR first on PATH, e.g. a git-wotr of another build to compare with",
    )
    args = ap.parse_args(argv)
    only = {c.strip() for c in args.only.split(",") if c.strip()}
    root = fx.tempdir("wbench")
    keys = fx.Keys()
    ctx = Ctx(
        root=root,
        env=fx.bench_env(root),
        keys=keys,
        sizes=Sizes.quick() if args.quick else Sizes.full(),
        reps=1 if args.quick else max(1, args.reps),
        warmup=0 if args.quick else 1,
    )
    if args.bin:
        ctx.env["PATH"] = f"{Path(args.bin).resolve()}:{ctx.env['PATH']}"
    print(f"wotr {__version__} bench, {datetime.date.today()}, {machine()}")
    print(f"python {sys.version.split()[0]}; {_versions()}")
    print("mode: " + ("quick (smoke: sizes tiny, no timing targets)" if args.quick else
                      f"full, median of {ctx.reps} interleaved repetitions"))  # fmt: skip
    rows: list[Row] = []
    broken = False
    try:
        for number, case in all_cases():
            if only and number not in only:
                continue
            try:
                got = case(ctx)
            except Exception as exc:  # report and go on: one broken case must not hide the rest
                traceback.print_exc()
                rows.append(Row(number, f"case {number}", "ERROR", "-", False, str(exc)[:200]))
                broken = True
                continue
            rows.extend(got if isinstance(got, list) else [got])
            print(f"  done: case {number}", file=sys.stderr, flush=True)
    finally:
        keys.close()
        ssh_cases.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(table(rows, judged=not args.quick))
    if broken:
        return 2
    if args.quick:
        return 0
    return 1 if args.strict and not all(r.ok for r in rows) else 0
