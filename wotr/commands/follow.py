"""The body of ``git wotr follow``: a rebuilder's loop (see :mod:`wotr.follow`)."""

from __future__ import annotations

import time
from pathlib import Path

from .common import echo, open_repo


def run_follow(
    *,
    remote: str | None,
    pattern: str,
    once: bool,
    interval: float,
    timeout: float,
    retries: int,
    push: bool,
    role: str | None,
    key: str | None,
    policy_path: str | None,
    build_root: Path | None,
    command: tuple[str, ...],
) -> int:
    """The body of ``git wotr follow`` (see its help in :mod:`wotr.cli`); the exit code."""
    from .. import follow

    repo = open_repo()
    name = remote or "origin"
    args: list[str] = ["--quiet"]
    for opt, value in (
        ("--role", role),
        ("--key", key),
        ("--policy", policy_path),
        ("--build-root", str(build_root) if build_root else None),
    ):
        if value:
            args += [opt, value]
    if push:
        args += ["--push", name]
    if command:
        args += ["--", *command]

    def say(line: str) -> None:
        echo(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}")

    return follow.follow(
        repo,
        remote=name,
        pattern=pattern,
        once=once,
        interval=interval,
        timeout=timeout,
        retries=retries,
        build_args=args,
        key=key,
        say=say,
    )
