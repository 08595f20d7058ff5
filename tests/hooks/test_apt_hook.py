"""hooks/apt/wotr-apt-hook driven by the real apt-get and dpkg in a sandbox root.

No part of apt or dpkg is mocked: apt-get installs local .deb files into a throw-away root
(testing.sandbox.AptSandbox), runs the hook as DPkg::Pre-Install-Pkgs, and we look at the
sandbox's dpkg status and file system afterwards.  The host's dpkg status is checked to be
byte-identical around every apt-get run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from testing.sandbox import AptSandbox, Verifier, build_deb

REPO = Path(__file__).resolve().parents[2]

HOOK = REPO / "hooks" / "apt" / "wotr-apt-hook"
OVERRIDE = "WOTR_HOOK_ALLOW_UNVERIFIED"

pytestmark = pytest.mark.skipif(
    shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None,
    reason="apt-get and dpkg-deb are needed (Debian packages apt, dpkg)",
)

# (protocol version, InfoFD or None for stdin)
PROTOCOLS = [(3, 20), (3, None), (2, 21), (1, None)]


def sandbox(
    tmp_path: Path,
    protocol: int = 3,
    info_fd: int | None = 20,
    extra_config: tuple[str, ...] = (),
) -> AptSandbox:
    return AptSandbox(
        tmp_path / "root",
        hook=str(HOOK),
        protocol=protocol,
        info_fd=info_fd,
        extra_config=extra_config,
    )


def good_deb(tmp_path: Path, verifier: Verifier, name: str = "good-pkg") -> Path:
    deb = build_deb(tmp_path / "debs", name, "1.0", b"honest payload\n")
    verifier.approve(deb)
    return deb


def evil_deb(tmp_path: Path, name: str = "evil-pkg") -> Path:
    return build_deb(tmp_path / "debs", name, "1.0", b"TAMPERED payload\n")


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def test_hook_is_executable() -> None:
    assert os.access(HOOK, os.X_OK)
    assert HOOK.read_text().startswith("#!/usr/bin/env python3\n")
    assert "import wotr" not in HOOK.read_text()


@pytest.mark.parametrize(("protocol", "fd"), PROTOCOLS)
def test_trusted_deb_installs(
    tmp_path: Path, verifier: Verifier, protocol: int, fd: int | None
) -> None:
    sb = sandbox(tmp_path, protocol, fd)
    deb = good_deb(tmp_path, verifier)
    proc = sb.install([deb], env=verifier.env())
    assert proc.returncode == 0, output(proc)
    assert sb.installed("good-pkg")
    assert (sb.root / "usr/share/good-pkg/payload").read_bytes() == b"honest payload\n"
    assert "wotr-apt-hook: verified 1 package file(s)" in output(proc)
    # one verifier call naming the absolute path of the .deb apt is about to unpack
    calls = verifier.calls()
    assert len(calls) == 1
    assert calls[0] == [str(deb.resolve())]


@pytest.mark.parametrize(("protocol", "fd"), PROTOCOLS)
def test_tampered_deb_refused(
    tmp_path: Path, verifier: Verifier, protocol: int, fd: int | None
) -> None:
    sb = sandbox(tmp_path, protocol, fd)
    deb = evil_deb(tmp_path)
    proc = sb.install([deb], env=verifier.env())
    assert proc.returncode == 100, output(proc)
    assert not sb.installed("evil-pkg")
    assert "evil-pkg" not in sb.status()
    assert not (sb.root / "usr/share/evil-pkg").exists()
    text = output(proc)
    assert "REFUSED" in text
    assert "evil-pkg" in text.split("REFUSED", 1)[1].splitlines()[0]


def test_mix_installs_nothing(tmp_path: Path, verifier: Verifier) -> None:
    sb = sandbox(tmp_path)
    good = good_deb(tmp_path, verifier)
    good2 = good_deb(tmp_path, verifier, "good-two")
    evil = evil_deb(tmp_path)
    proc = sb.install([good, evil, good2], env=verifier.env())
    assert proc.returncode == 100, output(proc)
    assert sb.status() == {}
    for name in ("good-pkg", "good-two", "evil-pkg"):
        assert not (sb.root / "usr/share" / name).exists()
    refused = [line for line in output(proc).splitlines() if "REFUSED" in line]
    assert len(refused) == 1 and "evil-pkg" in refused[0], refused
    # the verdict comes from ONE call on all files; later calls only name the culprit
    first = verifier.calls()[0]
    assert sorted(first) == sorted(str(p.resolve()) for p in (good, evil, good2))


def test_policy_and_bundles_from_apt_config(tmp_path: Path, verifier: Verifier) -> None:
    sb = sandbox(
        tmp_path,
        extra_config=(
            'Wotr::Policy "/etc/wotr/threshold.toml";',
            'Wotr::Bundles "/var/lib/wotr/bundles dir";',
        ),
    )
    deb = good_deb(tmp_path, verifier)
    proc = sb.install([deb], env=verifier.env())
    assert proc.returncode == 0, output(proc)
    assert verifier.calls() == [
        [
            "--policy",
            "/etc/wotr/threshold.toml",
            "--bundles",
            "/var/lib/wotr/bundles dir",
            str(deb.resolve()),
        ]
    ]


def test_upgrade_is_checked_too(tmp_path: Path, verifier: Verifier) -> None:
    sb = sandbox(tmp_path)
    proc = sb.install([good_deb(tmp_path, verifier)], env=verifier.env())
    assert proc.returncode == 0, output(proc)
    newer = build_deb(tmp_path / "debs", "good-pkg", "2.0", b"TAMPERED update\n")
    proc = sb.install([newer], env=verifier.env())
    assert proc.returncode == 100, output(proc)
    assert (sb.root / "usr/share/good-pkg/payload").read_bytes() == b"honest payload\n"
    assert "Version: 1.0" in (sb.root / "var/lib/dpkg/status").read_text()


@pytest.mark.parametrize(
    "command",
    [
        "/nonexistent/wotr verify",  # verifier missing
        "sh -c 'exit 3' wotr",  # environment problem
        "sh -c 'exit 2' wotr",  # bad input (e.g. invalid policy)
        "sh -c 'kill -9 $$' wotr",  # crashed
        "",  # empty command
    ],
)
def test_fail_closed(tmp_path: Path, verifier: Verifier, command: str) -> None:
    sb = sandbox(tmp_path)
    deb = good_deb(tmp_path, verifier)
    proc = sb.install([deb], env={"WOTR_VERIFY_CMD": command})
    assert proc.returncode == 100, output(proc)
    assert not sb.installed("good-pkg")
    text = output(proc)
    assert "fail closed" in text
    assert f"{OVERRIDE}=1" in text and "/etc/apt/apt.conf.d/80wotr" in text


def test_override_allows_with_loud_warning(tmp_path: Path, verifier: Verifier) -> None:
    sb = sandbox(tmp_path)
    deb = good_deb(tmp_path, verifier)
    proc = sb.install([deb], env={"WOTR_VERIFY_CMD": "/nonexistent/wotr verify", OVERRIDE: "1"})
    assert proc.returncode == 0, output(proc)
    assert sb.installed("good-pkg")
    text = output(proc)
    assert "WARNING" in text and "NOT verified" in text and "/nonexistent/wotr" in text


@pytest.mark.parametrize("value", ["yes", "true", "0", ""])
def test_override_needs_exact_value(tmp_path: Path, verifier: Verifier, value: str) -> None:
    sb = sandbox(tmp_path)
    deb = good_deb(tmp_path, verifier)
    proc = sb.install([deb], env={"WOTR_VERIFY_CMD": "/nonexistent/wotr", OVERRIDE: value})
    assert proc.returncode == 100, output(proc)
    assert not sb.installed("good-pkg")


def test_override_never_passes_a_rejected_package(tmp_path: Path, verifier: Verifier) -> None:
    sb = sandbox(tmp_path)
    proc = sb.install([evil_deb(tmp_path)], env={**verifier.env(), OVERRIDE: "1"})
    assert proc.returncode == 100, output(proc)
    assert not sb.installed("evil-pkg")
    assert not (sb.root / "usr/share/evil-pkg").exists()


# ---- the hook alone, fed protocol text directly (apt cannot be made to send these) ----------


def run_hook(stdin: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WOTR_", "APT_"))}
    return subprocess.run(
        [str(HOOK)], input=stdin, env={**clean, **env}, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "text",
    [
        "VERSION 4\nA=b\n\npkg - - none < 1 all none /x.deb\n",  # unknown future protocol
        "VERSION 3\nA=b\npkg - - none < 1 all none /x.deb\n",  # no blank line after config
        "VERSION 3\nA=b\n\npkg 1.0 = 1.0 /x.deb\n",  # v2 line under VERSION 3
        "VERSION 3\nnot-a-config-line\n\n",
    ],
)
def test_unparsable_protocol_fails_closed(text: str, verifier: Verifier) -> None:
    proc = run_hook(text, verifier.env())
    assert proc.returncode != 0
    assert "fail closed" in proc.stderr
    assert verifier.calls() == []


def test_nothing_to_unpack_needs_no_verifier() -> None:
    text = "VERSION 3\nA=b\n\npkg 1.0 amd64 same > - - none **REMOVE**\n"
    proc = run_hook(text, {"WOTR_VERIFY_CMD": "/nonexistent/wotr"})
    assert proc.returncode == 0, proc.stderr


def test_paths_with_spaces(tmp_path: Path, verifier: Verifier) -> None:
    d = tmp_path / "a dir"
    d.mkdir()
    evil = d / "evil pkg.deb"
    evil.write_bytes(b"TAMPERED")
    good = d / "good.deb"
    good.write_bytes(b"fine")
    text = (
        f"VERSION 3\nA=b\n\nevil - - none < 1 all none {evil}\n"
        f"good - - none < 1 all none {good}\n"
        "good - - none < 1 all none **CONFIGURE**\n"
    )
    proc = run_hook(text, verifier.env())
    assert proc.returncode == 1
    assert f"REFUSED: evil ({evil})" in proc.stderr
    assert verifier.calls()[0] == [str(evil), str(good)]
