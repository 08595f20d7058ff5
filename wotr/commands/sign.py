"""The body of ``git wotr sign``: hash, sign one claim, add it to the note, maybe push."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import EXIT_OK
from .common import check_rev, echo, open_repo, policy_for


def policy_to_check(policy_path: str | None, repo: Any) -> tuple[Any, str]:
    """The policy a new claim is checked against before it is written (found as ``verify``
    finds it), or None and why there is none: the claim is then signed unchecked, and the
    caller says so (:func:`warn_unchecked`) once it is signed."""
    from ..errors import PolicyError

    try:
        return policy_for(policy_path, repo), ""
    except PolicyError as exc:
        if policy_path:
            raise
        return None, exc.message


def warn_unchecked(reason: str) -> None:
    echo(f"warning: the claim was not checked against a policy ({reason})", err=True)


def run_sign(
    *,
    rev: str,
    role: str | None,
    key: str | None,
    allow_dirty: bool,
    push_remote: str | None,
    artifacts: Sequence[Path],
    policy_path: str | None = None,
    allow_uncounted: bool = False,
) -> int:
    """The body of ``git wotr sign`` (see its help in :mod:`wotr.cli`); the exit code."""
    from .. import sign as sign_mod
    from ..errors import BadInput

    check_rev(rev)
    repo = open_repo()
    if push_remote:
        from .. import sync

        if push_remote not in sync.remotes(repo):
            # `sign --push dist/app.tar.gz`: the optional REMOTE of --push swallowed an artifact.
            if not Path(push_remote).exists():
                raise BadInput(
                    f"--push {push_remote}: no such remote and no such file",
                    "name a remote from 'git remote', or put --push after the artifacts",
                )
            artifacts, push_remote = (Path(push_remote), *artifacts), ""
    if not artifacts:
        raise BadInput("no artifacts to sign", "name the files you built, e.g. dist/*")
    pol, no_policy = (None, "") if allow_uncounted else policy_to_check(policy_path, repo)
    # wotr's own files (an exported bundle in dist/, caught by dist/*) are left out with a note
    # rather than refused: every party's `sign dist/*` then signs the same claim.
    signed = sign_mod.sign(
        repo,
        list(artifacts),
        rev=rev,
        role=role,
        key=key,
        allow_dirty=allow_dirty,
        policy=pol,
        skip_own=True,
    )
    if no_policy:
        warn_unchecked(no_policy)
    for path in signed.skipped:
        echo(f"note: not signed: {path} is a wotr bundle, not an artifact", err=True)
    where = signed.tag.removeprefix("refs/tags/") if signed.tag else signed.commit[:12]
    verb = "signed" if signed.added else "already signed (identical claim present)"
    lines = [f"{verb}: {where} as {signed.role} with key {signed.fingerprint}"]
    lines += [f"  {s.name}  sha256:{s.sha256}" for s in signed.artifacts]
    echo("\n".join(lines))
    if signed.untagged_hint:
        tag = signed.untagged_hint[0]
        echo(
            f"note: this commit is tagged {tag}; claims made without --rev {tag} do not "
            f"count for 'verify --rev {tag}'",
            err=True,
        )
    if push_remote is not None:
        from .. import sync

        remote = push_remote or "origin"
        sync.push(repo, remote)
        echo(f"pushed claims to {remote}")
    return EXIT_OK
