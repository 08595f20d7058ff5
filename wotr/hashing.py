"""sha256 of artifact files: streamed, several files hashed at once on all cores.

hashlib releases the GIL while it digests large buffers, so threads give real parallelism.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from .errors import BadInput

_BUFFER = 1024 * 1024


def sha256_file(path: Path) -> str:
    try:
        # O_NONBLOCK: opening a FIFO must not hang before fstat can refuse it (harmless for
        # regular files, whose reads never block).
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb", buffering=0) as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise BadInput(f"artifact {path} is not a regular file")
            h = hashlib.sha256()
            # Sized to the file: a fresh 1 MiB buffer per small artifact costs more than hashing it.
            buf = bytearray(max(1, min(_BUFFER, st.st_size + 1)))
            view = memoryview(buf)
            while n := f.readinto(buf):
                h.update(view[:n])
            return h.hexdigest()
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
