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
import subprocess
from collections.abc import Callable, Mapping, Sequence

from ._record import record
from .errors import EnvironmentProblem

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
    if max_stdout is not None:
        return _run_capped(argv, cwd=cwd, env=env, limit=max_stdout)
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

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
