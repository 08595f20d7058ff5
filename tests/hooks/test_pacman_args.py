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


def _parent(argv: list[str]) -> Any:
    hook = _hook()
    parent = hook.Parent.__new__(hook.Parent)
    parent.argv = ["pacman", *argv]
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
    ],
)
def test_operands_of_upgrade_are_files(argv: list[str], files: list[str], urls: list[str]) -> None:
    assert _parent(argv).package_files() == (files, urls)


def test_operands_on_stdin_are_refused() -> None:
    hook = _hook()
    with pytest.raises(hook.HookError, match="stdin"):
        _parent(["-U", "-"]).package_files()
