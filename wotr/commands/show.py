"""The body of ``git wotr show``: every claim on a commit, and why a line does not count."""

from __future__ import annotations

from ..errors import EXIT_OK
from .common import check_rev, echo, open_repo, policy_for


def run_show(*, rev: str, policy_path: str | None, as_json: bool) -> int:
    """The body of ``git wotr show`` (see its help in :mod:`wotr.cli`); the exit code."""
    from .. import render
    from .. import verify as verify_mod
    from ..errors import PolicyError

    check_rev(rev)
    repo = open_repo()
    try:
        pol = policy_for(policy_path, repo)
    except PolicyError as exc:
        if policy_path:
            raise
        echo(f"note: signatures not checked: {exc}", err=True)
        pol = None
    report = verify_mod.show_repo(repo, rev, pol)
    if as_json:
        echo(render.show_json(report))
    elif report.lines:
        echo(render.show_text(report))
    else:
        from .elsewhere import hint

        echo(render.show_text(report, hint(repo, report.commit)))
    return EXIT_OK
