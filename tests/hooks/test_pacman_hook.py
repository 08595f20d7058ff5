"""hooks/pacman/wotr.hook + wotr-pacman-hook driven by the real pacman in a sandbox RootDir.

pacman runs hooks chrooted into RootDir, so testing.sandbox.PacmanSandbox bind-mounts the
host's /usr read-only into the root inside a private mount namespace; the hook script and the
stub verifier are copied into the root and run with the system's /usr/bin/python3.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from testing.sandbox import PacmanSandbox, Verifier, build_pkg, can_unshare_mounts

REPO = Path(__file__).resolve().parents[2]
STUB = Path(__file__).resolve().parent / "stub_verifier.py"

HOOK_DIR = REPO / "hooks" / "pacman"
OVERRIDE = "WOTR_HOOK_ALLOW_UNVERIFIED"

pytestmark = [
    pytest.mark.skipif(shutil.which("pacman") is None, reason="needs pacman-package-manager"),
    pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs /usr/bin/python3"),
    pytest.mark.skipif(not can_unshare_mounts(), reason="needs root for unshare --mount"),
]


class PacmanEnv:
    def __init__(self, tmp_path: Path) -> None:
        hook_text = (HOOK_DIR / "wotr.hook").read_text()
        exec_line = "Exec = /usr/share/libalpm/scripts/wotr-pacman-hook"
        assert exec_line in hook_text
        self.sb = PacmanSandbox(tmp_path / "root")
        script = self.sb.stage(HOOK_DIR / "wotr-pacman-hook")
        hook_text = hook_text.replace(exec_line, f"Exec = {script}")
        (self.sb.hookdir / "wotr.hook").write_text(hook_text)
        stub = self.sb.stage(STUB)
        self.verifier = Verifier(
            command=f"/usr/bin/python3 {stub}", log=self.sb.inside("/opt/wotr-test/calls.jsonl")
        )
        self.pkgs = tmp_path / "pkgs"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "WOTR_VERIFY_CMD": self.verifier.command,
            "WOTR_STUB_LOG": "/opt/wotr-test/calls.jsonl",
            **extra,
        }

    def good(self, name: str = "good-pkg", version: str = "1.0") -> Path:
        p = build_pkg(self.pkgs, name, version, b"honest payload\n")
        self.verifier.approve(p)
        return p

    def evil(self, name: str = "evil-pkg", version: str = "1.0") -> Path:
        return build_pkg(self.pkgs, name, version, b"TAMPERED payload\n")


@pytest.fixture
def pm(tmp_path: Path) -> PacmanEnv:
    return PacmanEnv(tmp_path)


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def test_trusted_package_installs(pm: PacmanEnv) -> None:
    pkg = pm.good()
    proc = pm.sb.install([pkg], env=pm.env())
    assert proc.returncode == 0, output(proc)
    assert pm.sb.installed("good-pkg")
    assert pm.sb.inside("/opt/good-pkg/payload").read_bytes() == b"honest payload\n"
    assert "wotr-pacman-hook: verified 1 package file(s)" in output(proc)
    calls = pm.verifier.calls()
    assert len(calls) == 1 and len(calls[0]) == 1
    assert calls[0][0].endswith(str(pkg))  # reached via /proc/<pacman pid>/root


def test_tampered_package_refused(pm: PacmanEnv) -> None:
    proc = pm.sb.install([pm.evil()], env=pm.env())
    assert proc.returncode == 1, output(proc)
    assert not pm.sb.installed("evil-pkg")
    assert not pm.sb.inside("/opt/evil-pkg").exists()
    assert "REFUSED" in output(proc) and "evil-pkg-1.0-1-any.pkg.tar" in output(proc)


def test_mix_installs_nothing(pm: PacmanEnv) -> None:
    proc = pm.sb.install([pm.good(), pm.evil(), pm.good("good-two")], env=pm.env())
    assert proc.returncode == 1, output(proc)
    for name in ("good-pkg", "good-two", "evil-pkg"):
        assert not pm.sb.installed(name)
        assert not pm.sb.inside(f"/opt/{name}").exists()
    refused = [line for line in output(proc).splitlines() if "REFUSED" in line]
    assert len(refused) == 1 and "evil-pkg" in refused[0], refused
    assert len(pm.verifier.calls()[0]) == 3


def test_relative_path_on_command_line(pm: PacmanEnv) -> None:
    evil = pm.evil()
    proc = pm.sb.pacman(["-U", evil.name], env=pm.env(), cwd=evil.parent)
    assert proc.returncode == 1, output(proc)
    assert not pm.sb.installed("evil-pkg")


def test_misnamed_file_is_still_verified(pm: PacmanEnv) -> None:
    # The file name claims good-pkg but the archive is evil-pkg: every file on the command
    # line is verified, whatever its name, so the names pacman reports cannot be dodged.
    pm.good()  # a trusted good-pkg sits next to it
    evil = pm.evil("good-pkg", "2.0")
    proc = pm.sb.install([evil], env=pm.env())
    assert proc.returncode == 1, output(proc)
    assert not pm.sb.installed("good-pkg")


def test_download_into_cache_is_checked(pm: PacmanEnv) -> None:
    # `pacman -U file://...` copies the archive into CacheDir first: found there by name.
    evil = pm.evil()
    proc = pm.sb.pacman(["-U", evil.as_uri()], env=pm.env())
    assert proc.returncode == 1, output(proc)
    assert not pm.sb.installed("evil-pkg")
    assert (pm.sb.cachedir / evil.name).exists()
    good = pm.good()
    proc = pm.sb.pacman(["-U", good.as_uri()], env=pm.env())
    assert proc.returncode == 0, output(proc)
    assert pm.sb.installed("good-pkg")
    assert any(str(pm.sb.cachedir) in c[0] for c in pm.verifier.calls())


def test_upgrade_checked(pm: PacmanEnv) -> None:
    assert pm.sb.install([pm.good()], env=pm.env()).returncode == 0
    proc = pm.sb.install([pm.evil("good-pkg", "2.0")], env=pm.env())
    assert proc.returncode == 1, output(proc)
    assert pm.sb.inside("/opt/good-pkg/payload").read_bytes() == b"honest payload\n"


def test_fail_closed_when_verifier_missing(pm: PacmanEnv) -> None:
    proc = pm.sb.install([pm.good()], env=pm.env(WOTR_VERIFY_CMD="/nonexistent/wotr verify"))
    assert proc.returncode == 1, output(proc)
    assert not pm.sb.installed("good-pkg")
    assert "fail closed" in output(proc) and f"{OVERRIDE}=1" in output(proc)


def test_override_allows_with_warning(pm: PacmanEnv) -> None:
    env = pm.env(WOTR_VERIFY_CMD="/nonexistent/wotr verify", **{OVERRIDE: "1"})
    proc = pm.sb.install([pm.good()], env=env)
    assert proc.returncode == 0, output(proc)
    assert pm.sb.installed("good-pkg")
    assert "WARNING" in output(proc) and "NOT verified" in output(proc)


def test_override_never_passes_rejected(pm: PacmanEnv) -> None:
    proc = pm.sb.install([pm.evil()], env=pm.env(**{OVERRIDE: "1"}))
    assert proc.returncode == 1, output(proc)
    assert not pm.sb.installed("evil-pkg")
