"""What every command body shares: output, the error-to-exit-code map, the repository and policy."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from ..errors import EXIT_ENVIRONMENT, WotrError

TYPE_CHECKING = False  # typing itself is not imported at run time (verify's start-up)
if TYPE_CHECKING:
    from typing import Any

# click.echo strips these when the stream is not a terminal (click._compat._ansi_re).
_ANSI = r"\033\[[;?0-9]*[a-zA-Z]"


def echo(message: str, *, err: bool = False) -> None:
    """``click.echo(message, err=err)`` for a str message, without importing click."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:
        return
    try:
        tty = stream.isatty()
    except Exception:  # click's isatty() treats any failure as "not a terminal"
        tty = False
    out = message + "\n"
    if not tty and "\033" in out:
        out = re.sub(_ANSI, "", out)  # compiled only when there is an escape to strip
    stream.write(out)
    stream.flush()


def report_error(exc: BaseException, debug: bool) -> int:
    """Print the one-line error for an exception a command let out; its exit code (DESIGN §2)."""
    import traceback

    if isinstance(exc, WotrError):
        if debug:
            traceback.print_exc()
        echo(f"Error: {exc}", err=True)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        echo("Interrupted.", err=True)
        return 130
    if debug:
        traceback.print_exc()
    echo(
        f"Error: internal error: {type(exc).__name__}: {exc} (run with --debug and report it)",
        err=True,
    )
    return EXIT_ENVIRONMENT


def check_rev(rev: str | None) -> None:
    """Refuse an empty ``--rev`` (None: not given). It must never fall back to HEAD: a script
    whose tag variable came out empty would verify HEAD without the tag check (DESIGN §6 rule 6)."""
    from ..errors import BadInput

    if rev is not None and not rev.strip():
        raise BadInput(
            f"--rev {rev!r} is empty",
            "name a commit, tag or branch, or leave --rev out for HEAD",
        )


def open_repo() -> Any:
    """The repository around the working directory (exit 2 outside one)."""
    from .. import git

    return git.open_repo()


def repo_or_none() -> Any:
    """The repository around the working directory; None outside one (or without git at all)."""
    from .. import _fs, git

    if _fs.which("git") is None:
        here = Path.cwd()
        if any((d / ".git").exists() for d in (here, *here.parents)):
            return git.open_repo()  # in a repository without git: exit 3, git is missing
        return None
    try:
        return git.open_repo()
    except git.NotARepository:
        return None


def policy_for(explicit: str | None, repo: Any, threshold: int | None = None) -> Any:
    """The policy ``verify``/``show``/``build``/``sign`` use (DESIGN §5 search order)."""
    from .. import git, policy

    # git config is the third place looked at: ask git only when the first two are empty.
    config_value = None
    if repo and not explicit and not os.environ.get("WOTR_POLICY"):
        config_value = git.policy_setting(repo)
    if (
        repo
        and repo.config_trusted
        and not (explicit or config_value or os.environ.get("WOTR_POLICY"))
    ):
        follow_chain(repo)
    found = policy.find(
        explicit,
        top=repo.top if repo else None,
        common_dir=repo.common_dir if repo and repo.config_trusted else None,  # the pin's home
        config_value=config_value,
    )
    return found.with_threshold(threshold)


def follow_chain(repo: Any) -> None:
    """Move the pin along refs/wotr/policy when there is one (DESIGN §7; wotr/policycmd.py).
    A repository without a policy chain pays one stat, and imports nothing."""
    common = repo.common_dir
    if not (common / "refs/wotr/policy").exists():
        try:
            if b" refs/wotr/policy\n" not in (common / "packed-refs").read_bytes():
                return
        except OSError:
            return
    from .. import policycmd

    policycmd.refresh(repo, force=False)


def installer_chain(pol: Any, named_dir: Any, threshold: int | None) -> Any:
    """An installer that pinned its policy ('wotr policy pin') follows the policy chain: the
    chain files (*.wotr-policy) in the bundles directory and the chains carried inside the
    bundles that verify reads. Returns what :func:`wotr.offline.verify` calls with those
    carried chains (it returns the policy and notes), or None without a pin: then one stat,
    nothing imported, and any chain in a bundle is ignored (the policy is as given)."""
    import itertools
    from pathlib import Path

    state = Path(os.environ.get("WOTR_POLICY_STATE") or "/var/lib/wotr/policy")
    if not (state / "policy.pin").exists():
        return None
    from .. import bundle, policycmd

    directory = Path(named_dir) if named_dir else bundle.DEFAULT_DIR
    try:
        # one more than followed: policycmd.installer_follow refuses when there are too many
        # (junk files sorting first must not hide the real chain file)
        found = sorted(
            itertools.islice(
                directory.glob("*" + policycmd.CHAIN_SUFFIX), policycmd.MAX_CHAIN_FILES + 1
            )
        )
    except OSError:
        found = []

    def resolve(carried: Any) -> tuple[Any, tuple[str, ...]]:
        got = policycmd.installer_follow(pol, found, state, carried)
        return got.policy.with_threshold(threshold), got.notes

    return resolve
