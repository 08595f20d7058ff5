"""hooks/dnf/wotr.py loaded by the real dnf 4 (Debian's python3-dnf) into a sandbox installroot.

Local rpm files are built with rpmbuild and installed with `dnf install /path.rpm`; the plugin is
loaded only from the repository (pluginpath), never from the host's plugin directories.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from testing.sandbox import DnfSandbox, Verifier, build_rpm

REPO = Path(__file__).resolve().parents[2]

PLUGIN_DIR = REPO / "hooks" / "dnf"
OVERRIDE = "WOTR_HOOK_ALLOW_UNVERIFIED"

pytestmark = pytest.mark.skipif(
    shutil.which("dnf") is None or shutil.which("rpmbuild") is None,
    reason="needs dnf and rpmbuild (Debian packages dnf, rpm)",
)


@pytest.fixture
def sb(tmp_path: Path) -> DnfSandbox:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(PLUGIN_DIR / "wotr.py", plugins / "wotr.py")
    return DnfSandbox(tmp_path / "root", pluginpath=plugins, pluginconfpath=PLUGIN_DIR)


def good(tmp_path: Path, verifier: Verifier, name: str = "good-rpm") -> Path:
    p = build_rpm(tmp_path / "rpms", name, "1.0", b"honest payload\n")
    verifier.approve(p)
    return p


def evil(tmp_path: Path, name: str = "evil-rpm", version: str = "1.0") -> Path:
    return build_rpm(tmp_path / "rpms", name, version, b"TAMPERED payload\n")


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def test_trusted_rpm_installs(tmp_path: Path, sb: DnfSandbox, verifier: Verifier) -> None:
    rpm = good(tmp_path, verifier)
    proc = sb.install([rpm], env=verifier.env())
    assert proc.returncode == 0, output(proc)
    assert sb.installed("good-rpm")
    assert (sb.root / "opt/good-rpm/payload").read_bytes() == b"honest payload\n"
    assert "wotr: verified 1 package file(s)" in output(proc)
    assert verifier.calls() == [[str(rpm.resolve())]]


def test_tampered_rpm_refused(tmp_path: Path, sb: DnfSandbox, verifier: Verifier) -> None:
    proc = sb.install([evil(tmp_path)], env=verifier.env())
    assert proc.returncode == 1, output(proc)
    assert not sb.installed("evil-rpm")
    assert not (sb.root / "opt/evil-rpm").exists()
    assert "REFUSED" in output(proc) and "evil-rpm-1.0-1.noarch" in output(proc)


def test_mix_installs_nothing(tmp_path: Path, sb: DnfSandbox, verifier: Verifier) -> None:
    rpms = [good(tmp_path, verifier), evil(tmp_path), good(tmp_path, verifier, "good-two")]
    proc = sb.install(rpms, env=verifier.env())
    assert proc.returncode == 1, output(proc)
    for name in ("good-rpm", "good-two", "evil-rpm"):
        assert not sb.installed(name)
    text = output(proc)
    assert "not verified: evil-rpm-1.0-1.noarch." in text
    assert len(verifier.calls()[0]) == 3


def test_upgrade_checked(tmp_path: Path, sb: DnfSandbox, verifier: Verifier) -> None:
    assert sb.install([good(tmp_path, verifier)], env=verifier.env()).returncode == 0
    newer = build_rpm(tmp_path / "rpms", "good-rpm", "2.0", b"TAMPERED update\n")
    proc = sb.install([newer], env=verifier.env())
    assert proc.returncode == 1, output(proc)
    assert (sb.root / "opt/good-rpm/payload").read_bytes() == b"honest payload\n"


def test_fail_closed_when_verifier_missing(
    tmp_path: Path, sb: DnfSandbox, verifier: Verifier
) -> None:
    proc = sb.install([good(tmp_path, verifier)], env={"WOTR_VERIFY_CMD": "/nonexistent/wotr"})
    assert proc.returncode == 1, output(proc)
    assert not sb.installed("good-rpm")
    assert "fail closed" in output(proc) and f"{OVERRIDE}=1" in output(proc)


def test_override_allows_with_warning(tmp_path: Path, sb: DnfSandbox, verifier: Verifier) -> None:
    env = {"WOTR_VERIFY_CMD": "/nonexistent/wotr", OVERRIDE: "1"}
    proc = sb.install([good(tmp_path, verifier)], env=env)
    assert proc.returncode == 0, output(proc)
    assert sb.installed("good-rpm")
    assert "WARNING" in output(proc) and "NOT verified" in output(proc)


def test_override_never_passes_rejected(tmp_path: Path, sb: DnfSandbox, verifier: Verifier) -> None:
    proc = sb.install([evil(tmp_path)], env={**verifier.env(), OVERRIDE: "1"})
    assert proc.returncode == 1, output(proc)
    assert not sb.installed("evil-rpm")
