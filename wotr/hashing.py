"""sha256 of artifact files: streamed, several files hashed at once on all cores.

hashlib releases the GIL while it digests large buffers, so threads give real parallelism.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import BadInput

TYPE_CHECKING = False  # typing itself is not imported at run time (verify's start-up)
if TYPE_CHECKING:
    from typing import Any

_BUFFER = 1024 * 1024
# Up to this size, and while hashlib is not imported yet, CPython's own sha256 module does the
# work: importing it costs ~0.1 ms where hashlib costs ~5 ms (OpenSSL's start-up), a large
# share of a one-artifact verify; beyond it OpenSSL's faster code repays its import.
SMALL = 512 * 1024


_BUILTIN = {"sha1": ("_sha1",), "sha256": ("_sha256", "_sha2"), "sha512": ("_sha512", "_sha2")}


def hasher(name: str, size: int) -> Callable[..., Any]:
    """A constructor of hash ``name`` (sha1, sha256, sha512) suited to ``size`` bytes of input;
    the digests are the same either way."""
    if size <= SMALL and "hashlib" not in sys.modules:
        for module in _BUILTIN[name]:  # Python 3.11 / 3.12+
            try:
                return getattr(__import__(module), name)  # type: ignore[no-any-return]
            except (ImportError, AttributeError):
                pass
    import hashlib

    return getattr(hashlib, name)  # type: ignore[no-any-return]


def sha256_for(size: int) -> Callable[..., Any]:
    return hasher("sha256", size)


def sha256_hex(data: bytes) -> str:
    return str(sha256_for(len(data))(data).hexdigest())


def sha256_file(path: Path) -> str:
    try:
        # O_NONBLOCK: opening a FIFO must not hang before fstat can refuse it (harmless for
        # regular files, whose reads never block).
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb", buffering=0) as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise BadInput(f"artifact {path} is not a regular file")
            h = sha256_for(st.st_size)()
            # Sized to the file: a fresh 1 MiB buffer per small artifact costs more than hashing it.
            buf = bytearray(max(1, min(_BUFFER, st.st_size + 1)))
            view = memoryview(buf)
            while n := f.readinto(buf):
                h.update(view[:n])
            digest: str = h.hexdigest()
            return digest
    except IsADirectoryError as exc:
        raise BadInput(f"artifact {path} is a directory", "name the files, e.g. dist/*") from exc
    except OSError as exc:
        raise BadInput(
            f"cannot read artifact {path}: {exc.strerror}", "check the path and its permissions"
        ) from exc


def sha256_files(paths: Sequence[Path]) -> list[str]:
    """Digests in the order of ``paths``; the first unreadable file raises :class:`BadInput`.

    One thread per core takes the next file until none is left (no future per file: with
    thousands of small artifacts the bookkeeping would cost more than the hashing).
    """
    if len(paths) <= 1:
        return [sha256_file(p) for p in paths]
    import threading

    digests: list[str] = [""] * len(paths)
    errors: dict[int, BaseException] = {}
    queue = iter(range(len(paths)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                i = next(queue, None)
            if i is None:
                return
            try:
                digests[i] = sha256_file(paths[i])
            except BaseException as exc:  # re-raised below, in the order of paths
                errors[i] = exc

    workers = [
        threading.Thread(target=work, daemon=True)
        for _ in range(min(len(paths), os.cpu_count() or 1))
    ]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    if errors:
        raise errors[min(errors)]
    return digests
