"""hooks/verify-file in front of a real installer (`verify-file X && tar -xf X -C DEST`, run by
/bin/sh as its docstring shows), with the real `wotr verify`.

The package is an uncompressed tarball approved by a quorum of throwaway parties (bundle in the
bundles directory, testing.sandbox.Verifier); "installed" means tar extracted its payload into
DEST.  Nothing is mocked but where noted: buggy_verify.py is the real verifier with a parser bug
that attacker-planted files trigger (exit 2, 3, 70, a crash, a hang).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from testing.sandbox import (
    HOSTILE_KINDS,
    PARSER_BUG_FAILURES,
    Verifier,
    plant_hostile,
    plant_parser_bug,
    tamper,
)

REPO = Path(__file__).resolve().parents[2]
VERIFY_FILE = REPO / "hooks" / "verify-file"
OVERRIDE = "WOTR_HOOK_ALLOW_UNVERIFIED"
NO_OVERRIDE: dict[str, str] = {}
WITH_OVERRIDE = {OVERRIDE: "1"}
OVERRIDES = [
    pytest.param(NO_OVERRIDE, id="no-override"),
    pytest.param(WITH_OVERRIDE, id="override"),
]
INSTALL = 'verify-file "$1" && mkdir -p "$2" && tar -xf "$1" -C "$2"'


def tarball(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"{name}-1.0.tar"
    data = b"honest payload\n"
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as tf:
        info = tarfile.TarInfo(f"{name}/payload")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tf.addfile(info, io.BytesIO(data))
    return out


def install(
    tmp_path: Path, verifier: Verifier, pkg: Path, **extra: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`verify-file PKG && tar -xf PKG -C DEST` as an administrator's script would run it."""
    dest = tmp_path / "dest"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WOTR_")}
    env.update(verifier.env())
    env.update(WOTR_POLICY=str(verifier.policy), WOTR_BUNDLES=str(verifier.bundles))
    env["PATH"] = f"{VERIFY_FILE.parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    proc = subprocess.run(
        ["sh", "-c", INSTALL, "sh", str(pkg), str(dest)],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc, dest


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def assert_refused(proc: subprocess.CompletedProcess[str], dest: Path, pkg: Path) -> None:
    assert proc.returncode != 0, output(proc)
    assert not dest.exists(), "the installer ran"
    text = output(proc)
    refused = [line for line in text.splitlines() if line.startswith("verify-file: REFUSED")]
    assert len(refused) == 1 and str(pkg) in refused[0], text
    assert "knowingly" in text
    assert "!" * 72 not in text and "UNVERIFIED with" not in text  # no override banner


def test_approved_file_installs(tmp_path: Path, verifier: Verifier) -> None:
    pkg = tarball(tmp_path / "dl", "tool")
    verifier.approve(pkg)
    proc, dest = install(tmp_path, verifier, pkg)
    assert proc.returncode == 0, output(proc)
    assert (dest / "tool/payload").read_bytes() == b"honest payload\n"
    assert verifier.records()[0]["cwd"] == "/"
    assert verifier.calls()[0][3:5] == ["--bundles", str(verifier.bundles)]


@pytest.mark.parametrize("override", OVERRIDES)
def test_rejected_file_refused_with_or_without_override(
    tmp_path: Path, verifier: Verifier, override: dict[str, str]
) -> None:
    pkg = tarball(tmp_path / "dl", "evil")
    verifier.approve(pkg)
    tamper(pkg)
    proc, dest = install(tmp_path, verifier, pkg, **override)
    assert_refused(proc, dest, pkg)
    assert proc.returncode == 1
    assert "no bundle names this digest" in output(proc)
    assert f"{OVERRIDE}=1 does not apply" in proc.stderr


@pytest.mark.parametrize("override", OVERRIDES)
@pytest.mark.parametrize("kind", HOSTILE_KINDS)
def test_hostile_sidecar_or_bundle_is_refused(
    tmp_path: Path, verifier: Verifier, kind: str, override: dict[str, str]
) -> None:
    # C1 as reported: `verify-file evil.tar.gz` is refused; with a garbage evil.tar.gz.wotr
    # (and/or a hostile bundle in the bundles directory) it must STILL be refused, also with
    # the override set.
    pkg = tarball(tmp_path / "dl", "evil")
    plant_hostile(kind, pkg, verifier.bundles)
    proc, dest = install(tmp_path, verifier, pkg, **override)
    assert_refused(proc, dest, pkg)


@pytest.mark.parametrize("override", OVERRIDES)
@pytest.mark.parametrize("where", ["sidecar", "bundle"])
@pytest.mark.parametrize("failure", PARSER_BUG_FAILURES)
def test_parser_bug_triggered_by_attacker_is_refused(
    tmp_path: Path, buggy_verifier: Verifier, failure: str, where: str, override: dict[str, str]
) -> None:
    pkg = tarball(tmp_path / "dl", "evil")
    plant_parser_bug(failure, pkg, buggy_verifier.bundles, where=where)
    proc, dest = install(tmp_path, buggy_verifier, pkg, WOTR_HOOK_TIMEOUT="3", **override)
    assert_refused(proc, dest, pkg)
    assert proc.returncode in (2, 3)
    text = output(proc)
    assert f"attacker input triggers: {failure}" in text
    assert f"{OVERRIDE}=1 does not apply" in text


@pytest.mark.parametrize("override", OVERRIDES)
def test_missing_file_and_bad_policy_refused(
    tmp_path: Path, verifier: Verifier, override: dict[str, str]
) -> None:
    proc, dest = install(tmp_path, verifier, tmp_path / "missing.tar", **override)
    assert_refused(proc, dest, tmp_path / "missing.tar")
    assert proc.returncode == 2
    pkg = tarball(tmp_path / "dl", "tool")
    verifier.approve(pkg)
    verifier.policy.write_text("version = 1\nthreshold = 5\n")
    proc, dest = install(tmp_path, verifier, pkg, **override)
    assert_refused(proc, dest, pkg)
    assert proc.returncode == 2


def not_executable(tmp_path: Path) -> str:
    path = tmp_path / "wotr-not-executable"
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o644)
    return str(path)


@pytest.mark.parametrize("missing", ["/nonexistent/wotr verify", "not-executable"])
def test_verifier_that_cannot_start(tmp_path: Path, verifier: Verifier, missing: str) -> None:
    command = not_executable(tmp_path) if missing == "not-executable" else missing
    pkg = tarball(tmp_path / "dl", "tool")
    proc, dest = install(tmp_path, verifier, pkg, WOTR_VERIFY_CMD=command)
    assert_refused(proc, dest, pkg)
    assert proc.returncode == 3 and f"{OVERRIDE}=1" in proc.stderr
    # the one case the override covers: nothing was read, so nothing an attacker wrote counts
    proc, dest = install(tmp_path, verifier, pkg, WOTR_VERIFY_CMD=command, **WITH_OVERRIDE)
    assert proc.returncode == 0, output(proc)
    assert (dest / "tool/payload").exists()
    assert (
        "!" * 72 in proc.stderr and "NOT\nverify-file: WARNING: verified by anyone" in proc.stderr
    )
    shutil.rmtree(dest)
    for value in ("yes", "0"):  # "" is unset
        proc, dest = install(tmp_path, verifier, pkg, WOTR_VERIFY_CMD=command, **{OVERRIDE: value})
        assert_refused(proc, dest, pkg)
        assert f"ignoring {OVERRIDE}" in proc.stderr


@pytest.mark.parametrize("override", OVERRIDES)
@pytest.mark.parametrize(
    "command", ["sh -c 'exit 9' wotr", "sh -c 'exit 127' wotr", "sh -c 'kill -9 $$' wotr"]
)
def test_other_failures_refused(
    tmp_path: Path, verifier: Verifier, command: str, override: dict[str, str]
) -> None:
    pkg = tarball(tmp_path / "dl", "tool")
    proc, dest = install(tmp_path, verifier, pkg, WOTR_VERIFY_CMD=command, **override)
    assert_refused(proc, dest, pkg)
    assert proc.returncode == 3


def test_a_file_named_like_the_help_option_is_no_yes(tmp_path: Path, verifier: Verifier) -> None:
    """Found by an attacker review: `verify-file *` in a directory holding a file named -h
    printed help and exited 0 without verifying evil.tar. Help alone exits 2; with other
    arguments every one is a file."""
    pkg = tarball(tmp_path / "dl", "evil")
    (pkg.parent / "-h").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WOTR_")}
    env.update(verifier.env())
    env.update(WOTR_POLICY=str(verifier.policy), WOTR_BUNDLES=str(verifier.bundles))
    for argv in (["-h", pkg.name], ["--", "-h", pkg.name], ["-h"], ["--help"]):
        proc = subprocess.run(
            [sys.executable, str(VERIFY_FILE), *argv],
            env=env,
            cwd=pkg.parent,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode != 0, (argv, output(proc))


def test_relative_policy_is_resolved_against_the_callers_directory(
    tmp_path: Path, verifier: Verifier
) -> None:
    # issue 10 section 7: a relative WOTR_POLICY named /threshold.toml (wotr runs from /)
    f = tarball(tmp_path / "dl", "good")
    verifier.approve(f)
    rel = os.path.relpath(verifier.policy, tmp_path)
    env = {**verifier.env(), "WOTR_POLICY": rel, "WOTR_BUNDLES": str(verifier.bundles)}
    proc = subprocess.run(
        [str(VERIFY_FILE), str(f)],
        env={**os.environ, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    argv = verifier.calls()[0]
    assert argv[argv.index("--policy") + 1] == str(verifier.policy)
