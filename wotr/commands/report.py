"""The body of ``git wotr report``: the static status page (see :mod:`wotr.site`)."""

from __future__ import annotations

from pathlib import Path

from ..errors import EXIT_OK
from .common import echo, open_repo, policy_for


def run_report(*, out: Path, pattern: str, limit: int, policy_path: str | None) -> int:
    """The body of ``git wotr report`` (see its help in :mod:`wotr.cli`); the exit code."""
    from .. import site, status

    repo = open_repo()
    found = status.collect(repo, policy_for(policy_path, repo), pattern=pattern, limit=limit)
    site.write(found, out)
    verified = sum(1 for r in found.releases if r.verified)
    older = f", {found.not_checked} older not shown" if found.not_checked else ""
    echo(f"wrote {out}/index.html: {len(found.releases)} release(s), {verified} verified{older}")
    return EXIT_OK
