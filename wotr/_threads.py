"""One small helper for running work beside the main thread.

``concurrent.futures`` would do, but it imports ``logging`` and ``traceback`` (~10 ms on the verify
path, which an installer hook pays on every package); a thread and a join are all wotr needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

TYPE_CHECKING = False  # typing itself is not imported at run time (verify's start-up)
if TYPE_CHECKING:
    from typing import Any, Generic, TypeVar

    T = TypeVar("T")
else:  # annotations are never evaluated (PEP 563); Running[...] only has to be a valid base

    class Generic:
        def __class_getitem__(cls, _item: object) -> type:
            return object

    T = None


class Running(Generic[T]):
    """``fn(*args)`` running in a daemon thread. Call it to wait for the result (or to re-raise
    the exception in the caller's thread); :meth:`join` waits without raising."""

    def __init__(self, fn: Callable[..., T], args: tuple[Any, ...]) -> None:
        self._out: list[T] = []
        self._failed: list[BaseException] = []
        # An Event, not Thread.join: in Python 3.11 a join interrupted by Ctrl-C marks the
        # thread as stopped while it still runs, and every later join returns at once.
        self._done = threading.Event()
        threading.Thread(target=self._work, args=(fn, args), daemon=True).start()

    def _work(self, fn: Callable[..., T], args: tuple[Any, ...]) -> None:
        try:
            self._out.append(fn(*args))
        except BaseException as exc:  # re-raised by the caller's thread in __call__
            self._failed.append(exc)
        finally:
            self._done.set()

    def join(self) -> None:
        self._done.wait()

    def __call__(self) -> T:
        self._done.wait()
        if self._failed:
            raise self._failed[0]
        return self._out[0]


def started(fn: Callable[..., T], *args: Any) -> Running[T]:
    """Run ``fn(*args)`` in a thread from now on. For work that waits outside the GIL (child
    processes, hashing, file I/O)."""
    return Running(fn, args)


def join_all(running: Sequence[Running[Any]]) -> None:
    """Wait for every one of ``running`` -- also when Ctrl-C interrupts the waiting, so that
    no thread outlives what it works on -- then raise the first error among them."""
    try:
        for r in running:
            r.join()
    finally:
        for r in running:
            r.join()
    for r in running:
        r()
