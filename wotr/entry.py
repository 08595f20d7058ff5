"""The entry point (``git wotr``, ``wotr``, ``python -m wotr``): a click-free fast path.

``verify`` runs in package-manager hooks and CI gates on every install, where importing click
(~35 ms) would cost about as much as all of verify's own work; ``sign`` of many small artifacts
is measured against hashing them plus one gpg call. So :func:`main` parses a plain ``verify`` or
``sign`` command line itself, without importing click, and hands everything else (help,
unknown or repeated options, values click would convert differently, ``sign --push``, shell
completion) to the click CLI in :mod:`wotr.cli`, which stays the user interface. The parsers
accept only spellings that click parses to exactly the same values; both front ends then run the
same body from :mod:`wotr.commands` (``run_verify``/``run_sign``), print through the same ``echo``
and map errors in the same ``report_error``, so output and exit codes are identical
(tests/test_entry.py checks them side by side). This module imports :mod:`wotr.cli` (for what
it hands over), never the other way round.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .commands.common import echo, report_error
from .errors import EXIT_BAD_INPUT

TYPE_CHECKING = False  # typing itself is not imported at run time (verify's start-up)
if TYPE_CHECKING:
    from typing import Any, NoReturn

# --- the click-free parsers for verify and sign ------------------------------------------------

_VALUED = {"--rev", "--threshold", "--policy", "--digest", "--bundle", "--bundles"}
_REPEATABLE = {"--digest", "--bundle"}
_FLAGS = {"--strict", "--json"}


def _plain_threshold(value: str) -> bool:
    """``[1-9][0-9]{0,8}``: what click.IntRange(min=1) reads as exactly int(value)."""
    return 1 <= len(value) <= 9 and value.isascii() and value.isdigit() and value[0] != "0"


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
    if threshold is not None and not _plain_threshold(threshold):
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


_SIGN_VALUED = {"--rev", "--role", "--key", "--policy"}
_SIGN_FLAGS = {"--allow-dirty", "--allow-uncounted"}


def parse_sign(args: Sequence[str]) -> dict[str, Any] | None:
    """Keyword arguments of :func:`run_sign` for ``sign ARGS``, or None: ask click.

    The same rules as :func:`parse_verify`; ``--push`` (whose value is optional) always goes
    to click, and so does anything else unusual.
    """
    if any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ):
        return None
    single: dict[str, str] = {}
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
        if arg in _SIGN_FLAGS and arg not in flags:
            flags.add(arg)
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
        "allow_dirty": "--allow-dirty" in flags,
        "push_remote": None,
        "artifacts": tuple(Path(p) for p in positional),
        "policy_path": single.get("--policy"),
        "allow_uncounted": "--allow-uncounted" in flags,
    }


def _fast(args: Sequence[str]) -> tuple[Callable[..., int], dict[str, Any]] | None:
    rest = list(args)
    if rest[:1] == ["--debug"]:
        rest = rest[1:]
    if "--debug" in rest[1:]:
        return None
    if rest[:1] == ["verify"]:
        parsed = parse_verify(rest[1:])
        if parsed is None:
            return None
        from .commands.verify import run_verify

        return run_verify, parsed
    if rest[:1] == ["sign"]:
        parsed = parse_sign(rest[1:])
        if parsed is None:
            return None
        from .commands.sign import run_sign

        return run_sign, parsed
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
