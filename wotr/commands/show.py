"""The body of ``git wotr show``: every claim on a commit, and why a line does not count."""

from __future__ import annotations

from ..errors import EXIT_OK
from .common import echo, open_repo, policy_for


def run_show(*, rev: str, policy_path: str | None, as_json: bool) -> int:
    """The body of ``git wotr show`` (see its help in :mod:`wotr.cli`); the exit code."""
    from .. import render
    from .. import verify as verify_mod
    from ..errors import PolicyError

    repo = open_repo()
    try:
        pol = policy_for(policy_path, repo)
    except PolicyError as exc:
        if policy_path:
            raise
        echo(f"note: signatures not checked: {exc}", err=True)
        pol = None
    report = verify_mod.show_repo(repo, rev, pol)
    echo(render.show_json(report) if as_json else render.show_text(report))
    return EXIT_OK
