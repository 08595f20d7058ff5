"""The body of ``git wotr init``: create or review threshold.toml, pin it, set up refspecs."""

from __future__ import annotations

from ..errors import EXIT_OK, BadInput
from .common import echo, open_repo


def run_init(*, threshold: int | None) -> int:
    """The body of ``git wotr init`` (see its help in :mod:`wotr.cli`); the exit code."""
    from .. import init as init_mod

    done = init_mod.init(open_repo(), threshold=threshold)
    echo(f"{'created' if done.created else 'found'} {done.path}")
    if done.loaded is not None:
        for s in done.loaded.signers:
            roles = ", ".join(sorted(s.roles)) if s.roles else "any role"
            echo(f"  {s.name} ({roles}): {', '.join(sorted(s.fingerprints))}")
        echo(f"  threshold {done.loaded.threshold}")
        echo(f"pinned: {done.pinned}")
    for remote in done.remotes:
        echo(f"remote {remote}: 'git fetch' now also fetches claims")
    if done.loaded is None:
        # Not pinned is not success (docs/exit-codes.md): a script running init must see it.
        raise BadInput(
            f"{done.path} is not pinned yet: {done.problem}",
            "edit it (see threshold.example.toml), then run 'git wotr init' again",
        )
    return EXIT_OK
