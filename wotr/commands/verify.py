"""The body of ``git wotr verify``: in a repository from its notes, else from bundles."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import EXIT_NOT_VERIFIED, EXIT_OK
from .common import check_rev, echo, installer_chain, policy_for, repo_or_none


def run_verify(
    *,
    rev: str | None,
    threshold: int | None,
    policy_path: str | None,
    strict: bool,
    as_json: bool,
    digests: Sequence[str],
    bundle_files: Sequence[Path],
    bundle_dir: Path | None,
    artifacts: Sequence[Path],
) -> int:
    """The body of ``git wotr verify`` (see its help in :mod:`wotr.cli`); the exit code."""
    from .. import hashing
    from .._threads import started

    check_rev(rev)
    artifacts = tuple(artifacts)
    # The artifacts are hashed (on every core) from now on, while Python imports the rest of
    # wotr and git and gpg do their part; an unreadable artifact is reported where it was.
    hashed = started(hashing.sha256_files, artifacts) if artifacts else None
    from .. import render
    from .. import verify as verify_mod

    repo = None if bundle_files or bundle_dir else repo_or_none()
    if repo is None:
        from .. import bundle as bundle_mod
        from .. import offline

        pol = policy_for(policy_path, None, threshold)
        named_dir = bundle_dir or os.environ.get("WOTR_BUNDLES") or None
        chain = installer_chain(pol, named_dir, threshold)  # the policy chain (DESIGN §7)
        sources = offline.Sources(
            bundles=tuple(bundle_files),
            directory=Path(named_dir) if named_dir else bundle_mod.DEFAULT_DIR,
            directory_required=named_dir is not None,
        )
        outcome = offline.verify(
            pol,
            artifacts=artifacts,
            digests=tuple(digests),
            sources=sources,
            rev=rev,
            strict=strict,
            hashed=hashed,
            chain=chain,
        )
        echo(offline.to_json(outcome) if as_json else offline.text(outcome))
        return EXIT_OK if outcome.verified else EXIT_NOT_VERIFIED
    pol = policy_for(policy_path, repo, threshold)
    report = verify_mod.verify_repo(
        repo,
        rev or "HEAD",
        pol,
        artifacts=artifacts,
        digests=tuple(digests),
        strict=strict,
        hashed=hashed,
    )
    from .._record import replace

    report = replace(report, repository=str(repo.git_dir))  # say which one was used
    if as_json:
        echo(render.verify_json(report))
    elif report.note_lines:
        echo(render.verify_text(report))
    else:
        from .elsewhere import hint

        echo(render.verify_text(report, hint(repo, report.commit)))
    assert report.result is not None
    if not report.result.verified:
        from ..bundle import sidecar

        cars = [str(sidecar(a)) for a in artifacts if sidecar(a).is_file()]
        if cars:
            echo(
                f"note: notes at {rev or 'HEAD'} were used; to use {cars[0]}, pass --bundle",
                err=True,
            )
    return EXIT_OK if report.result.verified else EXIT_NOT_VERIFIED
