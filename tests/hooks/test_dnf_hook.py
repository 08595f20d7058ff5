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

from testing.sandbox import (
    HOSTILE_KINDS,
    MALLORY,
    PARSER_BUG_FAILURES,
    DnfSandbox,
    Verifier,
    build_rpm,
    plant_hostile,
    plant_parser_bug,
    tamper,
)

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
    shutil.copy(REPO / "hooks" / "wotr_hooklib.py", plugins / "wotr_hooklib.py")
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
    records = verifier.records()
    assert len(records) == 1 and records[0]["cwd"] == "/"
    expected = ["--json", "--policy", str(verifier.policy), "--bundles", str(verifier.bundles)]
    expected.append("--")
    assert verifier.calls() == [[*expected, str(p.resolve())]]


def test_tampered_rpm_refused(tmp_path: Path, sb: DnfSandbox, verifier: Verifier) -> None:
    proc = sb.install([evil(tmp_path, verifier)], env=verifier.env())
    assert proc.returncode == 1, output(proc)
    assert not sb.installed("evil-rpm")
    assert not (sb.root / "opt/evil-rpm").exists()
    assert "REFUSED: evil-rpm-1.0-1.noarch: not verified: no bundle names" in output(proc)
    assert "no bundle names this digest" in output(proc)


def test_one_signer_is_not_a_quorum(tmp_path: Path, sb: DnfSandbox, verifier: Verifier) -> None:
    p = rpm(tmp_path, "lonely-rpm")
    verifier.approve(p, by=["alice"])
    proc = sb.install([p], env=verifier.env())
    assert proc.returncode == 1, output(proc)
    assert not sb.installed("lonely-rpm")
    assert "REFUSED: lonely-rpm-1.0-1.noarch: not verified" in output(proc)
    assert "1 of 2 needed" in output(proc)


def test_untrusted_signer_does_not_count(
    tmp_path: Path, sb: DnfSandbox, verifier: Verifier
) -> None:
    p = rpm(tmp_path, "shady-rpm")
    verifier.approve(p, by=["alice", MALLORY])
    proc = sb.install([p], env=verifier.env())
    assert proc.returncode == 1, output(proc)
    assert not sb.installed("shady-rpm")
    assert "REFUSED: shady-rpm-1.0-1.noarch: not verified" in output(proc)
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
    assert "REFUSED: evil-rpm-1.0-1.noarch: not verified" in text
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
    assert "REFUSED: good-rpm-2.0-1.noarch: not verified" in output(proc)
    assert (sb.root / "opt/good-rpm/payload").read_bytes() == b"honest payload\n"


# ---- fail closed; the override (C1: nothing an attacker puts on disk may flip a refusal) -------

NO_OVERRIDE: dict[str, str] = {}
WITH_OVERRIDE = {OVERRIDE: "1"}
OVERRIDES = [
    pytest.param(NO_OVERRIDE, id="no-override"),
    pytest.param(WITH_OVERRIDE, id="override"),
]


def assert_refused(
    sb: DnfSandbox, proc: subprocess.CompletedProcess[str], name: str, nevra: str = ""
) -> None:
    assert proc.returncode == 1, output(proc)
    assert not sb.installed(name)
    assert not (sb.root / "opt" / name).exists()
    text = output(proc)
    assert f"REFUSED: {nevra or name + '-1.0-1.noarch'}" in text
    assert "fail closed" in text and "--disableplugin=wotr" in text
    assert "!" * 72 not in text and "verified by anyone" not in text  # no override banner


@pytest.mark.parametrize("override", OVERRIDES)
@pytest.mark.parametrize("kind", HOSTILE_KINDS)
def test_hostile_sidecar_or_bundle_is_refused(
    tmp_path: Path, sb: DnfSandbox, verifier: Verifier, kind: str, override: dict[str, str]
) -> None:
    # C1 as reported: garbage PKG.rpm.wotr next to the package and/or a hostile bundle in the
    # bundles directory, read by the real verifier: refused, with and without the override.
    p = evil(tmp_path, verifier)
    plant_hostile(kind, p, verifier.bundles)
    proc = sb.install([p], env={**verifier.env(), **override})
    assert_refused(sb, proc, "evil-rpm")
    assert len(verifier.calls()) == 1


@pytest.mark.parametrize("override", OVERRIDES)
@pytest.mark.parametrize("where", ["sidecar", "bundle"])
@pytest.mark.parametrize("failure", PARSER_BUG_FAILURES)
def test_parser_bug_triggered_by_attacker_is_refused(
    tmp_path: Path, buggy_verifier: Verifier, failure: str, where: str, override: dict[str, str]
) -> None:
    # The attacker's file makes the verifier exit 2, 3 or 70, crash or hang (a parser bug):
    # every one of these is a refusal, and the override does not change that.
    v = buggy_verifier
    sb = sandbox(tmp_path, v)
    p = rpm(tmp_path, "evil-rpm")
    plant_parser_bug(failure, p, v.bundles, where=where)
    proc = sb.install([p], env={**v.env(), "WOTR_HOOK_TIMEOUT": "3", **override})
    assert_refused(sb, proc, "evil-rpm")
    text = output(proc)
    assert f"attacker input triggers: {failure}" in text
    assert f"{OVERRIDE}=1 does not apply" in text


@pytest.mark.parametrize("override", OVERRIDES)
def test_rejected_package_refused_with_or_without_override(
    tmp_path: Path, sb: DnfSandbox, verifier: Verifier, override: dict[str, str]
) -> None:
    proc = sb.install([evil(tmp_path, verifier)], env={**verifier.env(), **override})
    assert_refused(sb, proc, "evil-rpm")
    assert "evil-rpm-1.0-1.noarch: not verified: " in output(proc)


@pytest.mark.parametrize("override", OVERRIDES)
@pytest.mark.parametrize(
    "command",
    ["sh -c 'exit 2' wotr", "sh -c 'exit 127' wotr", "sh -c 'kill -9 $$' wotr", "sleep 30"],
)
def test_fail_closed(
    tmp_path: Path, sb: DnfSandbox, command: str, override: dict[str, str]
) -> None:
    env = {"WOTR_VERIFY_CMD": command, "WOTR_HOOK_TIMEOUT": "2", **override}
    proc = sb.install([rpm(tmp_path)], env=env)
    assert_refused(sb, proc, "good-rpm")
    assert f"{OVERRIDE}=1 does not apply" in output(proc)


@pytest.mark.parametrize("override", OVERRIDES)
def test_fail_closed_without_bundles_directory(
    tmp_path: Path, verifier: Verifier, override: dict[str, str]
) -> None:
    sb = sandbox(tmp_path, verifier, conf=f"bundles={tmp_path / 'nowhere'}\n")
    proc = sb.install([good(tmp_path, verifier)], env={**verifier.env(), **override})
    assert_refused(sb, proc, "good-rpm")
    assert "nowhere does not exist" in output(proc)


def not_executable(tmp_path: Path) -> str:
    path = tmp_path / "wotr-not-executable"
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o644)
    return str(path)


@pytest.mark.parametrize("missing", ["/nonexistent/wotr verify", "not-executable"])
def test_verifier_that_cannot_start_refuses(
    tmp_path: Path, sb: DnfSandbox, verifier: Verifier, missing: str
) -> None:
    command = not_executable(tmp_path) if missing == "not-executable" else missing
    proc = sb.install([rpm(tmp_path)], env={"WOTR_VERIFY_CMD": command})
    assert_refused(sb, proc, "good-rpm")
    text = output(proc)
    assert f"{OVERRIDE}=1" in text and "cannot be started" in text
    assert "does not apply" not in text


@pytest.mark.parametrize("missing", ["/nonexistent/wotr verify", "not-executable"])
def test_override_lets_through_only_a_verifier_that_cannot_start(
    tmp_path: Path, sb: DnfSandbox, verifier: Verifier, missing: str
) -> None:
    command = not_executable(tmp_path) if missing == "not-executable" else missing
    proc = sb.install([rpm(tmp_path)], env={"WOTR_VERIFY_CMD": command, OVERRIDE: "1"})
    assert proc.returncode == 0, output(proc)
    assert sb.installed("good-rpm")
    text = output(proc)
    assert "!" * 72 in text and "WARNING" in text
    assert "verified by anyone: good-rpm-1.0-1.noarch" in text
    assert command.split()[0] in text
    assert verifier.calls() == []


@pytest.mark.parametrize("value", ["yes", "0"])  # "" is unset
def test_override_needs_exact_value(tmp_path: Path, sb: DnfSandbox, value: str) -> None:
    proc = sb.install(
        [rpm(tmp_path)], env={"WOTR_VERIFY_CMD": "/nonexistent/wotr", OVERRIDE: value}
    )
    assert_refused(sb, proc, "good-rpm")
    assert f"ignoring {OVERRIDE}" in output(proc)


def test_scope_by_repo_id_and_name(tmp_path: Path, sb: DnfSandbox, verifier: Verifier) -> None:
    # a local file's repo id is @commandline; outside the scope it installs unverified
    toml = tmp_path / "hooks.toml"
    toml.write_text('[scope]\npackages = ["vendor-*"]\n[scope.dnf]\nrepos = ["vendor"]\n')
    env = {**verifier.env(), "WOTR_HOOKS_CONFIG": str(toml)}
    proc = sb.install([rpm(tmp_path, "other-rpm")], env=env)
    assert proc.returncode == 0, output(proc)
    assert sb.installed("other-rpm") and verifier.calls() == []
    proc = sb.install([rpm(tmp_path, "vendor-rpm")], env=env)
    assert proc.returncode != 0, output(proc)
    assert "REFUSED: vendor-rpm-1.0-1.noarch: not verified" in output(proc)


def test_plugin_without_the_shared_runner_refuses(tmp_path: Path, verifier: Verifier) -> None:
    # dnf goes on without a plugin that fails to import: the plugin must load and refuse
    box = sandbox(tmp_path, verifier)
    (box.pluginpath / "wotr_hooklib.py").write_text("raise ImportError('broken install')\n")
    proc = box.install([good(tmp_path, verifier)], env=verifier.env())
    assert proc.returncode != 0, output(proc)
    assert not box.installed("good-rpm")
    assert "wotr failed: cannot load wotr_hooklib.py" in output(proc)


def test_unknown_plugin_option_refuses(tmp_path: Path, verifier: Verifier) -> None:
    box = sandbox(tmp_path, verifier, conf=f"polcy={verifier.policy}\n")
    proc = box.install([good(tmp_path, verifier)], env=verifier.env())
    assert proc.returncode != 0, output(proc)
    assert "unknown option 'polcy'" in output(proc)
