"""sha256 of artifact files: streamed, several files hashed at once on all cores.

hashlib releases the GIL while it digests large buffers, so threads give real parallelism.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .errors import BadInput

_BUFFER = 1024 * 1024


def sha256_file(path: Path) -> str:
    try:
        with open(path, "rb", buffering=0) as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise BadInput(f"artifact {path} is not a regular file")
            h = hashlib.sha256()
            buf = bytearray(_BUFFER)
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
    """Digests in the order of ``paths``; the first unreadable file raises :class:`BadInput`."""
    if len(paths) <= 1:
        return [sha256_file(p) for p in paths]
    workers = min(len(paths), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(sha256_file, paths))
