"""hooks/apt/wotr-apt-hook driven by the real apt-get and dpkg in a sandbox root, with the real
`wotr verify`.

No part of apt, dpkg or wotr is mocked: apt-get installs local .deb files into a throw-away root
(testing.sandbox.AptSandbox), runs the hook as DPkg::Pre-Install-Pkgs, the hook runs `wotr
verify` against bundles that throwaway parties signed and exported (testing.sandbox.Verifier),
and we look at the sandbox's dpkg status and file system afterwards.  The host's dpkg status is
checked to be byte-identical around every apt-get run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testing import sim
from testing.sandbox import (
    HOSTILE_KINDS,
    MALLORY,
    PARSER_BUG_FAILURES,
    AptSandbox,
    Verifier,
    build_deb,
    plant_hostile,
    plant_parser_bug,
    tamper,
)

REPO = Path(__file__).resolve().parents[2]

HOOK = REPO / "hooks" / "apt" / "wotr-apt-hook"
OVERRIDE = "WOTR_HOOK_ALLOW_UNVERIFIED"
DEFAULT_BUNDLES = "/var/lib/wotr/bundles"

pytestmark = pytest.mark.skipif(
    shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None,
    reason="apt-get and dpkg-deb are needed (Debian packages apt, dpkg)",
)

# (protocol version, InfoFD or None for stdin)
PROTOCOLS = [(3, 20), (3, None), (2, 21), (1, None)]


def sandbox(
    tmp_path: Path,
    verifier: Verifier,
    protocol: int = 3,
    info_fd: int | None = 20,
    extra_config: tuple[str, ...] | None = None,
) -> AptSandbox:
    """The policy and bundles directory reach the hook as Wotr::Policy / Wotr::Bundles (protocol
    2 and 3); protocol 1 carries no configuration, so for it they go through the environment
    (see `env`)."""
    if extra_config is None:
        extra_config = (
            f'Wotr::Policy "{verifier.policy}";',
            f'Wotr::Bundles "{verifier.bundles}";',
        )
    return AptSandbox(
        tmp_path / "root",
        hook=str(HOOK),
        protocol=protocol,
        info_fd=info_fd,
        extra_config=extra_config,
    )


def env(verifier: Verifier, **extra: str) -> dict[str, str]:
    """The verifier command, plus $WOTR_POLICY / $WOTR_BUNDLES for protocol 1."""
    return {
        **verifier.env(),
        "WOTR_POLICY": str(verifier.policy),
        "WOTR_BUNDLES": str(verifier.bundles),
        **extra,
    }


def deb(tmp_path: Path, name: str = "good-pkg", version: str = "1.0") -> Path:
    return build_deb(tmp_path / "debs", name, version, b"honest payload\n")


def good_deb(tmp_path: Path, verifier: Verifier, name: str = "good-pkg") -> Path:
    d = deb(tmp_path, name)
    verifier.approve(d)
    return d


def evil_deb(tmp_path: Path, verifier: Verifier, name: str = "evil-pkg") -> Path:
    """Approved by the quorum, then ONE byte of its payload changed."""
    d = good_deb(tmp_path, verifier, name)
    tamper(d)
    return d


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def refused_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in output(proc).splitlines() if "REFUSED" in line]


def test_hook_is_executable() -> None:
    assert os.access(HOOK, os.X_OK)
    assert HOOK.read_text().startswith("#!/usr/bin/env python3\n")
    assert not re.search(r"^\s*(import|from) wotr(\.|\s|$)", HOOK.read_text(), re.M)


@pytest.mark.parametrize(("protocol", "fd"), PROTOCOLS)
def test_approved_deb_installs(
    tmp_path: Path, verifier: Verifier, protocol: int, fd: int | None
) -> None:
    sb = sandbox(tmp_path, verifier, protocol, fd)
    d = good_deb(tmp_path, verifier)
    proc = sb.install([d], env=env(verifier))
    assert proc.returncode == 0, output(proc)
    assert sb.installed("good-pkg")
    assert (sb.root / "usr/share/good-pkg/payload").read_bytes() == b"honest payload\n"
    text = output(proc)
    assert "wotr-apt-hook: verified 1 package file(s)" in text
    # one verifier call, from /, with --json, the policy, always --bundles, the absolute path
    records = verifier.records()
    assert len(records) == 1 and records[0]["cwd"] == "/"
    argv = verifier.calls()[0]
    assert argv[argv.index("--bundles") + 1] == str(verifier.bundles)
    assert argv[0] == "--json" and argv[argv.index("--policy") + 1] == str(verifier.policy)
    assert verifier.files() == [[str(d.resolve())]]


@pytest.mark.parametrize(("protocol", "fd"), PROTOCOLS)
def test_tampered_deb_refused(
    tmp_path: Path, verifier: Verifier, protocol: int, fd: int | None
) -> None:
    sb = sandbox(tmp_path, verifier, protocol, fd)
    d = evil_deb(tmp_path, verifier)
    proc = sb.install([d], env=env(verifier))
    assert proc.returncode == 100, output(proc)
    assert not sb.installed("evil-pkg")
    assert "evil-pkg" not in sb.status()
    assert not (sb.root / "usr/share/evil-pkg").exists()
    refused = refused_lines(proc)
    assert len(refused) == 1 and "evil-pkg" in refused[0], output(proc)
    assert "no bundle names this digest" in output(proc)


def test_one_signer_is_not_a_quorum(tmp_path: Path, verifier: Verifier) -> None:
    sb = sandbox(tmp_path, verifier)
    d = deb(tmp_path, "lonely-pkg")
    verifier.approve(d, by=["alice"])
    proc = sb.install([d], env=env(verifier))
    assert proc.returncode == 100, output(proc)
    assert not sb.installed("lonely-pkg")
    assert "lonely-pkg" in refused_lines(proc)[0]
    assert "1 of 2 needed" in output(proc)


def test_untrusted_signer_does_not_count(tmp_path: Path, verifier: Verifier) -> None:
    # alice is trusted, mallory is not in the installer's policy: 1 of 2, refused.
    sb = sandbox(tmp_path, verifier)
    d = deb(tmp_path, "shady-pkg")
    verifier.approve(d, by=["alice", MALLORY])
    proc = sb.install([d], env=env(verifier))
    assert proc.returncode == 100, output(proc)
    assert not sb.installed("shady-pkg")
    assert "shady-pkg" in refused_lines(proc)[0]
    assert "1 of 2 needed" in output(proc)


def test_sidecar_bundle_is_enough(tmp_path: Path, verifier: Verifier) -> None:
    sb = sandbox(tmp_path, verifier)
    d = deb(tmp_path)
    verifier.approve(d, sidecar=True)
    assert list(verifier.bundles.iterdir()) == []  # nothing in the bundles directory
    proc = sb.install([d], env=env(verifier))
    assert proc.returncode == 0, output(proc)
    assert sb.installed("good-pkg")


def test_end_to_end_with_the_installed_commands(tmp_path: Path, verifier: Verifier) -> None:
    # Everything as a user would run it: the parties run `wotr sign`, `git wotr export` writes
    # the bundle, and with WOTR_VERIFY_CMD unset the hook runs the installed `wotr verify`.
    sb = sandbox(tmp_path, verifier)
    good, evil = deb(tmp_path), deb(tmp_path, "evil-pkg")
    verifier.approve(good, evil, cli=True)
    tamper(evil)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    proc = sb.install([good], env={"PATH": path})
    assert proc.returncode == 0, output(proc)
    proc = sb.install([evil], env={"PATH": path})
    assert proc.returncode == 100, output(proc)
    assert "evil-pkg" in refused_lines(proc)[0]
    assert verifier.calls() == []


def test_mix_installs_nothing(tmp_path: Path, verifier: Verifier) -> None:
    sb = sandbox(tmp_path, verifier)
    good = deb(tmp_path)
    good2 = deb(tmp_path, "good-two")
    evil = deb(tmp_path, "evil-pkg")
    verifier.approve(good, good2, evil)
    tamper(evil)
    proc = sb.install([good, evil, good2], env=env(verifier))
    assert proc.returncode == 100, output(proc)
    assert sb.status() == {}
    for name in ("good-pkg", "good-two", "evil-pkg"):
        assert not (sb.root / "usr/share" / name).exists()
    refused = refused_lines(proc)
    assert len(refused) == 1 and "evil-pkg 1.0" in refused[0], refused
    assert "no bundle names this digest" in refused[0]
    # ONE call on all files; the culprit is named from its --json report
    assert len(verifier.calls()) == 1
    first = verifier.files()[0]
    assert sorted(first) == sorted(str(p.resolve()) for p in (good, evil, good2))


def test_policy_and_bundles_from_apt_config(tmp_path: Path, verifier: Verifier) -> None:
    spaced = tmp_path / "bundles dir"
    spaced.mkdir()
    sb = sandbox(
        tmp_path,
        verifier,
        extra_config=(f'Wotr::Policy "{verifier.policy}";', f'Wotr::Bundles "{spaced}";'),
    )
    d = deb(tmp_path)
    verifier.approve(d)
    # the bundle is in verifier.bundles, not in the configured directory: refused
    proc = sb.install([d], env=verifier.env())
    assert proc.returncode == 100, output(proc)
    shutil.copy(next(verifier.bundles.glob("*.wotr")), spaced / "copy.wotr")
    proc = sb.install([d], env=verifier.env())
    assert proc.returncode == 0, output(proc)
    expected = ["--json", "--policy", str(verifier.policy), "--bundles", str(spaced), "--"]
    expected.append(str(d.resolve()))
    assert verifier.calls()[-1] == expected


def test_bundles_default_and_environment(tmp_path: Path, verifier: Verifier) -> None:
    # protocol 1 carries no apt configuration: $WOTR_BUNDLES, else /var/lib/wotr/bundles.
    sb = sandbox(tmp_path, verifier, protocol=1, info_fd=None, extra_config=())
    d, d2 = deb(tmp_path), deb(tmp_path, "good-two")
    verifier.approve(d, d2)
    proc = sb.install([d], env=env(verifier))
    assert proc.returncode == 0, output(proc)
    assert verifier.calls()[-1][3:5] == ["--bundles", str(verifier.bundles)]
    proc = sb.install([d2], env={**verifier.env(), "WOTR_POLICY": str(verifier.policy)})
    if Path(DEFAULT_BUNDLES).is_dir():
        assert verifier.calls()[-1][3:5] == ["--bundles", DEFAULT_BUNDLES]
    else:
        assert proc.returncode == 100, output(proc)
        assert f"bundles directory {DEFAULT_BUNDLES} does not exist" in output(proc)
        assert "fail closed" in output(proc)


def test_git_repository_around_apt_is_ignored(tmp_path: Path, verifier: Verifier) -> None:
    # apt started inside a git repository whose notes DO hold a quorum for the package (alice
    # and bob signed it there) must still judge by the bundles: none here, so refused.
    sb = sandbox(tmp_path, verifier)
    d = deb(tmp_path)
    for name in ("alice", "bob"):
        verifier.world.sign(name, d)
    repo = verifier.world.repo
    shutil.copy(verifier.policy, repo / "threshold.toml")
    shutil.copytree(verifier.policy.parent / "keys", repo / "keys")
    sim.git(repo, "add", "-A")
    sim.git(repo, "commit", "-q", "-m", "policy")
    for name in ("alice", "bob"):
        verifier.world.sign(name, d)
    in_repo = verifier.world.run("verify", "--policy", repo / "threshold.toml", d)
    assert in_repo.returncode == 0, in_repo.stdout + in_repo.stderr  # the notes would pass
    proc = subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", str(d.resolve())],
        env=sb.env(env(verifier)),
        cwd=repo,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 100, output(proc)
    assert not sb.installed("good-pkg")
    assert verifier.records()[0]["cwd"] == "/"


def test_upgrade_is_checked_too(tmp_path: Path, verifier: Verifier) -> None:
    sb = sandbox(tmp_path, verifier)
    proc = sb.install([good_deb(tmp_path, verifier)], env=env(verifier))
    assert proc.returncode == 0, output(proc)
    newer = deb(tmp_path, "good-pkg", "2.0")
    verifier.approve(newer)
    tamper(newer)
    proc = sb.install([newer], env=env(verifier))
    assert proc.returncode == 100, output(proc)
    assert "good-pkg" in refused_lines(proc)[0]
    assert (sb.root / "usr/share/good-pkg/payload").read_bytes() == b"honest payload\n"
    assert "Version: 1.0" in (sb.root / "var/lib/dpkg/status").read_text()


# ---- fail closed; the override (C1: nothing an attacker puts on disk may flip a refusal) -------

NO_OVERRIDE: dict[str, str] = {}
WITH_OVERRIDE = {OVERRIDE: "1"}
OVERRIDES = [
    pytest.param(NO_OVERRIDE, id="no-override"),
    pytest.param(WITH_OVERRIDE, id="override"),
]


def assert_refused(sb: AptSandbox, proc: subprocess.CompletedProcess[str], name: str) -> None:
    assert proc.returncode == 100, output(proc)
    assert not sb.installed(name) and name not in sb.status()
    assert not (sb.root / "usr/share" / name).exists()
    text = output(proc)
    assert any(name in line for line in refused_lines(proc)), text
    assert "fail closed" in text and "/etc/apt/apt.conf.d/80wotr" in text
    assert "!" * 72 not in text and "verified by anyone" not in text  # no override banner


@pytest.mark.parametrize("override", OVERRIDES)
@pytest.mark.parametrize("kind", HOSTILE_KINDS)
def test_hostile_sidecar_or_bundle_is_refused(
    tmp_path: Path, verifier: Verifier, kind: str, override: dict[str, str]
) -> None:
    # C1 as reported: garbage PKG.deb.wotr next to the package and/or a hostile bundle in the
    # bundles directory, read by the real verifier: refused, with and without the override.
    sb = sandbox(tmp_path, verifier)
    d = evil_deb(tmp_path, verifier)
    plant_hostile(kind, d, verifier.bundles)
    proc = sb.install([d], env=env(verifier, **override))
    assert_refused(sb, proc, "evil-pkg")
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
    d = deb(tmp_path, "evil-pkg")
    plant_parser_bug(failure, d, v.bundles, where=where)
    proc = sb.install([d], env=env(v, WOTR_HOOK_TIMEOUT="3", **override))
    assert_refused(sb, proc, "evil-pkg")
    text = output(proc)
    assert f"attacker input triggers: {failure}" in text
    assert f"{OVERRIDE}=1 does not apply" in text


@pytest.mark.parametrize("override", OVERRIDES)
def test_parser_bug_in_a_mixed_run_installs_nothing(
    tmp_path: Path, buggy_verifier: Verifier, override: dict[str, str]
) -> None:
    v = buggy_verifier
    sb = sandbox(tmp_path, v)
    good, evil = deb(tmp_path), deb(tmp_path, "evil-pkg")
    v.approve(good, evil)
    plant_parser_bug("exit 2", evil, v.bundles, where="sidecar")
    proc = sb.install([good, evil], env=env(v, **override))
    assert_refused(sb, proc, "evil-pkg")
    assert sb.status() == {}
    # exit 2 gives no report: no culprit can be told apart, so every package is named
    named = [line for line in refused_lines(proc) if "wotr failed: bad input" in line]
    assert any("good-pkg" in line for line in named)


@pytest.mark.parametrize("override", OVERRIDES)
def test_rejected_package_refused_with_or_without_override(
    tmp_path: Path, verifier: Verifier, override: dict[str, str]
) -> None:
    sb = sandbox(tmp_path, verifier)
    proc = sb.install([evil_deb(tmp_path, verifier)], env={**env(verifier), **override})
    assert_refused(sb, proc, "evil-pkg")
    assert "evil-pkg 1.0 (all): not verified: no bundle names this digest" in output(proc)


@pytest.mark.parametrize("override", OVERRIDES)
@pytest.mark.parametrize(
    "command",
    [
        "sh -c 'exit 3' wotr",  # environment problem
        "sh -c 'exit 2' wotr",  # bad input (e.g. invalid policy)
        "sh -c 'exit 1' wotr",  # not verified
        "sh -c 'exit 127' wotr",  # a wrapper whose own command is missing: it DID start
        "sh -c 'kill -9 $$' wotr",  # crashed
        "sleep 30",  # hangs: WOTR_HOOK_TIMEOUT
        "sh -c 'echo {} ; exit 0' wotr",  # exit 0 without a report saying verified
    ],
)
def test_fail_closed(
    tmp_path: Path, verifier: Verifier, command: str, override: dict[str, str]
) -> None:
    sb = sandbox(tmp_path, verifier)
    proc = sb.install(
        [deb(tmp_path)], env={"WOTR_VERIFY_CMD": command, "WOTR_HOOK_TIMEOUT": "2", **override}
    )
    assert_refused(sb, proc, "good-pkg")
    assert f"{OVERRIDE}=1 does not apply" in output(proc)


@pytest.mark.parametrize("override", OVERRIDES)
def test_fail_closed_on_invalid_policy(
    tmp_path: Path, verifier: Verifier, override: dict[str, str]
) -> None:
    # the real verifier's exit 2 (bad input): an approved package is still refused
    sb = sandbox(tmp_path, verifier)
    d = good_deb(tmp_path, verifier)
    verifier.policy.write_text("version = 1\nthreshold = 5\n")
    proc = sb.install([d], env={**verifier.env(), **override})
    assert_refused(sb, proc, "good-pkg")
    assert "bad input (exit 2)" in output(proc)


@pytest.mark.parametrize("override", OVERRIDES)
def test_fail_closed_without_bundles_directory(
    tmp_path: Path, verifier: Verifier, override: dict[str, str]
) -> None:
    sb = sandbox(tmp_path, verifier)
    d = good_deb(tmp_path, verifier)
    shutil.rmtree(verifier.bundles)
    proc = sb.install([d], env={**verifier.env(), **override})
    assert_refused(sb, proc, "good-pkg")
    assert f"bundles directory {verifier.bundles} does not exist" in output(proc)


def not_executable(tmp_path: Path) -> str:
    path = tmp_path / "wotr-not-executable"
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o644)
    return str(path)


@pytest.mark.parametrize("missing", ["/nonexistent/wotr verify", "not-executable"])
def test_verifier_that_cannot_start_refuses(
    tmp_path: Path, verifier: Verifier, missing: str
) -> None:
    command = not_executable(tmp_path) if missing == "not-executable" else missing
    sb = sandbox(tmp_path, verifier)
    proc = sb.install([deb(tmp_path)], env={**env(verifier), "WOTR_VERIFY_CMD": command})
    assert_refused(sb, proc, "good-pkg")
    text = output(proc)
    assert f"{OVERRIDE}=1" in text and "cannot be started" in text
    assert "does not apply" not in text


@pytest.mark.parametrize("missing", ["/nonexistent/wotr verify", "not-executable"])
def test_override_lets_through_only_a_verifier_that_cannot_start(
    tmp_path: Path, verifier: Verifier, missing: str
) -> None:
    command = not_executable(tmp_path) if missing == "not-executable" else missing
    sb = sandbox(tmp_path, verifier)
    proc = sb.install(
        [deb(tmp_path)], env={**env(verifier), "WOTR_VERIFY_CMD": command, OVERRIDE: "1"}
    )
    assert proc.returncode == 0, output(proc)
    assert sb.installed("good-pkg")
    text = output(proc)
    assert "!" * 72 in text
    assert "WARNING" in text and "NOT" in text and "verified by anyone: good-pkg" in text
    assert command.split()[0] in text
    assert verifier.calls() == []


@pytest.mark.parametrize("value", ["yes", "true", "0", " 1", "1 "])  # "" is unset
def test_override_needs_exact_value(tmp_path: Path, verifier: Verifier, value: str) -> None:
    sb = sandbox(tmp_path, verifier)
    proc = sb.install(
        [deb(tmp_path)], env={"WOTR_VERIFY_CMD": "/nonexistent/wotr", OVERRIDE: value}
    )
    assert_refused(sb, proc, "good-pkg")
    assert f"ignoring {OVERRIDE}" in output(proc)


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
@pytest.mark.parametrize("override", OVERRIDES)
def test_unparsable_protocol_fails_closed(
    text: str, verifier: Verifier, override: dict[str, str]
) -> None:
    proc = run_hook(text, env(verifier, **override))
    assert proc.returncode == 1
    assert "fail closed" in proc.stderr and "REFUSED: cannot check" in proc.stderr
    assert verifier.calls() == []


def test_nothing_to_unpack_needs_no_verifier() -> None:
    text = "VERSION 3\nA=b\n\npkg 1.0 amd64 same > - - none **REMOVE**\n"
    proc = run_hook(text, {"WOTR_VERIFY_CMD": "/nonexistent/wotr"})
    assert proc.returncode == 0, proc.stderr


def test_paths_with_spaces(tmp_path: Path, verifier: Verifier) -> None:
    d = tmp_path / "a dir"
    d.mkdir()
    evil = d / "evil pkg.deb"
    evil.write_bytes(b"honest payload, evil twin")
    good = d / "good.deb"
    good.write_bytes(b"fine")
    verifier.approve(good)
    text = (
        f"VERSION 3\nWotr::Policy={verifier.policy}\nWotr::Bundles={verifier.bundles}\n\n"
        f"evil - - none < 1 all none {evil}\n"
        f"good - - none < 1 all none {good}\n"
        "good - - none < 1 all none **CONFIGURE**\n"
    )
    proc = run_hook(text, verifier.env())
    assert proc.returncode == 1, proc.stderr
    assert "REFUSED: evil 1 (all): not verified: no bundle names this digest" in proc.stderr
    assert "REFUSED: good" not in proc.stderr
    assert verifier.files()[0] == [str(evil), str(good)]


def test_two_spellings_of_one_key_with_two_values_refuse(
    tmp_path: Path, verifier: Verifier
) -> None:
    # apt merges keys that differ only in case; two values for one Wotr key cannot come from it
    good = tmp_path / "good.deb"
    good.write_bytes(b"fine")
    text = (
        f"VERSION 3\nWotr::Policy={verifier.policy}\nwotr::policy=/tmp/other.toml\n"
        f"Wotr::Bundles={verifier.bundles}\n\ngood - - none < 1 all none {good}\n"
    )
    proc = run_hook(text, verifier.env())
    assert proc.returncode == 1, proc.stderr
    assert "twice with two values" in proc.stderr
    assert verifier.calls() == []
