"""wotr-pacman-hook's reading of the parent pacman's command line (no pacman needed)."""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

HOOK = Path(__file__).resolve().parents[2] / "hooks" / "pacman" / "wotr-pacman-hook"


@functools.cache
def _hook() -> Any:
    loader = importlib.machinery.SourceFileLoader("wotr_pacman_hook", str(HOOK))
    spec = importlib.util.spec_from_loader("wotr_pacman_hook", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["wotr_pacman_hook"] = module  # its dataclasses look their module up there
    loader.exec_module(module)
    return module


def _parent(argv: list[str], posix: bool = False) -> Any:
    hook = _hook()
    parent = hook.Parent.__new__(hook.Parent)
    parent.argv = ["pacman", *argv]
    parent.parse(argv, posixly_correct=posix)
    return parent


@pytest.mark.parametrize(
    ("argv", "files", "urls"),
    [
        (["-U", "a.pkg.tar.zst"], ["a.pkg.tar.zst"], []),
        (["-U", "renamed.tar.zst", "x"], ["renamed.tar.zst", "x"], []),  # any name is a file
        (["-Udd", "--noconfirm", "f"], ["f"], []),
        (["--upgrade", "--root", "/mnt", "f"], ["f"], []),
        (["-Ur", "/mnt", "f"], ["f"], []),
        (["-U", "--cachedir=/c", "f"], ["f"], []),
        (["-U", "--", "-f", "--g"], ["-f", "--g"], []),
        (["-U", "https://x/p.pkg.tar.zst", "f"], ["f"], ["https://x/p.pkg.tar.zst"]),
        (["-S", "name"], [], []),  # -S operands are package names, not files
        (["-Syu"], [], []),
        # issue 10 section 4: what getopt_long does and the old parser did not
        (["--upgrade", "--noconf", "f"], ["f"], []),  # --noconfirm abbreviated
        (["--noco", "-U", "--sysr=/r", "f"], ["f"], []),
        (["-r/some/rootSD", "-U", "f"], ["f"], []),  # -r with an attached value, not -S
        (["-Ur/mnt", "f"], ["f"], []),
        (["-b/db", "-U", "f"], ["f"], []),
        (["--cache", "/c", "-U", "f"], ["f"], []),  # --cachedir abbreviated, value next
        (["f", "-U"], ["f"], []),  # GNU getopt permutes: operands may come first
        (["--asdeps", "-U", "f", "--needed"], ["f"], []),
        (["--debug=3", "-U", "f"], ["f"], []),
        (["--debug", "-U", "f"], ["f"], []),  # optional value: only attached
        (["-U", "", "f"], ["", "f"], []),  # an empty argument stays an operand
    ],
)
def test_operands_of_upgrade_are_files(argv: list[str], files: list[str], urls: list[str]) -> None:
    assert _parent(argv).package_files() == (files, urls)


@pytest.mark.parametrize(
    ("argv", "op", "values"),
    [
        (["-r/some/rootSD", "-U", "f"], "U", {"root": ["/some/rootSD"]}),
        (["--cach=/c", "-S", "x"], "S", {"cachedir": ["/c"]}),
        (["--dbp", "/d", "-U", "f"], "U", {"dbpath": ["/d"]}),
        (["--sysr", "/s", "-U", "f"], "U", {"sysroot": ["/s"]}),
        (["-Sr", "/mnt", "x"], "S", {"root": ["/mnt"]}),
    ],
)
def test_options_and_operation(argv: list[str], op: str, values: dict[str, list[str]]) -> None:
    parent = _parent(argv)
    assert parent.op == op
    for name, expected in values.items():
        assert parent.options(name) == expected


def test_posixly_correct_stops_at_the_first_operand() -> None:
    parent = _parent(["-U", "f", "--cachedir", "/c"], posix=True)
    assert parent.package_files() == (["f", "--cachedir", "/c"], [])


@pytest.mark.parametrize(
    "argv",
    [
        ["--no", "-U", "f"],  # ambiguous: nodeps, nosave, noconfirm, ...
        ["--upgr", "f"],  # ambiguous: --upgrade, --upgrades (as the real pacman says)
        ["--conf", "/c", "-U", "f"],  # ambiguous: --config, --confirm
        ["--de", "-U", "f"],  # ambiguous: deps, deptest, debug
        ["--frobnicate", "-U", "f"],  # unknown
        ["-Z", "-U", "f"],  # unknown short option
        ["-U", "-S", "f"],  # two operations
        ["-UU", "f"],  # the same operation twice: pacman says "only one operation"
        ["f"],  # no operation
        ["-U", "--cachedir"],  # a value missing
        ["-Ur"],
        ["--noconfirm=yes", "-U", "f"],  # a value for an option that takes none
    ],
)
def test_what_pacman_would_reject_is_refused(argv: list[str]) -> None:
    hook = _hook()
    with pytest.raises(hook.HookError):
        _parent(argv)


def test_operands_on_stdin_are_refused() -> None:
    hook = _hook()
    with pytest.raises(hook.HookError, match="stdin"):
        _parent(["-U", "-"]).package_files()


@pytest.mark.parametrize(
    ("argv", "accepted"),
    [
        (["--upgrade", "--noconf", "--print", "X"], True),
        (["-r/tmp", "-U", "--print", "X"], True),
        (["--cach", "/tmp", "-U", "--print", "X"], True),
        (["--upgr", "--print", "X"], False),
        (["--conf", "/dev/null", "-U", "--print", "X"], False),
        (["--no", "-U", "--print", "X"], False),
        (["--de", "-U", "--print", "X"], False),
        (["-UU", "--print", "X"], False),
    ],
)
def test_the_real_pacman_agrees(argv: list[str], accepted: bool, tmp_path: Path) -> None:
    # the hook's parser against the real pacman 6.0 binary: what one accepts the other does
    import shutil
    import subprocess

    if shutil.which("pacman") is None:
        pytest.skip("needs pacman")
    proc = subprocess.run(
        ["pacman", "--config", "/dev/null", "--dbpath", str(tmp_path), *argv],
        capture_output=True,
        text=True,
    )
    parse_errors = ("ambiguous", "unrecognized", "invalid option", "only one operation")
    assert (not any(e in proc.stderr for e in parse_errors)) == accepted, proc.stderr
    hook = _hook()
    if accepted:
        _parent(argv)
    else:
        with pytest.raises(hook.HookError):
            _parent(argv)


def test_pacman_conf_reads_the_configuration_the_parent_read() -> None:
    """pacman-conf runs chrooted into RootDir: without --config it would read RootDir's own
    /etc/pacman.conf (another CacheDir, other repositories) instead of the file `pacman -r DIR`
    read (found by an attacker review); the parent's --root decides DBPath's default."""
    parent = _parent(["-r", "/mnt", "-S", "x"])
    parent.root = "/proc/1/root"
    assert _hook().conf_cmd(parent) == [
        "pacman-conf",
        "--config",
        "/proc/1/root/etc/pacman.conf",
        "--rootdir",
        "/mnt",
    ]
    parent = _parent(["--config", "/c.conf", "-S", "x"])
    parent.root = "/proc/1/root"
    assert _hook().conf_cmd(parent) == ["pacman-conf", "--config", "/proc/1/root/c.conf"]
