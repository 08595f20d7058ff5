"""``follow``: a rebuilder's service loop — fetch, rebuild every new release, sign, push, wait.

Each release (a tag matching a pattern) is built at most once per commit by this clone: the
outcome is kept in ``<git common dir>/wotr/follow/state.json`` (written atomically, after the
build's own atomic sign), so a restarted follower continues where it stopped. A build that
fails is tried again on later polls up to ``retries`` times, then reported and left alone. The
build itself is ``git wotr build --rev refs/tags/TAG --sign [--push REMOTE]`` in a process
session of its own, killed whole when it runs past ``timeout``; its output goes to a log file
per release. A tag that moved since it was first seen is never rebuilt (it is reported: moving a
release tag is what an attacker does, DESIGN §6 rule 6).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import _fs, _proc, git, gpg, notes, status, sync
from . import claim as claim_mod
from ._record import record
from .errors import (
    EXIT_BAD_INPUT,
    EXIT_ENVIRONMENT,
    EXIT_NOT_VERIFIED,
    EXIT_OK,
    BadInput,
    SyncError,
    WotrError,
)

DEFAULT_PATTERN = "v*"
DEFAULT_INTERVAL = 300.0  # seconds between polls
DEFAULT_TIMEOUT = 3600.0  # seconds for one build
DEFAULT_RETRIES = 3  # failed builds of one release before it is left alone
PROGRESS_EVERY = 60.0  # seconds between "still building" lines
STATE_VERSION = 1
MAX_STATE = 64 << 20  # bytes of state.json read (about 300,000 releases)

DONE = ("reproduced", "differs", "claimed")


@record
class Outcome:
    tag: str
    commit: str
    result: str  # reproduced | differs | failed | timeout | moved | gave-up | environment
    seconds: float = 0.0
    attempts: int = 0
    log: str = ""


def _dir(repo: git.Repo) -> Path:
    return repo.common_dir / "wotr" / "follow"


class State:
    """tag -> {"commit", "result", "attempts"}; read once, saved after every release."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tags: dict[str, dict[str, Any]] = {}
        try:
            raw = _fs.read_regular(path, MAX_STATE, follow_symlinks=False)
        except FileNotFoundError:
            return
        except _fs.NotRegular as exc:
            raise BadInput(f"{path} is not a follow state file ({exc})", "move it away") from None
        try:
            doc = json.loads(raw)
            tags = doc["tags"]
            if doc.get("version") != STATE_VERSION or not isinstance(tags, dict):
                raise ValueError("unknown version")
        except (ValueError, KeyError, TypeError) as exc:
            raise BadInput(
                f"{path} is not a follow state file ({exc})",
                "move it away; releases already claimed are then rebuilt once",
            ) from None
        self.tags = {str(k): v for k, v in tags.items() if isinstance(v, dict)}

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = json.dumps({"version": STATE_VERSION, "tags": self.tags}, indent=1, sort_keys=True)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        # O_EXCL|O_NOFOLLOW: never write through a link left in the state's place.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data + "\n")
        os.replace(tmp, self.path)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    import fcntl

    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BadInput(
                f"another 'git wotr follow' is running in this repository ({directory}/lock)",
                "run one follower per clone",
            ) from None
        yield
    finally:
        os.close(fd)


def shown(text: str) -> str:
    """A tag name (the project's text) as a log line may carry it: anything but printable
    ASCII, a C1 control, a raw byte that is not UTF-8 (a CSI on an 8-bit terminal), a bidi
    control, becomes a visible escape."""
    return "".join(ch if " " <= ch <= "~" else ascii(ch)[1:-1] for ch in text)


def _log_name(tag: str, commit: str) -> str:
    # The tag name is the project's text: only a safe part of it reaches a file name.
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", tag)[:60].lstrip(".") or "tag"
    return f"{safe}-{commit[:12]}.log"


def fetch_tags(repo: git.Repo, remote: str, say: Callable[[str], None]) -> None:
    """New tags from ``remote``; a tag that differs from ours is refused by git and reported."""
    res = git.run(repo, "fetch", "--no-tags", remote, "refs/tags/*:refs/tags/*")
    if res.returncode == 0:
        return
    err = res.stderr.decode("utf-8", "replace")
    clobbered = re.findall(r"\[rejected\]\s+(\S+)\s+->\s+\S+\s+\(would clobber existing tag\)", err)
    if clobbered:
        for tag in clobbered:
            say(f"warning: tag {shown(tag)} on {shown(remote)} differs from ours; not followed")
        return
    raise SyncError(f"cannot fetch tags from {remote}: {res.err_line}")


def build_one(
    repo: git.Repo,
    tag: str,
    commit: str,
    *,
    build_args: Sequence[str],
    timeout: float,
    say: Callable[[str], None],
) -> tuple[str, float, Path]:
    """Run the build of one release; (result, seconds, log file)."""
    logs = _dir(repo) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if logs.is_symlink():  # logs would land wherever the link points
        raise BadInput(f"{logs} is a symbolic link", "remove it; follow makes its own directory")
    log = logs / _log_name(tag, commit)
    argv = [
        sys.executable,
        "-m",
        "wotr",
        "build",
        "--rev",
        f"refs/tags/{tag}",
        "--sign",
        *build_args,
    ]
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    start = time.monotonic()
    try:
        code = _proc.run_logged(
            argv,
            cwd=repo.cwd,
            log=fd,
            timeout=timeout,
            tick=PROGRESS_EVERY,
            on_tick=lambda t: say(f"  {shown(tag)}: still building ({t:.0f} s, log {log})"),
        )
    finally:
        os.close(fd)
    seconds = time.monotonic() - start
    result = {
        None: "timeout",
        EXIT_OK: "reproduced",
        EXIT_NOT_VERIFIED: "differs",
        EXIT_ENVIRONMENT: "environment",
    }.get(code, "failed")
    return result, seconds, log


def claimed_by(repo: git.Repo, own: tuple[str, bytes] | None, tag: str, commit: str) -> bool:
    """Does the note of ``commit`` hold a claim for ``tag`` whose signature verifies with our
    own key? (A line that only names our key as keyid does not: that would let anyone stop
    this rebuilder from building a release.)"""
    if own is None:
        return False
    fpr, public = own
    try:
        revision = git.resolve(repo, f"refs/tags/{tag}")
        note = notes.read(repo, commit)
    except WotrError:
        return False
    if notes.too_large(note):
        return False
    candidates: list[claim_mod.Envelope] = []
    for _, raw in notes.split(note).candidates:
        try:
            env = claim_mod.parse_line(raw)
            parsed = claim_mod.parse_payload(env.payload)
        except claim_mod.ClaimError:
            continue
        if (
            env.keyid.upper() == fpr
            and parsed.commit == commit
            and parsed.tree == revision.tree
            and parsed.ref == revision.tag
        ):
            candidates.append(env)
        if len(candidates) >= 16:  # a hint we check, bounded: a flood costs nothing more
            break
    if not candidates:
        return False
    with gpg.Verifier(public) as verifier:
        for env in candidates:
            (res,) = verifier.check(claim_mod.pae(env.payload), [env.sig])
            if res.ok and res.fingerprint == fpr:
                return True
    return False


def poll(
    repo: git.Repo,
    *,
    remote: str | None,
    pattern: str,
    timeout: float,
    retries: int,
    build_args: Sequence[str],
    say: Callable[[str], None],
    key: str | None = None,
) -> list[Outcome]:
    """One round: fetch, then build every release not built yet. What happened to each."""
    if remote is not None:
        sync.fetch(repo, remote)  # checks the remote's name first
        fetch_tags(repo, remote, say)
    directory = _dir(repo)
    state = State(directory / "state.json")
    outcomes: list[Outcome] = []
    own: list[tuple[str, bytes] | None] = []  # our key, looked up when first needed
    for tag, commit, _ in status._tags(repo, pattern):
        name = shown(tag)
        entry = state.tags.get(tag)
        attempts = int(entry.get("attempts", 0)) if entry else 0
        if entry is not None and entry.get("commit") != commit:
            if entry.get("result") != "moved":
                say(
                    f"{name}: MOVED from {str(entry.get('commit'))[:12]} to {commit[:12]}; "
                    "not rebuilt (a release tag should never move)"
                )
            outcomes.append(Outcome(tag, commit, "moved", attempts=attempts))
            entry["result"] = "moved"
            state.save()
            continue
        if entry is not None and entry.get("result") in DONE:
            continue
        if entry is not None and entry.get("result") == "gave-up":
            continue
        # Also after a build that did not finish here (a crash between its sign and our state
        # save, a timeout or failure after signing): signing again could give this signer a
        # second digest (rule 7) and lose its vote.
        if not own:
            own.append(gpg.own_public(key or git.config_get(repo, "user.signingkey")))
        if claimed_by(repo, own[0], tag, commit):
            say(f"{name}: already claimed with this signer's key; not rebuilt")
            state.tags[tag] = {"commit": commit, "result": "claimed", "attempts": attempts}
            state.save()
            if entry is not None and "--push" in build_args:
                _push_again(repo, build_args, name, say)
            continue
        if attempts >= retries:
            say(f"{name}: gave up after {attempts} failed build(s); see the logs")
            state.tags[tag] = {"commit": commit, "result": "gave-up", "attempts": attempts}
            state.save()
            outcomes.append(Outcome(tag, commit, "gave-up", attempts=attempts))
            continue
        say(f"{name}: building {commit[:12]} (attempt {attempts + 1} of {retries})")
        state.tags[tag] = {"commit": commit, "result": "building", "attempts": attempts + 1}
        state.save()
        result, seconds, log = build_one(
            repo, tag, commit, build_args=build_args, timeout=timeout, say=say
        )
        state.tags[tag]["result"] = result
        state.save()
        words = {
            "reproduced": "reproduced, signed" + (", pushed" if "--push" in build_args else ""),
            "differs": "DIFFERS from earlier claims; dissent signed"
            + (", pushed" if "--push" in build_args else ""),
            "failed": "build FAILED",
            "timeout": f"build TIMED OUT after {timeout:.0f} s",
            "environment": "environment problem (gpg or git missing?)",
        }[result]
        say(f"{name}: {words} in {seconds:.1f} s (log {log})")
        outcomes.append(Outcome(tag, commit, result, seconds, attempts + 1, str(log)))
        if result == "environment":
            break
    return outcomes


def _push_again(
    repo: git.Repo, build_args: Sequence[str], name: str, say: Callable[[str], None]
) -> None:
    """The push an interrupted ``build --sign --push`` may not have done."""
    args = list(build_args)
    remote = args[args.index("--push") + 1]
    try:
        sync.push(repo, remote)
    except WotrError as exc:
        say(f"{name}: warning: cannot push the claim to {shown(remote)}: {shown(exc.message)}")
    else:
        say(f"{name}: pushed claims to {shown(remote)}")


def exit_code(outcomes: Sequence[Outcome]) -> int:
    """For ``--once``: 3 environment, 2 a release failed/moved/was given up, 1 one differs."""
    results = {o.result for o in outcomes}
    if "environment" in results:
        return EXIT_ENVIRONMENT
    if results & {"failed", "timeout", "moved", "gave-up"}:
        return EXIT_BAD_INPUT
    if "differs" in results:
        return EXIT_NOT_VERIFIED
    return EXIT_OK


def follow(
    repo: git.Repo,
    *,
    remote: str | None,
    pattern: str = DEFAULT_PATTERN,
    once: bool = False,
    interval: float = DEFAULT_INTERVAL,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    build_args: Sequence[str] = (),
    key: str | None = None,
    say: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    if interval <= 0 or timeout <= 0 or retries < 1:
        raise BadInput("--interval and --timeout must be positive and --retries at least 1")
    directory = _dir(repo)
    directory.mkdir(parents=True, exist_ok=True)
    if directory.is_symlink():
        raise BadInput(f"{directory} is a symbolic link", "remove it; follow makes its own")
    with _locked(directory):
        while True:
            outcomes = poll(
                repo,
                remote=remote,
                pattern=pattern,
                timeout=timeout,
                retries=retries,
                build_args=build_args,
                say=say,
                key=key,
            )
            if once:
                if not outcomes:
                    say("nothing new to build")
                return exit_code(outcomes)
            if any(o.result == "environment" for o in outcomes):
                return EXIT_ENVIRONMENT
            sleep(interval)
