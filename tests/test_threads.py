"""wotr._threads: results, errors in the caller's thread, and no thread left behind."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from wotr._threads import join_all, started


def test_result_and_error_reach_the_caller() -> None:
    assert started(lambda a, b: a + b, 2, 3)() == 5

    def boom() -> None:
        raise ValueError("from the thread")

    with pytest.raises(ValueError, match="from the thread"):
        started(boom)()


def test_join_all_waits_for_every_thread_then_raises_the_first_error() -> None:
    finished: list[str] = []

    def slow(name: str, fail: bool) -> None:
        time.sleep(0.2)
        finished.append(name)
        if fail:
            raise RuntimeError(name)

    running = [started(slow, "a", True), started(slow, "b", False), started(slow, "c", True)]
    with pytest.raises(RuntimeError, match=r"^a$"):
        join_all(running)
    assert sorted(finished) == ["a", "b", "c"]


def test_join_all_interrupted_still_leaves_no_thread_running() -> None:
    release = threading.Event()
    interrupted = threading.Event()
    main = threading.main_thread()
    assert threading.current_thread() is main

    def worker() -> None:
        interrupted.wait(5)
        time.sleep(0.2)  # still running when the interrupt reaches join_all
        release.set()

    running = [started(worker)]

    def ctrl_c() -> None:  # a real SIGINT to the main thread, blocked in a join
        time.sleep(0.1)
        interrupted.set()
        signal.pthread_kill(main.ident or 0, signal.SIGINT)

    threading.Thread(target=ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        join_all(running)
    assert release.is_set()
