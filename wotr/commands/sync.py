"""The bodies of ``git wotr fetch``, ``push`` and ``remote-setup``: sharing claims."""

from __future__ import annotations

from ..errors import EXIT_OK
from .common import echo, open_repo


def run_fetch(*, remote: str) -> int:
    """The body of ``git wotr fetch`` (see its help in :mod:`wotr.cli`); the exit code."""
    from .. import sync

    got = sync.fetch(open_repo(), remote)
    if got.remote_tip is None:
        echo(f"no claims on {remote} yet")
    elif got.merged.gained or got.merged.skipped:
        echo(f"fetched claims from {remote}: {got.merged.gained} commit(s) gained claims")
        if got.merged.skipped:
            echo(
                f"warning: {got.merged.skipped} note(s) on {remote} exceed the size limit, "
                "alone or merged with ours, and were not merged (ours kept as they were)",
                err=True,
            )
    else:
        echo(f"claims from {remote}: up to date")
    return EXIT_OK


def run_push(*, remote: str) -> int:
    """The body of ``git wotr push`` (see its help in :mod:`wotr.cli`); the exit code."""
    from .. import sync

    done = sync.push(open_repo(), remote)
    if done.tip is None:
        echo(f"no claims here or on {remote}: nothing to push")
    elif not done.sent:
        echo(f"{remote} already has every claim")
    else:
        retried = f" ({done.rejections} rejected, retried)" if done.rejections else ""
        echo(f"pushed claims to {remote}{retried}")
    return EXIT_OK


def run_remote_setup(*, remote: str | None) -> int:
    """The body of ``git wotr remote-setup`` (see its help in :mod:`wotr.cli`); the exit code."""
    from .. import sync

    for name in sync.setup_remotes(open_repo(), remote):
        echo(f"remote {name}: 'git fetch' now also fetches claims into {sync.tracking_ref(name)}")
    return EXIT_OK
