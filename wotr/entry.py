"""The entry point (``git wotr``, ``wotr``, ``python -m wotr``) and the ``verify``/``sign`` bodies.

``verify`` runs in package-manager hooks and CI gates on every install, where importing click
(~35 ms) would cost about as much as all of verify's own work; ``sign`` of many small artifacts
is measured against hashing them plus one gpg call. So :func:`main` parses a plain ``verify`` or
``sign`` command line itself, without importing click, and hands everything else (help,
unknown or repeated options, values click would convert differently, ``sign --push``, shell
completion) to the click CLI in :mod:`wotr.cli`, which stays the user interface. The parsers
accept only spellings that click parses to exactly the same values; both paths then run the same
:func:`run_verify`/:func:`run_sign`, print through the same :func:`echo` and map errors in the
same :func:`report_error`, so output and exit codes are identical (tests/test_entry.py checks
them side by side).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from .errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, EXIT_NOT_VERIFIED, EXIT_OK, WotrError

# click.echo strips these when the stream is not a terminal (click._compat._ansi_re).
_ANSI = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")


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
    if not tty:
        out = _ANSI.sub("", out)
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


# --- shared by the click commands -------------------------------------------------------------


def repo_or_none() -> Any:
    """The repository around the working directory; None outside one (or without git at all)."""
    from . import _fs, git
    from .errors import BadInput

    if _fs.which("git") is None:
        here = Path.cwd()
        if any((d / ".git").exists() for d in (here, *here.parents)):
            return git.open_repo()  # in a repository without git: exit 3, git is missing
        return None
    try:
        return git.open_repo()
    except BadInput:
        return None


def policy_for(explicit: str | None, repo: Any, threshold: int | None = None) -> Any:
    """The policy ``verify``/``show``/``build`` use (DESIGN §5 search order)."""
    from . import git, policy

    # git config is the third place looked at: ask git only when the first two are empty.
    config_value = None
    if repo and not explicit and not os.environ.get("WOTR_POLICY"):
        config_value = git.config_get(repo, "wotr.policy")
    if repo and not explicit and not os.environ.get("WOTR_POLICY") and not config_value:
        _follow_chain(repo)
    found = policy.find(
        explicit,
        top=repo.top if repo else None,
        common_dir=repo.common_dir if repo else None,
        config_value=config_value,
    )
    return found.with_threshold(threshold)


def _follow_chain(repo: Any) -> None:
    """Move the pin along refs/wotr/policy when there is one (DESIGN §7; wotr/policycmd.py).
    A repository without a policy chain pays one stat, and imports nothing."""
    common = repo.common_dir
    if not (common / "refs/wotr/policy").exists():
        try:
            if b" refs/wotr/policy\n" not in (common / "packed-refs").read_bytes():
                return
        except OSError:
            return
    from . import policycmd

    policycmd.refresh(repo, force=False)


def _installer_chain(pol: Any, named_dir: str | Path | None, threshold: int | None) -> Any:
    """An installer that pinned its policy ('wotr policy pin') follows the policy chain files
    (*.wotr-policy) in the bundles directory. Without a pin: one stat, nothing imported."""
    state = Path(os.environ.get("WOTR_POLICY_STATE") or "/var/lib/wotr/policy")
    if not (state / "policy.pin").exists():
        return pol
    from . import bundle, policycmd

    directory = Path(named_dir) if named_dir else bundle.DEFAULT_DIR
    try:
        found = sorted(directory.glob("*" + policycmd.CHAIN_SUFFIX))[:64]
    except OSError:
        found = []
    return policycmd.installer_policy(pol, found, state).with_threshold(threshold)


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
    from . import hashing
    from ._threads import started

    artifacts = tuple(artifacts)
    # The artifacts are hashed (on every core) from now on, while Python imports the rest of
    # wotr and git and gpg do their part; an unreadable artifact is reported where it was.
    hashed = started(hashing.sha256_files, artifacts) if artifacts else None
    from . import render
    from . import verify as verify_mod

    repo = None if bundle_files or bundle_dir else repo_or_none()
    if repo is None:
        from . import bundle as bundle_mod
        from . import offline

        pol = policy_for(policy_path, None, threshold)
        named_dir = bundle_dir or os.environ.get("WOTR_BUNDLES") or None
        pol = _installer_chain(pol, named_dir, threshold)
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
    echo(render.verify_json(report) if as_json else render.verify_text(report))
    assert report.result is not None
    if not report.result.verified:
        from .bundle import sidecar

        cars = [str(sidecar(a)) for a in artifacts if sidecar(a).is_file()]
        if cars:
            echo(
                f"note: notes at {rev or 'HEAD'} were used; to use {cars[0]}, pass --bundle",
                err=True,
            )
    return EXIT_OK if report.result.verified else EXIT_NOT_VERIFIED


def run_sign(
    *,
    rev: str,
    role: str | None,
    key: str | None,
    allow_dirty: bool,
    push_remote: str | None,
    artifacts: Sequence[Path],
) -> int:
    """The body of ``git wotr sign`` (see its help in :mod:`wotr.cli`); the exit code."""
    from . import git
    from . import sign as sign_mod
    from .errors import BadInput

    repo = git.open_repo()
    if push_remote:
        from . import sync

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
    signed = sign_mod.sign(
        repo, list(artifacts), rev=rev, role=role, key=key, allow_dirty=allow_dirty
    )
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
        from . import sync

        remote = push_remote or "origin"
        sync.push(repo, remote)
        echo(f"pushed claims to {remote}")
    return EXIT_OK


# --- the click-free parsers for verify and sign ------------------------------------------------

_VALUED = {"--rev", "--threshold", "--policy", "--digest", "--bundle", "--bundles"}
_REPEATABLE = {"--digest", "--bundle"}
_FLAGS = {"--strict", "--json"}
_THRESHOLD = re.compile(r"[1-9][0-9]{0,8}")


def _click_path_ok(value: str, *, file_okay: bool, dir_okay: bool) -> bool:
    """Would click.Path(file_okay, dir_okay) accept ``value`` unchanged? (click.types.Path)"""
    if file_okay and dir_okay and os.access(value, os.R_OK):
        return True  # one system call for the common case (many artifacts)
    try:
        st = os.stat(value)
    except OSError:
        return True  # exists=False: a missing path passes through
    if not file_okay and stat.S_ISREG(st.st_mode):
        return False
    if not dir_okay and stat.S_ISDIR(st.st_mode):
        return False
    return os.access(value, os.R_OK)


def parse_verify(args: Sequence[str]) -> dict[str, Any] | None:
    """Keyword arguments of :func:`run_verify` for ``verify ARGS``, or None: ask click.

    None whenever click might do anything but call the command with these exact values:
    an unknown, repeated or malformed option, a value starting with '-', a threshold not in
    plain decimal, a path click.Path would refuse, or shell completion being requested.
    """
    if any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ):
        return None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {"--digest": [], "--bundle": []}
    flags: set[str] = set()
    positional: list[str] = []
    only_positional = False
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if only_positional or arg == "-" or not arg.startswith("-"):
            positional.append(arg)
            continue
        if arg == "--":
            only_positional = True
            continue
        name, eq, value = arg.partition("=")
        if name in _FLAGS and not eq:
            flags.add(name)
            continue
        if name not in _VALUED:
            return None
        if not eq:
            if i >= len(args) or args[i].startswith("-"):
                return None
            value = args[i]
            i += 1
        if name in _REPEATABLE:
            multi[name].append(value)
        elif name in single:
            return None
        else:
            single[name] = value
    threshold = single.get("--threshold")
    if threshold is not None and not _THRESHOLD.fullmatch(threshold):
        return None
    if not all(_click_path_ok(p, file_okay=True, dir_okay=True) for p in positional):
        return None
    if not all(_click_path_ok(p, file_okay=True, dir_okay=False) for p in multi["--bundle"]):
        return None
    bundles = single.get("--bundles")
    if bundles is not None and not _click_path_ok(bundles, file_okay=False, dir_okay=True):
        return None
    return {
        "rev": single.get("--rev"),
        "threshold": int(threshold) if threshold is not None else None,
        "policy_path": single.get("--policy"),
        "strict": "--strict" in flags,
        "as_json": "--json" in flags,
        "digests": tuple(multi["--digest"]),
        "bundle_files": tuple(Path(p) for p in multi["--bundle"]),
        "bundle_dir": Path(bundles) if bundles is not None else None,
        "artifacts": tuple(Path(p) for p in positional),
    }


_SIGN_VALUED = {"--rev", "--role", "--key"}


def parse_sign(args: Sequence[str]) -> dict[str, Any] | None:
    """Keyword arguments of :func:`run_sign` for ``sign ARGS``, or None: ask click.

    The same rules as :func:`parse_verify`; ``--push`` (whose value is optional) always goes
    to click, and so does anything else unusual.
    """
    if any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ):
        return None
    single: dict[str, str] = {}
    allow_dirty = False
    positional: list[str] = []
    only_positional = False
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if only_positional or arg == "-" or not arg.startswith("-"):
            positional.append(arg)
            continue
        if arg == "--":
            only_positional = True
            continue
        if arg == "--allow-dirty" and not allow_dirty:
            allow_dirty = True
            continue
        name, eq, value = arg.partition("=")
        if name not in _SIGN_VALUED or name in single:
            return None
        if not eq:
            if i >= len(args) or args[i].startswith("-"):
                return None
            value = args[i]
            i += 1
        single[name] = value
    if not all(_click_path_ok(p, file_okay=True, dir_okay=True) for p in positional):
        return None
    return {
        "rev": single.get("--rev", "HEAD"),
        "role": single.get("--role"),
        "key": single.get("--key"),
        "allow_dirty": allow_dirty,
        "push_remote": None,
        "artifacts": tuple(Path(p) for p in positional),
    }


def _fast(args: Sequence[str]) -> tuple[Callable[..., int], dict[str, Any]] | None:
    rest = list(args)
    if rest[:1] == ["--debug"]:
        rest = rest[1:]
    if "--debug" in rest[1:]:
        return None
    if rest[:1] == ["verify"]:
        parsed = parse_verify(rest[1:])
        return None if parsed is None else (run_verify, parsed)
    if rest[:1] == ["sign"]:
        parsed = parse_sign(rest[1:])
        return None if parsed is None else (run_sign, parsed)
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    fast = _fast(args)
    if fast is None:
        from .cli import main as cli_main

        return cli_main(argv)
    command, kwargs = fast
    try:
        code = command(**kwargs)
    except (EOFError, KeyboardInterrupt):
        # What click does with these inside a command (click.BaseCommand.main, then cli.main).
        echo("", err=True)
        echo("Aborted.", err=True)
        code = EXIT_BAD_INPUT
    except Exception as exc:
        code = report_error(exc, "--debug" in args)
    if argv is None:
        _exit_now(code)
    return code


def _exit_now(code: int) -> NoReturn:
    """End a command-line run: flush what was printed, then leave without the interpreter's
    teardown (freeing every module and object one by one: ~10-14 ms of each verify, which an
    installer hook pays per package). Everything wotr opened is closed by then (with-blocks and
    finally clauses); its threads are finished daemon threads."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:  # None: the descriptor was closed when Python started
            with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
                stream.flush()
    os._exit(code)
