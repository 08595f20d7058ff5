"""One small helper for running work beside the main thread.

``concurrent.futures`` would do, but it imports ``logging`` and ``traceback`` (~10 ms on the verify
path, which an installer hook pays on every package); a thread and a join are all wotr needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def started(fn: Callable[..., T], *args: Any) -> Callable[[], T]:
    """Run ``fn(*args)`` in a thread from now on; the returned function waits for its result
    or re-raises its exception in the caller's thread. For work that waits outside the GIL
    (child processes, hashing, file I/O)."""
    out: list[T] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            out.append(fn(*args))
        except BaseException as exc:  # re-raised by the caller's thread in result()
            failed.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()

    def result() -> T:
        thread.join()
        if failed:
            raise failed[0]
        return out[0]

    return result
