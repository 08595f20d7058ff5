"""hooks/dnf/wotr.py loaded by the real dnf 4 (Debian's python3-dnf) into a sandbox installroot,
with the real `wotr verify`.

Local rpm files are built with rpmbuild and installed with `dnf install /path.rpm`; the plugin is
loaded only from a copy of hooks/dnf (pluginpath), never from the host's plugin directories, and
its wotr.conf (pluginconfpath) is hooks/dnf/wotr.conf plus `policy=` / `bundles=` lines naming the
test's installer policy and bundles directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testing.sandbox import MALLORY, DnfSandbox, Verifier, build_rpm, tamper

REPO = Path(__file__).resolve().parents[2]

PLUGIN_DIR = REPO / "hooks" / "dnf"
OVERRIDE = "WOTR_HOOK_ALLOW_UNVERIFIED"

pytestmark = pytest.mark.skipif(
    shutil.which("dnf") is None or shutil.which("rpmbuild") is None or shutil.which("rpm") is None,
    reason="needs dnf, rpm and rpmbuild (Debian packages dnf, rpm)",
)


def sandbox(tmp_path: Path, verifier: Verifier, conf: str | None = None) -> DnfSandbox:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(PLUGIN_DIR / "wotr.py", plugins / "wotr.py")
    confdir = tmp_path / "plugin-conf"
    confdir.mkdir()
    if conf is None:
        conf = f"policy={verifier.policy}\nbundles={verifier.bundles}\n"
    (confdir / "wotr.conf").write_text((PLUGIN_DIR / "wotr.conf").read_text() + conf)
    return DnfSandbox(tmp_path / "root", pluginpath=plugins, pluginconfpath=confdir)


@pytest.fixture
def sb(tmp_path: Path, verifier: Verifier) -> DnfSandbox:
    return sandbox(tmp_path, verifier)


def rpm(tmp_path: Path, name: str = "good-rpm", version: str = "1.0") -> Path:
    return build_rpm(tmp_path / "rpms", name, version, b"honest payload\n")


def good(tmp_path: Path, verifier: Verifier, name: str = "good-rpm") -> Path:
    p = rpm(tmp_path, name)
    verifier.approve(p)
    return p


def tamper_lead(p: Path) -> None:
    """Change one byte that rpm's own digests do not cover: the name in the 96-byte legacy lead
    (offset 10).  A payload byte would not do here: rpm's transaction test checks the payload
    digest stored in the header and refuses the file before any dnf plugin runs."""
    data = p.read_bytes()
    assert data[:4] == b"\xed\xab\xee\xdb" and data[10:12].isalpha()
    tamper(p, marker=data[10:12])


def evil(tmp_path: Path, verifier: Verifier, name: str = "evil-rpm", version: str = "1.0") -> Path:
    """Approved by the quorum, then one byte changed (one rpm itself does not check)."""
    p = rpm(tmp_path, name, version)
    verifier.approve(p)
    tamper_lead(p)
    return p


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def test_approved_rpm_installs(tmp_path: Path, sb: DnfSandbox, verifier: Verifier) -> None:
    p = good(tmp_path, verifier)
    proc = sb.install([p], env=verifier.env())
    assert proc.returncode == 0, output(proc)
    assert sb.installed("good-rpm")
    assert (sb.root / "opt/good-rpm/payload").read_bytes() == b"honest payload\n"
    text = output(proc)
    assert "wotr: verified 1 package file(s)" in text
    assert "2 of 2 needed  alice, bob" in text
    records = verifier.records()
    assert len(records) == 1 and records[0]["cwd"] == "/"
    expected = ["--policy", str(verifier.policy), "--bundles", str(verifier.bundles), "--"]
    assert verifier.calls() == [[*expected, str(p.resolve())]]


def test_tampered_rpm_refused(tmp_path: Path, sb: DnfSandbox, verifier: Verifier) -> None:
    proc = sb.install([evil(tmp_path, verifier)], env=verifier.env())
    assert proc.returncode == 1, output(proc)
    assert not sb.installed("evil-rpm")
    assert not (sb.root / "opt/evil-rpm").exists()
    assert "REFUSED: not verified: evil-rpm-1.0-1.noarch." in output(proc)
    assert "no bundle names this digest" in output(proc)


def test_one_signer_is_not_a_quorum(tmp_path: Path, sb: DnfSandbox, verifier: Verifier) -> None:
    p = rpm(tmp_path, "lonely-rpm")
    verifier.approve(p, by=["alice"])
    proc = sb.install([p], env=verifier.env())
    assert proc.returncode == 1, output(proc)
    assert not sb.installed("lonely-rpm")
    assert "not verified: lonely-rpm-1.0-1.noarch." in output(proc)
    assert "1 of 2 needed" in output(proc)


def test_untrusted_signer_does_not_count(
    tmp_path: Path, sb: DnfSandbox, verifier: Verifier
) -> None:
    p = rpm(tmp_path, "shady-rpm")
    verifier.approve(p, by=["alice", MALLORY])
    proc = sb.install([p], env=verifier.env())
    assert proc.returncode == 1, output(proc)
    assert not sb.installed("shady-rpm")
    assert "not verified: shady-rpm-1.0-1.noarch." in output(proc)
    assert "1 of 2 needed" in output(proc)


def test_sidecar_environment_and_installed_command(tmp_path: Path, verifier: Verifier) -> None:
    # no policy/bundles in wotr.conf: $WOTR_POLICY / $WOTR_BUNDLES; the bundle is a sidecar;
    # WOTR_VERIFY_CMD unset: the installed `wotr verify` from PATH.
    sb = sandbox(tmp_path, verifier, conf="")
    p = rpm(tmp_path)
    verifier.approve(p, sidecar=True)
    env = {
        "WOTR_POLICY": str(verifier.policy),
        "WOTR_BUNDLES": str(verifier.bundles),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    proc = sb.install([p], env=env)
    assert proc.returncode == 0, output(proc)
    assert sb.installed("good-rpm")


def test_mix_installs_nothing(tmp_path: Path, sb: DnfSandbox, verifier: Verifier) -> None:
    rpms = [rpm(tmp_path), rpm(tmp_path, "evil-rpm"), rpm(tmp_path, "good-two")]
    verifier.approve(*rpms)
    tamper_lead(rpms[1])
    proc = sb.install(rpms, env=verifier.env())
    assert proc.returncode == 1, output(proc)
    for name in ("good-rpm", "good-two", "evil-rpm"):
        assert not sb.installed(name)
    text = output(proc)
    assert "not verified: evil-rpm-1.0-1.noarch." in text
    assert len(verifier.files()[0]) == 3


def test_upgrade_checked(tmp_path: Path, sb: DnfSandbox, verifier: Verifier) -> None:
    assert sb.install([good(tmp_path, verifier)], env=verifier.env()).returncode == 0
    # the attack rpm cannot see: 2.0 approved, then REBUILT with one payload byte changed --
    # a consistent rpm (its own digests match), but not the one the parties signed
    newer = rpm(tmp_path, "good-rpm", "2.0")
    verifier.approve(newer)
    assert build_rpm(tmp_path / "rpms", "good-rpm", "2.0", b"Honest payload\n") == newer
    proc = sb.install([newer], env=verifier.env())
    assert proc.returncode == 1, output(proc)
    assert "not verified: good-rpm-2.0-1.noarch." in output(proc)
    assert (sb.root / "opt/good-rpm/payload").read_bytes() == b"honest payload\n"


def test_fail_closed_when_verifier_missing(
    tmp_path: Path, sb: DnfSandbox, verifier: Verifier
) -> None:
    proc = sb.install([rpm(tmp_path)], env={"WOTR_VERIFY_CMD": "/nonexistent/wotr"})
    assert proc.returncode == 1, output(proc)
    assert not sb.installed("good-rpm")
    assert "fail closed" in output(proc) and f"{OVERRIDE}=1" in output(proc)


def test_fail_closed_without_bundles_directory(tmp_path: Path, verifier: Verifier) -> None:
    sb = sandbox(tmp_path, verifier, conf=f"bundles={tmp_path / 'nowhere'}\n")
    proc = sb.install([good(tmp_path, verifier)], env=verifier.env())
    assert proc.returncode == 1, output(proc)
    assert not sb.installed("good-rpm")
    assert "nowhere does not exist" in output(proc) and "fail closed" in output(proc)


def test_override_allows_with_warning(tmp_path: Path, sb: DnfSandbox, verifier: Verifier) -> None:
    env = {"WOTR_VERIFY_CMD": "/nonexistent/wotr", OVERRIDE: "1"}
    proc = sb.install([rpm(tmp_path)], env=env)
    assert proc.returncode == 0, output(proc)
    assert sb.installed("good-rpm")
    assert "WARNING" in output(proc) and "NOT verified" in output(proc)


def test_override_never_passes_rejected(tmp_path: Path, sb: DnfSandbox, verifier: Verifier) -> None:
    proc = sb.install([evil(tmp_path, verifier)], env={**verifier.env(), OVERRIDE: "1"})
    assert proc.returncode == 1, output(proc)
    assert not sb.installed("evil-rpm")
