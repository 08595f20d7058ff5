"""The body of ``git wotr export``: every claim on a commit as a self-contained bundle."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import EXIT_OK
from .common import check_rev, echo, open_repo


def run_export(*, rev: str, output: str, policy_chain: bool = True) -> int:
    """The body of ``git wotr export`` (see its help in :mod:`wotr.cli`); the exit code."""
    from .. import bundle

    check_rev(rev)
    exported = bundle.export(open_repo(), rev, policy_chain=policy_chain)
    if output == "-":
        sys.stdout.buffer.write(exported.data)
        sys.stdout.buffer.flush()
    else:
        bundle.write(exported.data, Path(output))
    b = exported.bundle
    where = b.tag.removeprefix("refs/tags/") if b.tag else b.commit[:12]
    dest = "stdout" if output == "-" else output
    echo(
        f"exported {len(b.claims)} claim(s) on {where} ({len(b.subjects)} artifact digest(s))"
        f" to {dest}",
        err=True,
    )
    if b.chain is not None:
        echo("included the project's policy chain (refs/wotr/policy)", err=True)
    if exported.chain_problem:
        echo(f"warning: {exported.chain_problem}", err=True)
    if exported.skipped:
        echo(f"note: left out {exported.skipped} line(s) that are not wotr claims", err=True)
    return EXIT_OK
