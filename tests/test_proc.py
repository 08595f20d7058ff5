"""wotr/_proc.py: programs started without the subprocess module get what subprocess gave them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wotr import _proc
from wotr.errors import EnvironmentProblem


def test_output_exit_status_and_stderr() -> None:
    res = _proc.run(["sh", "-c", "printf out; printf err >&2; exit 3"])
    assert (res.returncode, res.stdout, res.stderr, res.truncated) == (3, b"out", b"err", False)


def test_large_input_and_output_do_not_deadlock() -> None:
    data = os.urandom(3 << 20)  # far beyond a pipe's buffer, both ways at once
    res = _proc.run(["sh", "-c", "cat; head -c 300000 /dev/zero >&2"], input=data)
    assert res.returncode == 0
    assert res.stdout == data
    assert res.stderr == b"\0" * 300000


def test_no_input_is_an_empty_stdin() -> None:
    assert _proc.run(["wc", "-c"]).stdout.strip() == b"0"


def test_stdout_is_capped_and_the_program_stopped() -> None:
    res = _proc.run(["sh", "-c", "yes"], max_stdout=1000)
    assert res.truncated
    assert len(res.stdout) == 1001


def test_a_signal_is_a_negative_status() -> None:
    assert _proc.run(["sh", "-c", "kill -TERM $$"]).returncode == -15


def test_sigpipe_is_back_to_its_default() -> None:
    """Python ignores SIGPIPE; a child must not inherit that (subprocess's restore_signals):
    ``yes`` would report 'Broken pipe' instead of ending quietly."""
    res = _proc.run(["sh", "-c", "yes | head -n 1"])
    assert (res.returncode, res.stdout, res.stderr) == (0, b"y\n", b"")


def test_inherited_descriptors_do_not_reach_the_program(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "secret", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.set_inheritable(fd, True)  # as one handed to wotr by whoever started it
        res = _proc.run(["ls", "/proc/self/fd"])
        assert res.returncode == 0
        seen = {int(n) for n in res.stdout.split()}
        assert fd not in seen
    finally:
        os.close(fd)


def test_another_directory_runs_there(tmp_path: Path) -> None:
    res = _proc.run(["pwd", "-P"], cwd=tmp_path)
    assert res.stdout.decode().strip() == str(tmp_path.resolve())
    here = _proc.run(["pwd", "-P"], cwd=".")
    assert here.stdout.decode().strip() == os.path.realpath(".")


def test_the_program_is_found_on_the_childs_path(tmp_path: Path) -> None:
    tool = tmp_path / "wotr-probe-tool"
    tool.write_text("#!/bin/sh\necho found\n")
    tool.chmod(0o755)
    assert _proc.run(["wotr-probe-tool"], env={"PATH": str(tmp_path)}).stdout == b"found\n"
    with pytest.raises(EnvironmentProblem, match="not installed or not on PATH"):
        _proc.run(["wotr-probe-tool"])
