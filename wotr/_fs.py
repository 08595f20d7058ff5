"""Private temporary directories and files, and a PATH lookup, for the verify path.

``tempfile`` and ``shutil`` would do, but together they import ``random``, ``bz2``, ``lzma`` and
``fnmatch`` (~5 ms of every verify, which an installer hook pays per package). What wotr needs of
them is small: a directory only its owner can enter, with an unguessable name; a file nobody
else can open; removing a tree it made; finding ``git`` on PATH.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TYPE_CHECKING = False  # typing itself is not imported at run time (verify's start-up)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO, Self

_ATTEMPTS = 100


_root: list[str] = []


def temp_root() -> str:
    """The first of ``$TMPDIR``, ``$TEMP``, ``$TMP``, ``/tmp``, ``/var/tmp`` where a file can be
    created (tried, as ``tempfile.gettempdir`` does: an unusable ``$TMPDIR`` in a hook's
    environment must not stop a verify). Chosen once per process."""
    if not _root:
        candidates = [os.environ.get(var) for var in ("TMPDIR", "TEMP", "TMP")]
        found = next((d for d in [*candidates, "/tmp", "/var/tmp"] if d and _usable(d)), "/tmp")
        _root.append(os.path.abspath(found))
    return _root[0]


def _usable(directory: str) -> bool:
    path = _name(directory, ".wotr-probe-")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError:
        return False
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(path)
    return True


def _name(parent: str | os.PathLike[str], prefix: str) -> str:
    return os.path.join(os.path.abspath(parent), prefix + os.urandom(8).hex())


def private_dir(prefix: str, parent: str | os.PathLike[str] | None = None) -> Path:
    """A new directory (mode 0700, unguessable name) under ``parent`` (default: temp_root())."""
    base = temp_root() if parent is None else parent
    for _ in range(_ATTEMPTS):
        path = _name(base, prefix)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return Path(path)
    raise FileExistsError(f"no free temporary directory name in {base}")


def anonymous_file() -> BinaryIO:
    """A read-write file with no name (deleted at once), for a child's stderr."""
    base = temp_root()
    tmpfile = getattr(os, "O_TMPFILE", 0)
    if tmpfile:
        try:
            fd = os.open(base, tmpfile | os.O_RDWR | os.O_CLOEXEC, 0o600)
        except OSError:
            pass  # a file system without O_TMPFILE: a named file, unlinked at once
        else:
            return open(fd, "w+b")
    for _ in range(_ATTEMPTS):
        path = _name(base, "wotr-")
        try:
            fd = os.open(
                path,
                os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0),
                0o600,
            )
        except FileExistsError:
            continue
        os.unlink(path)
        return open(fd, "w+b")
    raise FileExistsError(f"no free temporary file name in {base}")


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove ``path`` and everything in it, never following a symbolic link; errors ignored.

    Only for directories wotr made with :func:`private_dir` (no other user can change them
    while they are removed)."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        entries = []
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                remove_tree(entry.path)
            else:
                os.unlink(entry.path)
    with contextlib.suppress(OSError):
        os.rmdir(path)


class PrivateHome:
    """A private temporary directory (:func:`private_dir`) that an object works in, removed
    with it: ``with Verifier(...) as v`` or ``close()``. gpg's and ssh-keygen's verifiers."""

    def __init__(self, prefix: str, parent: str | os.PathLike[str] | None = None) -> None:
        self._home = private_dir(prefix, parent)

    @contextlib.contextmanager
    def _setting_up(self) -> Iterator[None]:
        """Around the rest of a subclass's ``__init__``: an error there removes the directory
        (no caller holds the half-made object, so no ``close()`` would ever come)."""
        try:
            yield
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        remove_tree(self._home)


def which(program: str, path: str | None = None) -> str | None:
    """The first executable file named ``program`` on ``path`` (default: $PATH), as
    ``shutil.which`` finds it."""
    search = path if path is not None else os.environ.get("PATH", os.defpath)
    for directory in search.split(os.pathsep):
        candidate = os.path.join(directory or ".", program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


class NotRegular(OSError):
    """A file that wotr reads whole is not a plain file of bounded size; ``why`` says what it is."""

    def __init__(self, path: str | os.PathLike[str], why: str) -> None:
        super().__init__(why)
        self.path = path
        self.why = why


def _kind(mode: int) -> str:
    import stat

    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path: str | os.PathLike[str], limit: int, *, follow_symlinks: bool) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes, read once.

    Decided before reading anything: a symbolic link (unless ``follow_symlinks``; then what it
    names must be a regular file), a pipe, a device, a directory or a file over ``limit`` bytes
    raises :class:`NotRegular` — never a hang on a FIFO, never a read of /dev/zero into memory.
    A file that grows while it is read stops at ``limit + 1`` bytes and is refused too.
    OSError (missing, unreadable) passes through.
    """
    import errno
    import stat

    st = os.stat(path) if follow_symlinks else os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegular(path, _kind(st.st_mode))
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegular(path, "a symbolic link") from exc
        raise
    try:
        st = os.fstat(fd)  # what was opened, whatever the path names by now
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(path, _kind(st.st_mode))
        if st.st_size > limit:
            raise NotRegular(path, f"{st.st_size} bytes, over the limit of {limit}")
        chunks: list[bytes] = []
        size = 0
        while size <= limit and (chunk := os.read(fd, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise NotRegular(path, f"over the limit of {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)
