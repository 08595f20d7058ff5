"""The build's workspace: a private checkout of one commit, its environment, the command run.

Split from :mod:`wotr.build` (see its docstring for the design): this module owns everything
that touches the file system and processes of a build, ``build`` owns recipe, artifacts and
the comparison with the note.

The build command is the one external program not started through :mod:`wotr._proc`: it must
stream its output while it runs and be killable as a whole process group, which ``_proc.run``
(capture to completion) does not offer.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import IO

from . import git
from ._record import record
from .errors import EnvironmentProblem, WotrError

TAIL_LINES = 20
_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})

# Variables a build inherits; everything else is dropped (and GIT_*, GNUPG*, WOTR_* never pass).
INHERITED_ENV = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)

# git settings for the checkout: no files written beside the temporary index, no per-user
# line-ending conversion. Passed as GIT_CONFIG_COUNT/KEY/VALUE, which win over every config file.
_CHECKOUT_CONFIG = (
    ("core.splitIndex", "false"),
    ("index.sparse", "false"),
    ("core.sparseCheckout", "false"),
    ("core.fsmonitor", "false"),
    ("core.untrackedCache", "false"),
    ("core.autocrlf", "false"),
    ("core.eol", "lf"),
    ("core.symlinks", "true"),
    ("core.attributesFile", os.devnull),
)


class Interrupted(WotrError):
    """Ctrl-C, SIGTERM or SIGHUP stopped the build; the checkout was removed (exit 130)."""

    exit_code = 130


# --- the build directory --------------------------------------------------------------------


def _private_root(root: Path) -> Path:
    with suppress(FileExistsError):
        root.mkdir(mode=0o700, parents=True)
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise EnvironmentProblem(
            f"build root {root} is not a directory of yours that only you can write to",
            "remove it, or pass --build-root DIR",
        )
    return root


@contextmanager
def _locked(path: Path, what: str) -> Iterator[None]:
    """An exclusive, non-blocking flock on ``path``, which is removed when released."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EnvironmentProblem(
                f"another wotr build is using {what}",
                "wait for it to finish, or pass --build-root DIR to build elsewhere",
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous holder removed the file in between: lock the new one
    try:
        yield
    finally:
        with suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Remove a file or a tree, including what a build made read-only."""

    def retry(func: Callable[[str], object], name: str, _exc: object) -> None:
        with suppress(OSError):
            os.chmod(os.path.dirname(name), 0o700)
            if not os.path.islink(name):
                os.chmod(name, 0o700)
        func(name)

    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=retry)  # onexc from Python 3.12 on


@record
class Workspace:
    root: Path
    src: Path  # the fixed build path; the command's working directory
    tmp: Path
    index: Path


@contextmanager
def workspace(root: Path, commit: str) -> Iterator[Workspace]:
    """Lock, create and in the end remove ``root/<commit12>`` and its companions."""
    base = _private_root(root)
    name = commit[:12]
    ws = Workspace(base, base / name, base / f"{name}.tmp", base / f"{name}.index")
    with _locked(base / f"{name}.lock", str(ws.src)):
        try:
            for path in (ws.src, ws.tmp, ws.index):
                remove_tree(path)  # left over by a build that was killed
            ws.src.mkdir(mode=0o755)
            ws.tmp.mkdir(mode=0o700)
            yield ws
        finally:
            for path in (ws.src, ws.tmp, ws.index):
                with suppress(OSError):
                    remove_tree(path)


def commit_time(repo: git.Repo, commit: str) -> int:
    raw = git.check(repo, "cat-file", "commit", commit)
    for line in raw.split("\n"):
        if not line:
            break
        if line.startswith("committer "):
            return int(line.rsplit(" ", 2)[1])
    raise git.GitError(f"commit {commit[:12]} has no committer line")


def checkout(repo: git.Repo, commit: str, ws: Workspace, epoch: int) -> None:
    """The commit's tree into ``ws.src``, read-only on the user's repository."""
    env = {
        "GIT_DIR": str(repo.git_dir),
        "GIT_INDEX_FILE": str(ws.index),
        "GIT_WORK_TREE": str(ws.src),
        "GIT_CONFIG_COUNT": str(len(_CHECKOUT_CONFIG)),
    }
    for i, (key, value) in enumerate(_CHECKOUT_CONFIG):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    git.check(repo, "read-tree", commit, env=env)
    git.check(repo, "checkout-index", "--all", "--force", env=env)
    remove_tree(ws.index)
    # Identical metadata on every machine: mtimes at SOURCE_DATE_EPOCH, modes from umask 022.
    for dirpath, dirnames, filenames in os.walk(ws.src):
        for entry in [*filenames, *dirnames]:
            path = os.path.join(dirpath, entry)
            os.utime(path, (epoch, epoch), follow_symlinks=False)
            if not os.path.islink(path):
                executable = os.stat(path).st_mode & 0o100
                os.chmod(path, 0o755 if executable or entry in dirnames else 0o644)
    os.utime(ws.src, (epoch, epoch))


def build_env(ws: Workspace, epoch: int) -> dict[str, str]:
    env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(
        {
            "SOURCE_DATE_EPOCH": str(epoch),
            "TZ": "UTC",
            "LC_ALL": "C.UTF-8",
            "LANG": "C.UTF-8",
            "TMPDIR": str(ws.tmp),
            "PWD": str(ws.src),
            # a git run by the build never finds a repository above the checkout
            "GIT_CEILING_DIRECTORIES": str(ws.root.parent),
        }
    )
    return env


# --- running the command --------------------------------------------------------------------


@record
class Output:
    """How the command's progress reaches the user."""

    stream: IO[bytes] | None = None  # echo every output line here (a terminal or --verbose)
    spinner: IO[str] | None = None  # else an elapsed-time line here (a terminal)


class _Terminated(Exception):
    """SIGTERM or SIGHUP arrived during a build; handled like Ctrl-C."""


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM and SIGHUP raise in the main thread like Ctrl-C; all three become Interrupted
    once the ``with`` blocks inside have cleaned up."""
    old = {}
    if threading.current_thread() is threading.main_thread():

        def handler(signum: int, _frame: FrameType | None) -> None:
            raise _Terminated(signal.Signals(signum).name)

        old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    except (KeyboardInterrupt, _Terminated) as exc:
        what = str(exc) or "Ctrl-C"
        raise Interrupted(
            f"interrupted by {what}: the build was stopped and its checkout removed"
        ) from None
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _kill_group(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
            if sig == signal.SIGKILL:
                return
    # the leader is gone; make sure nothing else of the group survives it
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_command(
    argv: Sequence[str], cwd: Path, env: dict[str, str], output: Output
) -> tuple[int, list[str], float]:
    """Run the build; returns (exit status, last lines of output, seconds)."""
    start = time.monotonic()
    # Interrupts are held back while the process starts: one arriving inside Popen, after the
    # fork, would leave a child nobody stops. The child gets the caller's signal mask back.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,  # its own group: Ctrl-C reaches us, and we stop all of it
            umask=0o022,
            preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_SETMASK, held),
        )
    except FileNotFoundError as exc:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        raise EnvironmentProblem(
            f"build command {argv[0]!r} is not installed or not on PATH ({env['PATH']})",
            "install it, or fix the recipe's command",
        ) from exc
    except BaseException as exc:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        if isinstance(exc, OSError):
            raise EnvironmentProblem(f"cannot start build command {argv[0]!r}: {exc}") from exc
        raise
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # a held-back interrupt raises here
        return _supervise(proc, argv, tail, output, start)
    except BaseException:
        _kill_group(proc)
        raise


def _supervise(
    proc: subprocess.Popen[bytes],
    argv: Sequence[str],
    tail: deque[str],
    output: Output,
    start: float,
) -> tuple[int, list[str], float]:
    def pump() -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            tail.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
            if output.stream is not None:
                with suppress(OSError, ValueError):
                    output.stream.write(raw)
                    output.stream.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    spin = "|/-\\"
    ticks = 0
    try:
        while True:
            try:
                status = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if output.spinner is not None:
                    ticks += 1
                    elapsed = time.monotonic() - start
                    output.spinner.write(
                        f"\r{spin[ticks % 4]} building: {' '.join(argv)[:50]} ({elapsed:.0f}s)"
                    )
                    output.spinner.flush()
    finally:
        if output.spinner is not None:
            output.spinner.write("\r\x1b[K")
            output.spinner.flush()
    # Anything the build left running in its group (daemons, stray children) goes with it.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    reader.join(timeout=5)
    if proc.stdout is not None:
        proc.stdout.close()
    return status, list(tail), time.monotonic() - start
