"""The user install of docs/install.md: ``pipx install`` of this checkout, run, uninstall.

Uses Debian's pipx (``apt-get install pipx``; .ci/run installs it) with PIPX_HOME and
PIPX_BIN_DIR in a temporary directory, so the user's own pipx is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    shutil.which("pipx") is None and not os.environ.get("CI"),
    reason="needs Debian's pipx (apt-get install pipx); .ci/run installs it",
)
def test_pipx_install_runs_and_uninstalls_cleanly(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "bin"),
    }
    src = tmp_path / "src"
    # A copy without the checkout's venv and caches: what a user's clone holds.
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(".venv", ".git", "*.egg-info", "__pycache__", ".*_cache"),
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, env=env, capture_output=True, text=True, timeout=600, check=False
        )

    res = run("pipx", "install", str(src))
    assert res.returncode == 0, res.stdout + res.stderr
    for exe in ("wotr", "git-wotr"):
        assert (tmp_path / "bin" / exe).exists(), exe
    ver = run(str(tmp_path / "bin" / "wotr"), "--version")
    assert ver.returncode == 0 and "wotr" in ver.stdout, ver.stdout + ver.stderr
    res = run("pipx", "uninstall", "wotr")
    assert res.returncode == 0, res.stdout + res.stderr
    assert not any((tmp_path / "bin").iterdir())
    assert not (tmp_path / "pipx" / "venvs" / "wotr").exists()
