"""The body of ``git wotr build``: rebuild in a fresh checkout, compare, maybe sign and push."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import EXIT_NOT_VERIFIED, EXIT_OK
from .common import check_rev, echo, open_repo, policy_for


def run_build(
    *,
    rev: str,
    globs: tuple[str, ...],
    do_sign: bool,
    role: str | None,
    key: str | None,
    push_remote: str | None,
    policy_path: str | None,
    out: Path | None,
    compare_dir: Path | None,
    build_root: Path | None,
    verbose: bool,
    quiet: bool,
    command: tuple[str, ...],
    allow_uncounted: bool = False,
) -> int:
    """The body of ``git wotr build`` (see its help in :mod:`wotr.cli`); the exit code."""
    from .. import build as build_mod
    from ..errors import PolicyError

    check_rev(rev)
    repo = open_repo()
    pol = None
    no_policy = ""
    try:
        pol = policy_for(policy_path, repo)
    except PolicyError as exc:
        if policy_path:
            raise
        no_policy = exc.message
    tty = sys.stderr.isatty()
    output = build_mod.Output(
        stream=sys.stderr.buffer if verbose or (tty and not quiet) else None,
        spinner=sys.stderr if tty and quiet and not verbose else None,
    )
    try:
        built = build_mod.build(
            repo,
            rev=rev,
            command=command,
            artifacts=globs,
            root=build_root or build_mod.DEFAULT_ROOT,
            out=out,
            output=output,
        )
    except build_mod.BuildFailed as exc:
        if exc.tail and not exc.shown:
            echo(f"last {len(exc.tail)} line(s) of the build's output:", err=True)
            for line in exc.tail:
                echo(f"  | {line}", err=True)
        raise
    comp = build_mod.compare(repo, built, pol, no_policy_reason=no_policy, compare_dir=compare_dir)
    for line in build_mod.comparison_text(built, comp):
        echo(line)
    for line in build_mod.summary_text(built, comp):
        echo(line)
    if do_sign:
        from .sign import warn_unchecked

        # The same check as sign's: a claim the policy would not count is refused.
        checked = None if allow_uncounted else pol
        # Exactly what was built and reported: the commit resolved once, the digests shown.
        signed = build_mod.sign_built(repo, built, role=role, key=key, policy=checked)
        if checked is None and not allow_uncounted:
            warn_unchecked(no_policy)
        kind = " (a dissenting claim)" if comp.differs else ""
        verb = "signed" if signed.added else "already signed (identical claim present)"
        echo(
            f"{verb}{kind}: as {signed.role} with key {signed.fingerprint} on commit "
            f"{signed.commit}"
        )
        if push_remote is not None:
            from .. import sync

            remote = push_remote or "origin"
            sync.push(repo, remote)
            echo(f"pushed claims to {remote}")
    elif push_remote is not None:
        echo("note: nothing to push without --sign", err=True)
    return EXIT_NOT_VERIFIED if comp.differs else EXIT_OK
