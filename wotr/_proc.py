"""The one place in wotr that starts external programs.

``git.py`` and ``gpg.py`` are thin layers over :func:`run`; they turn failures into
:class:`~wotr.errors.WotrError` with a hint. The environment is cleaned here: of the inherited
``GIT_*`` variables only those a user sets on purpose pass (identity, ssh, the config files and
``git -c`` settings, and the repository that ``git --git-dir``/``--work-tree`` or the user named);
``git.py`` then forces what wotr must control (no replace objects, no grafts, no transports).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence

from ._record import record
from .errors import EnvironmentProblem

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess

# GIT_* variables a user may legitimately set for the commands wotr runs on their behalf.
_GIT_KEEP = frozenset(
    {
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_ASKPASS",
        "GIT_TERMINAL_PROMPT",
        "GIT_ALLOW_PROTOCOL",  # the user's own limit on fetch/push (git.py sets it elsewhere)
        "GIT_EXEC_PATH",
        # the user's config files and command-line settings (git -c, --config-env)
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_SYSTEM",
        "GIT_CONFIG_NOSYSTEM",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        # the repository the user named (git --git-dir, --work-tree; a hook's environment)
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_COMMON_DIR",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_QUARANTINE_PATH",
        "GIT_CEILING_DIRECTORIES",
        "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    }
)


def _kept(name: str) -> bool:
    if not name.startswith("GIT_") or name in _GIT_KEEP:
        return True
    for prefix in ("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"):  # the pairs GIT_CONFIG_COUNT counts
        if name.startswith(prefix) and name[len(prefix) :].isdigit():
            return True
    return False


@record
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes
    truncated: bool = False  # stdout went past ``max_stdout``: the process was killed

    @property
    def err_line(self) -> str:
        """The last non-empty line of stderr, for one-line error messages."""
        lines = [ln for ln in self.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        return lines[-1].strip() if lines else f"exit status {self.returncode}"


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if _kept(k)}
    env["LC_ALL"] = "C"
    env.pop("LANGUAGE", None)
    if extra:
        env.update(extra)
    return env


def _not_found(argv: Sequence[str], exc: OSError) -> EnvironmentProblem:
    if isinstance(exc, FileNotFoundError):
        return EnvironmentProblem(
            f"{argv[0]} is not installed or not on PATH",
            f"install it (Debian: apt-get install {argv[0] if argv[0] != 'gpg' else 'gnupg'})",
        )
    return EnvironmentProblem(f"cannot run {argv[0]}: {exc}")


def start(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with pipes on stdin and stdout, for a request/response protocol
    (``git cat-file --batch``); the caller writes, reads and waits. stderr is discarded."""
    import subprocess

    try:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=clean_env(env),
        )
    except OSError as exc:
        raise _not_found(argv, exc) from exc


def run(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
    max_stdout: int | None = None,
) -> Result:
    """Run ``argv`` to completion and capture its output; never raises on a non-zero exit.

    ``max_stdout``: read at most that many bytes plus one, then kill the process and return
    ``truncated=True`` — a hostile object (a note of gigabytes) never reaches memory whole.
    """
    if not pass_fds and _here(cwd):
        closing = _inheritable_fds()
        if closing is not None:
            return _spawned(argv, clean_env(env), input, max_stdout, closing)
    if max_stdout is not None:
        return _run_capped(argv, cwd=cwd, env=env, limit=max_stdout)
    import subprocess

    try:
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            env=clean_env(env),
            pass_fds=tuple(pass_fds),
            check=False,
        )
    except OSError as exc:
        raise _not_found(argv, exc) from exc
    return Result(proc.returncode, proc.stdout, proc.stderr)


def _run_capped(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    limit: int,
) -> Result:
    import subprocess

    from . import _fs

    with _fs.anonymous_file() as err:  # stderr to a file: no second pipe to drain
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                env=clean_env(env),
            )
        except OSError as exc:
            raise _not_found(argv, exc) from exc
        assert proc.stdout is not None
        chunks: list[bytes] = []
        size = 0
        truncated = False
        with proc.stdout:
            while chunk := os.read(proc.stdout.fileno(), 1 << 20):
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    truncated = True
                    proc.kill()
                    break
        returncode = proc.wait()
        err.seek(0)
        stderr = err.read(1 << 16)
    data = b"".join(chunks)
    return Result(returncode, data[: limit + 1], stderr, truncated)


def run_logged(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None,
    log: int,
    timeout: float,
    tick: float = 0.0,
    on_tick: Callable[[float], None] | None = None,
) -> int | None:
    """Run ``argv`` in a session of its own, stdout and stderr to the file descriptor ``log``.

    Its exit status, or None when it ran past ``timeout`` seconds: then the whole session
    (the build and whatever it started) is killed. ``on_tick(elapsed)`` every ``tick`` seconds,
    for a progress line. Ctrl-C kills the session too, then propagates.
    """
    import subprocess
    import time

    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=clean_env(),
            start_new_session=True,
        )
    except OSError as exc:
        raise _not_found(argv, exc) from exc
    start = time.monotonic()
    next_tick = start + tick if tick > 0 else None
    try:
        while True:
            now = time.monotonic()
            deadline = start + timeout
            wait = deadline - now
            if next_tick is not None:
                wait = min(wait, next_tick - now)
            try:
                return proc.wait(timeout=max(wait, 0.01))
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                if now >= deadline:
                    _stop_session(proc)
                    return None
                if next_tick is not None and now >= next_tick:
                    if on_tick is not None:
                        on_tick(now - start)
                    next_tick += tick
    except BaseException:
        _stop_session(proc)
        raise


def _stop_session(proc: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """SIGTERM to the session (a wotr build then stops its own command and cleans up), then
    SIGKILL to whatever is left of it after ``grace`` seconds."""
    import signal
    import subprocess

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# --- running a program without the subprocess module (the verify path) ------------------------
#
# ``subprocess`` costs a verify ~5 ms of imports (selectors, locale, signal…) that an installer
# hook pays per package. What ``run`` needs of it -- start a program with pipes, feed stdin,
# drain stdout and stderr, wait -- is os.posix_spawn and poll. It is used when the program is
# to run in the current directory (posix_spawn cannot change it on Python 3.11) and no file
# descriptor is handed over; otherwise ``subprocess`` does the work as before. The child gets
# what subprocess gives it: stdin from the input or /dev/null, no other inherited descriptor
# (subprocess's close_fds), SIGPIPE back to its default (its restore_signals).

_STDERR_KEPT = 1 << 20


def _here(cwd: str | os.PathLike[str] | None) -> bool:
    if cwd is None:
        return True
    try:
        return os.path.samestat(os.stat(cwd), os.stat("."))
    except OSError:
        return False


def _inheritable_fds() -> list[int] | None:
    """Descriptors above 2 that a child would inherit (wotr's own are close-on-exec; these
    came from whoever started wotr); None when /proc cannot say (a chroot without it)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    found = []
    for name in names:
        fd = int(name)
        if fd > 2:
            with contextlib.suppress(OSError):  # the descriptor listdir itself used
                if os.get_inheritable(fd):
                    found.append(fd)
    return found


def _executable(program: str, env: Mapping[str, str]) -> str:
    """``program`` found as execvpe finds it, on the PATH the child will have."""
    if os.sep in program:
        return program
    from . import _fs

    found = _fs.which(program, env.get("PATH", os.defpath))
    if found is None:
        raise FileNotFoundError(2, "not found on PATH", program)
    return found


def _spawned(
    argv: Sequence[str],
    env: dict[str, str],
    input: bytes | None,
    limit: int | None,
    closing: list[int],
) -> Result:
    import select

    # signal's C half, loaded with the interpreter: the signal module's enums cost ~3 ms
    try:
        import _signal as signal  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # pragma: no cover - CPython always has it
        import signal

    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r, in_w = os.pipe() if input else (-1, -1)
    actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
        (os.POSIX_SPAWN_DUP2, in_r, 0)
        if input
        else (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, out_w, 1),
        (os.POSIX_SPAWN_DUP2, err_w, 2),
        *((os.POSIX_SPAWN_CLOSE, fd) for fd in closing),
    ]
    try:
        pid = os.posix_spawn(
            _executable(argv[0], env),
            list(argv),
            env,
            file_actions=actions,
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )
    except OSError as exc:
        for fd in (out_r, out_w, err_r, err_w, in_r, in_w):
            if fd >= 0:
                os.close(fd)
        raise _not_found(argv, exc) from exc
    for fd in (out_w, err_w, in_r):
        if fd >= 0:
            os.close(fd)
    out: list[bytes] = []
    err: list[bytes] = []
    sizes = {out_r: 0, err_r: 0}
    pending = memoryview(input or b"")
    truncated = False
    poller = select.poll()
    open_fds = {out_r, err_r}
    poller.register(out_r, select.POLLIN)
    poller.register(err_r, select.POLLIN)
    if input:
        os.set_blocking(in_w, False)
        poller.register(in_w, select.POLLOUT)
        open_fds.add(in_w)
    try:
        while open_fds:
            for fd, _event in poller.poll():
                if fd == in_w:
                    try:
                        pending = pending[os.write(in_w, pending[: 1 << 16]) :]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        pending = pending[:0]  # the program stopped reading: as subprocess does
                    if not pending:
                        poller.unregister(in_w)
                        os.close(in_w)
                        open_fds.discard(in_w)
                    continue
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    poller.unregister(fd)
                    os.close(fd)
                    open_fds.discard(fd)
                    continue
                sizes[fd] += len(chunk)
                if fd == out_r:
                    out.append(chunk)
                    if limit is not None and sizes[fd] > limit:
                        truncated = True
                        os.kill(pid, signal.SIGKILL)
                        break
                elif sizes[fd] <= _STDERR_KEPT:
                    err.append(chunk)
            if truncated:
                break
    except BaseException:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        raise
    finally:
        for fd in open_fds:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
    stdout = b"".join(out)
    if limit is not None:
        stdout = stdout[: limit + 1]
    return Result(os.waitstatus_to_exitcode(status), stdout, b"".join(err), truncated)
