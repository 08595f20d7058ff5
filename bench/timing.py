"""Timing helpers: interleaved repetitions of a subject and its baseline, medians of each.

Machines are noisy, so a figure is never one run: every repetition runs the baseline and the
subject back to back (alternating which goes first), and the table shows medians.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

Thunk = Callable[[], object]


class BenchError(RuntimeError):
    """A benchmark step did not do what it was meant to (wrong exit code, missing output)."""


def run(
    argv: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    expect: int | None = 0,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command, capture its output; :class:`BenchError` unless it exits ``expect``."""
    res = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=dict(env) if env is not None else None,
        capture_output=True,
        check=False,
    )
    if expect is not None and res.returncode != expect:
        raise BenchError(
            f"{' '.join(map(str, argv))} exited {res.returncode}, expected {expect}:\n"
            f"{res.stdout.decode(errors='replace')[-2000:]}"
            f"{res.stderr.decode(errors='replace')[-2000:]}"
        )
    return res


def cmd(
    argv: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    expect: int | None = 0,
) -> Thunk:
    """A thunk running ``argv`` (for :func:`measure`)."""
    return lambda: run(argv, cwd=cwd, env=env, expect=expect)


def seq(*thunks: Thunk) -> Thunk:
    """A thunk running several thunks one after the other (e.g. the parts of a floor)."""

    def go() -> None:
        for t in thunks:
            t()

    return go


def clock(thunk: Thunk) -> float:
    start = time.perf_counter()
    thunk()
    return time.perf_counter() - start


@dataclass(frozen=True)
class Timings:
    """Per-repetition seconds of each named thunk."""

    samples: Mapping[str, tuple[float, ...]]

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])


def measure(thunks: Mapping[str, Thunk], reps: int, *, warmup: int = 1) -> Timings:
    """Run every thunk ``warmup`` times, then ``reps`` interleaved rounds (order rotated)."""
    names = list(thunks)
    for _ in range(warmup):
        for name in names:
            thunks[name]()
    samples: dict[str, list[float]] = {n: [] for n in names}
    for i in range(reps):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(clock(thunks[name]))
    return Timings({n: tuple(v) for n, v in samples.items()})


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def machine() -> str:
    return f"{cpu_model()}, {os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}"
