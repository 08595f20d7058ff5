"""hooks/pacman/wotr.hook + wotr-pacman-hook driven by the real pacman in a sandbox RootDir,
with the real `wotr verify`.

pacman runs hooks chrooted into RootDir, so testing.sandbox.PacmanSandbox bind-mounts, read-only
and inside a private mount namespace, the host's /usr (the hook runs with /usr/bin/python3) and
the directories this interpreter and wotr live in (testing.sandbox.python_binds: e.g. a pyenv
prefix under /root/.pyenv and the editable source tree), at the same paths.  `wotr verify` then
runs chrooted exactly as outside, with the installer's files where an installed system keeps
them: the policy at /etc/wotr/policy.toml and the bundles in /var/lib/wotr/bundles, both inside
RootDir and both found by default (neither WOTR_POLICY nor WOTR_BUNDLES is set).
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
    PacmanSandbox,
    Verifier,
    VerifierFactory,
    build_pkg,
    can_unshare_mounts,
    plant_hostile,
    plant_parser_bug,
    python_binds,
    tamper,
)

REPO = Path(__file__).resolve().parents[2]

HOOK_DIR = REPO / "hooks" / "pacman"
RECORDER = Path(__file__).resolve().parent / "record_verify.py"
OVERRIDE = "WOTR_HOOK_ALLOW_UNVERIFIED"

pytestmark = [
    pytest.mark.skipif(shutil.which("pacman") is None, reason="needs pacman-package-manager"),
    pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs /usr/bin/python3"),
    pytest.mark.skipif(not can_unshare_mounts(), reason="needs root for unshare --mount"),
]


class PacmanEnv:
    def __init__(self, tmp_path: Path, factory: VerifierFactory, command: str = "") -> None:
        hook_text = (HOOK_DIR / "wotr.hook").read_text()
        exec_line = "Exec = /usr/share/libalpm/scripts/wotr-pacman-hook"
        assert exec_line in hook_text
        self.sb = PacmanSandbox(tmp_path / "root", binds=python_binds(RECORDER.parent))
        script = self.sb.stage(HOOK_DIR / "wotr-pacman-hook")
        self.sb.stage(REPO / "hooks" / "wotr_hooklib.py", mode=0o644)
        hook_text = hook_text.replace(exec_line, f"Exec = {script}")
        (self.sb.hookdir / "wotr.hook").write_text(hook_text)
        self.verifier: Verifier = factory(
            policy=self.sb.inside("/etc/wotr/policy.toml"),
            bundles=self.sb.inside("/var/lib/wotr/bundles"),
            log=self.sb.inside("/opt/wotr-test/calls.jsonl"),
            log_seen_as="/opt/wotr-test/calls.jsonl",
            **({"command": command} if command else {}),
        )
        self.pkgs = tmp_path / "pkgs"

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.verifier.env(), **extra}

    def pkg(self, name: str = "good-pkg", version: str = "1.0") -> Path:
        return build_pkg(self.pkgs, name, version, b"honest payload\n")

    def good(self, name: str = "good-pkg", version: str = "1.0") -> Path:
        p = self.pkg(name, version)
        self.verifier.approve(p)
        return p

    def evil(self, name: str = "evil-pkg", version: str = "1.0") -> Path:
        """Approved by the quorum, then one byte of the payload changed."""
        p = self.good(name, version)
        tamper(p)
        return p


@pytest.fixture
def pm(tmp_path: Path, verifier_factory: VerifierFactory) -> PacmanEnv:
    return PacmanEnv(tmp_path, verifier_factory)


@pytest.fixture
def pm_buggy(tmp_path: Path, verifier_factory: VerifierFactory, buggy_command: str) -> PacmanEnv:
    """The real verifier with a parser bug that attacker files trigger (buggy_verify.py)."""
    return PacmanEnv(tmp_path, verifier_factory, command=buggy_command)


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def refused(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in output(proc).splitlines() if "REFUSED" in line]


def test_binds_cover_the_interpreter() -> None:
    binds = python_binds()
    exe = Path(sys.executable).resolve()
    assert exe.is_relative_to("/usr") or any(exe.is_relative_to(b) for b in binds)
    assert all(not b.is_relative_to("/usr") for b in binds)


def test_approved_package_installs(pm: PacmanEnv) -> None:
    pkg = pm.good()
    proc = pm.sb.install([pkg], env=pm.env())
    assert proc.returncode == 0, output(proc)
    assert pm.sb.installed("good-pkg")
    assert pm.sb.inside("/opt/good-pkg/payload").read_bytes() == b"honest payload\n"
    text = output(proc)
    assert "wotr-pacman-hook: verified 1 package file(s)" in text
    records = pm.verifier.records()
    assert len(records) == 1 and records[0]["cwd"] == "/"
    argv = pm.verifier.calls()[0]
    assert argv[:3] == ["--json", "--policy", "/etc/wotr/policy.toml"]
    assert argv[3:5] == ["--bundles", "/var/lib/wotr/bundles"]
    files = pm.verifier.files()[0]
    assert len(files) == 1 and files[0].endswith(str(pkg))  # via /proc/<pacman pid>/root
    assert (pm.verifier.bundles / ".wotr-index.json").exists()  # wotr ran in the root


def test_tampered_package_refused(pm: PacmanEnv) -> None:
    proc = pm.sb.install([pm.evil()], env=pm.env())
    assert proc.returncode == 1, output(proc)
    assert not pm.sb.installed("evil-pkg")
    assert not pm.sb.inside("/opt/evil-pkg").exists()
    assert len(refused(proc)) == 1 and "evil-pkg-1.0-1-any.pkg.tar" in refused(proc)[0]
    assert "no bundle names this digest" in output(proc)


def test_one_signer_is_not_a_quorum(pm: PacmanEnv) -> None:
    pkg = pm.pkg("lonely-pkg")
    pm.verifier.approve(pkg, by=["alice"])
    proc = pm.sb.install([pkg], env=pm.env())
    assert proc.returncode == 1, output(proc)
    assert not pm.sb.installed("lonely-pkg")
    assert "lonely-pkg" in refused(proc)[0] and "1 of 2 needed" in output(proc)


def test_untrusted_signer_does_not_count(pm: PacmanEnv) -> None:
    pkg = pm.pkg("shady-pkg")
    pm.verifier.approve(pkg, by=["alice", MALLORY])
    proc = pm.sb.install([pkg], env=pm.env())
    assert proc.returncode == 1, output(proc)
    assert not pm.sb.installed("shady-pkg")
    assert "shady-pkg" in refused(proc)[0] and "1 of 2 needed" in output(proc)


def test_sidecar_and_installed_wotr_command(pm: PacmanEnv) -> None:
    # the bundle next to the file (read through /proc/<pacman pid>/root), and the default
    # command `wotr verify`: the interpreter's own `wotr` script, found on PATH in the chroot.
    pkg = pm.pkg()
    pm.verifier.approve(pkg, sidecar=True)
    assert not list(pm.verifier.bundles.glob("*.wotr"))
    bindir = Path(sys.executable).parent
    if not (bindir / "wotr").exists():
        pytest.skip(f"no wotr script next to {sys.executable}")
    env = {"PATH": f"{bindir}{os.pathsep}/usr/bin:/bin"}
    proc = pm.sb.install([pkg], env=env)
    assert proc.returncode == 0, output(proc)
    assert pm.sb.installed("good-pkg")
    assert pm.verifier.calls() == []


def test_mix_installs_nothing(pm: PacmanEnv) -> None:
    good, evil, good2 = pm.pkg(), pm.pkg("evil-pkg"), pm.pkg("good-two")
    pm.verifier.approve(good, evil, good2)
    tamper(evil)
    proc = pm.sb.install([good, evil, good2], env=pm.env())
    assert proc.returncode == 1, output(proc)
    for name in ("good-pkg", "good-two", "evil-pkg"):
        assert not pm.sb.installed(name)
        assert not pm.sb.inside(f"/opt/{name}").exists()
    assert len(refused(proc)) == 1 and "evil-pkg" in refused(proc)[0], refused(proc)
    assert len(pm.verifier.files()[0]) == 3


def test_relative_path_on_command_line(pm: PacmanEnv) -> None:
    # `pacman -U ./x.pkg.tar` from the package's directory: libalpm has left that directory
    # when hooks run, so the hook finds it through pacman's open directory descriptor.
    good, evil = pm.good(), pm.evil()
    proc = pm.sb.pacman(["-U", evil.name], env=pm.env(), cwd=evil.parent)
    assert proc.returncode == 1, output(proc)
    assert not pm.sb.installed("evil-pkg")
    assert "evil-pkg" in " ".join(refused(proc)), output(proc)
    proc = pm.sb.pacman(["-U", f"./{good.name}"], env=pm.env(), cwd=good.parent)
    assert proc.returncode == 0, output(proc)
    assert pm.sb.installed("good-pkg")
    assert pm.verifier.files()[-1][0].endswith(f"/./{good.name}")


def test_misnamed_file_is_still_verified(pm: PacmanEnv) -> None:
    # The file is named like the approved good-pkg-1.0 but holds an unapproved good-pkg 2.0:
    # every file on the command line is verified by its digest, whatever its name says.
    approved = pm.good()
    elsewhere = pm.pkgs / "approved"
    elsewhere.mkdir()
    approved.rename(elsewhere / approved.name)
    pm.pkg("good-pkg", "2.0").rename(approved)
    proc = pm.sb.install([approved], env=pm.env())
    assert proc.returncode == 1, output(proc)
    assert not pm.sb.installed("good-pkg")
    assert approved.name in " ".join(refused(proc)), output(proc)
    # ...and a name that covers no target fails closed (the target's archive is not found)
    pm.pkg("evil-pkg").rename(approved)
    proc = pm.sb.install([approved], env=pm.env())
    assert proc.returncode == 1, output(proc)
    assert not pm.sb.installed("evil-pkg")
    assert "no package archive for 'evil-pkg'" in output(proc)


@pytest.mark.parametrize(
    "name", ["good-pkg-2.0-any.tar.zst", "GOOD-PKG-2.0-1-ANY.PKG.TAR.ZST", "x"]
)
def test_a_file_not_named_like_a_package_is_verified_not_an_older_cached_one(
    pm: PacmanEnv, name: str
) -> None:
    """`pacman -U FILE` installs FILE whatever its name. With the approved 1.0 in the cache,
    a renamed unapproved 2.0 must be the file verified (found by an attacker review: the hook
    used to verify the cached 1.0 and let 2.0 in)."""
    good = pm.good("good-pkg", "1.0")
    shutil.copy(good, pm.sb.cachedir / good.name)
    evil = pm.pkg("good-pkg", "2.0")
    renamed = evil.with_name(name)
    evil.rename(renamed)
    for argv in (["-U", str(renamed)], ["-U", "--", str(renamed)], ["-Udd", str(renamed)]):
        proc = pm.sb.pacman(argv, env=pm.env())
        assert proc.returncode == 1, output(proc)
        assert not pm.sb.installed("good-pkg")
        assert any(name in line for line in refused(proc)), output(proc)
    proc = pm.sb.pacman(["-U", str(good)], env=pm.env())
    assert proc.returncode == 0, output(proc)


def test_a_cache_file_without_a_package_name_fails_closed(pm: PacmanEnv) -> None:
    """A target looked up by name in the cache while a file there has no package name: that
    file could be what pacman installs for the target, so the hook refuses."""
    good = pm.good("good-pkg", "1.0")
    shutil.copy(good, pm.sb.cachedir / good.name)
    renamed = good.with_name("pkgfile")  # covers no target by its name: looked up in the cache
    shutil.copy(good, renamed)
    junk = pm.sb.cachedir / "leftover.tar.zst"
    junk.write_bytes(b"not a package name")
    proc = pm.sb.pacman(["-U", str(renamed)], env=pm.env())
    assert proc.returncode == 1, output(proc)
    assert "is not named NAME-VER-REL-ARCH" in output(proc)
    assert not pm.sb.installed("good-pkg")
    junk.unlink()
    proc = pm.sb.pacman(["-U", str(renamed)], env=pm.env())
    assert proc.returncode == 0, output(proc)
    assert pm.sb.installed("good-pkg")


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
    assert any(str(pm.sb.cachedir) in f for c in pm.verifier.files() for f in c)


def test_upgrade_checked(pm: PacmanEnv) -> None:
    assert pm.sb.install([pm.good()], env=pm.env()).returncode == 0
    proc = pm.sb.install([pm.evil("good-pkg", "2.0")], env=pm.env())
    assert proc.returncode == 1, output(proc)
    assert "good-pkg-2.0-1-any.pkg.tar" in refused(proc)[0]
    assert pm.sb.inside("/opt/good-pkg/payload").read_bytes() == b"honest payload\n"


# ---- fail closed; the override (C1: nothing an attacker puts on disk may flip a refusal) -------

NO_OVERRIDE: dict[str, str] = {}
WITH_OVERRIDE = {OVERRIDE: "1"}
OVERRIDES = [
    pytest.param(NO_OVERRIDE, id="no-override"),
    pytest.param(WITH_OVERRIDE, id="override"),
]
HOOK_FILE = "/usr/share/libalpm/hooks/wotr.hook"


def assert_refused(pm: PacmanEnv, proc: subprocess.CompletedProcess[str], name: str) -> None:
    assert proc.returncode == 1, output(proc)
    assert not pm.sb.installed(name)
    assert not pm.sb.inside(f"/opt/{name}").exists()
    text = output(proc)
    assert any(name in line for line in refused(proc)), text
    assert "fail closed" in text and HOOK_FILE in text
    assert "!" * 72 not in text and "verified by anyone" not in text  # no override banner


@pytest.mark.parametrize("override", OVERRIDES)
@pytest.mark.parametrize("kind", HOSTILE_KINDS)
def test_hostile_sidecar_or_bundle_is_refused(
    pm: PacmanEnv, kind: str, override: dict[str, str]
) -> None:
    # C1 as reported: garbage PKG.wotr next to the package and/or a hostile bundle in the
    # bundles directory, read by the real verifier: refused, with and without the override.
    evil = pm.evil()
    plant_hostile(kind, evil, pm.verifier.bundles)
    proc = pm.sb.install([evil], env=pm.env(**override))
    assert_refused(pm, proc, "evil-pkg")
    assert len(pm.verifier.calls()) == 1


@pytest.mark.parametrize("override", OVERRIDES)
@pytest.mark.parametrize("where", ["sidecar", "bundle"])
@pytest.mark.parametrize("failure", PARSER_BUG_FAILURES)
def test_parser_bug_triggered_by_attacker_is_refused(
    pm_buggy: PacmanEnv, failure: str, where: str, override: dict[str, str]
) -> None:
    # The attacker's file makes the verifier exit 2, 3 or 70, crash or hang (a parser bug):
    # every one of these is a refusal, and the override does not change that.
    pkg = pm_buggy.pkg("evil-pkg")
    plant_parser_bug(failure, pkg, pm_buggy.verifier.bundles, where=where)
    proc = pm_buggy.sb.install([pkg], env=pm_buggy.env(WOTR_HOOK_TIMEOUT="3", **override))
    assert_refused(pm_buggy, proc, "evil-pkg")
    text = output(proc)
    assert f"attacker input triggers: {failure}" in text
    assert f"{OVERRIDE}=1 does not apply" in text


@pytest.mark.parametrize("override", OVERRIDES)
def test_rejected_package_refused_with_or_without_override(
    pm: PacmanEnv, override: dict[str, str]
) -> None:
    proc = pm.sb.install([pm.evil()], env=pm.env(**override))
    assert_refused(pm, proc, "evil-pkg")
    assert "evil-pkg 1.0-1 (evil-pkg-1.0-1-any.pkg.tar): not verified: " in output(proc)
    assert "/proc/" not in output(proc)


@pytest.mark.parametrize("override", OVERRIDES)
@pytest.mark.parametrize(
    "command",
    ["sh -c 'exit 3' wotr", "sh -c 'exit 127' wotr", "sh -c 'kill -9 $$' wotr", "sleep 30"],
)
def test_fail_closed(pm: PacmanEnv, command: str, override: dict[str, str]) -> None:
    env = pm.env(WOTR_VERIFY_CMD=command, WOTR_HOOK_TIMEOUT="2", **override)
    proc = pm.sb.install([pm.pkg()], env=env)
    assert_refused(pm, proc, "good-pkg")
    assert f"{OVERRIDE}=1 does not apply" in output(proc)


@pytest.mark.parametrize("override", OVERRIDES)
def test_fail_closed_without_bundles_directory(pm: PacmanEnv, override: dict[str, str]) -> None:
    pkg = pm.good()
    shutil.rmtree(pm.verifier.bundles)
    proc = pm.sb.install([pkg], env=pm.env(**override))
    assert_refused(pm, proc, "good-pkg")
    assert "bundles directory /var/lib/wotr/bundles does not exist" in output(proc)


@pytest.mark.parametrize("override", OVERRIDES)
def test_fail_closed_without_policy(pm: PacmanEnv, override: dict[str, str]) -> None:
    # the real verifier finds no /etc/wotr/policy.toml in the root: exit 2, refused
    pkg = pm.good()
    pm.verifier.policy.unlink()
    proc = pm.sb.install([pkg], env=pm.env(**override))
    assert_refused(pm, proc, "good-pkg")
    assert "bad input (exit 2)" in output(proc)


@pytest.mark.parametrize("override", OVERRIDES)
def test_fail_closed_when_no_archive_is_found(pm: PacmanEnv, override: dict[str, str]) -> None:
    # a file whose name covers no target: the hook cannot find what pacman installs
    wrong = pm.pkg("evil-pkg")
    misnamed = wrong.with_name("other-pkg-1.0-1-any.pkg.tar")
    wrong.rename(misnamed)
    proc = pm.sb.install([misnamed], env=pm.env(**override))
    assert_refused(pm, proc, "evil-pkg")
    assert "no package archive for 'evil-pkg'" in output(proc)


def staged_command(pm: PacmanEnv, missing: str) -> str:
    if missing == "not-executable":
        script = pm.pkgs.parent / "wotr-not-executable"
        script.write_text("#!/bin/sh\nexit 0\n")
        return pm.sb.stage(script, mode=0o644)
    return missing


@pytest.mark.parametrize("missing", ["/nonexistent/wotr verify", "not-executable"])
def test_verifier_that_cannot_start_refuses(pm: PacmanEnv, missing: str) -> None:
    proc = pm.sb.install([pm.pkg()], env=pm.env(WOTR_VERIFY_CMD=staged_command(pm, missing)))
    assert_refused(pm, proc, "good-pkg")
    text = output(proc)
    assert f"{OVERRIDE}=1" in text and "cannot be started" in text
    assert "does not apply" not in text


@pytest.mark.parametrize("missing", ["/nonexistent/wotr verify", "not-executable"])
def test_override_lets_through_only_a_verifier_that_cannot_start(
    pm: PacmanEnv, missing: str
) -> None:
    command = staged_command(pm, missing)
    proc = pm.sb.install([pm.pkg()], env=pm.env(WOTR_VERIFY_CMD=command, **{OVERRIDE: "1"}))
    assert proc.returncode == 0, output(proc)
    assert pm.sb.installed("good-pkg")
    text = output(proc)
    assert "!" * 72 in text and "WARNING" in text
    banner = [line for line in text.splitlines() if "verified by anyone: " in line]
    assert len(banner) == 1, text
    assert banner[0].endswith("good-pkg 1.0-1 (good-pkg-1.0-1-any.pkg.tar)"), text
    assert "/proc/" not in text
    assert command.split()[0] in text
    assert pm.verifier.calls() == []


@pytest.mark.parametrize("value", ["yes", "0"])  # "" is unset
def test_override_needs_exact_value(pm: PacmanEnv, value: str) -> None:
    env = pm.env(WOTR_VERIFY_CMD="/nonexistent/wotr", **{OVERRIDE: value})
    proc = pm.sb.install([pm.pkg()], env=env)
    assert_refused(pm, proc, "good-pkg")
    assert f"ignoring {OVERRIDE}" in output(proc)


def test_attached_root_value_is_not_an_operation(pm: PacmanEnv, tmp_path: Path) -> None:
    # issue 10 section 4: `-r/some/rootSD` is --root with a value, not -S.  The old parser took
    # the S for the operation, skipped the -U file and verified an approved archive of the same
    # name in the cache instead.
    approved = pm.good("evil-pkg")
    shutil.copy(approved, pm.sb.cachedir / approved.name)
    tampered = tmp_path / "upload" / approved.name
    tampered.parent.mkdir()
    shutil.copy(approved, tampered)
    tamper(tampered)
    alias = tmp_path / "rootSD"
    alias.symlink_to(pm.sb.root)
    proc = pm.sb.pacman([f"-r{alias}", "-U", str(tampered)], env=pm.env())
    assert proc.returncode != 0, output(proc)
    assert not pm.sb.installed("evil-pkg")
    assert any("evil-pkg 1.0-1" in line for line in refused(proc)), output(proc)
    # the -U file is verified (the cached archive of that name too: a file's name is not its
    # package name for certain)
    assert [f.endswith(str(tampered)) for f in pm.verifier.files()[0]].count(True) == 1


def test_scope_by_package_name(pm: PacmanEnv, tmp_path: Path) -> None:
    # a cached archive found by name outside the scope installs unverified; files named on the
    # command line are always inside (their package name is not known for certain)
    toml = tmp_path / "root/etc/wotr/hooks.toml"
    toml.write_text('[scope]\npackages = ["vendor-*"]\n')
    other = pm.pkg("other-tool")
    shutil.copy(other, pm.sb.cachedir / other.name)
    proc = pm.sb.pacman(["-U", str(pm.sb.cachedir / other.name)], env=pm.env())
    assert proc.returncode != 0, output(proc)  # a -U file: inside the scope, unsigned
    assert not pm.sb.installed("other-tool")


def sync_repo(top: Path, name: str, pkgs: list[Path]) -> Path:
    """A pacman sync repository `name` at `top` (NAME.db, gzip, as repo-add writes it)."""
    import hashlib
    import io
    import tarfile

    top.mkdir(parents=True, exist_ok=True)
    with tarfile.open(top / f"{name}.db", "w:gz") as tf:
        for p in pkgs:
            shutil.copy(p, top / p.name)
            pkgname, ver, rel, arch = p.name.removesuffix(".pkg.tar").rsplit("-", 3)
            data = p.read_bytes()
            desc = (
                f"%FILENAME%\n{p.name}\n\n%NAME%\n{pkgname}\n\n%VERSION%\n{ver}-{rel}\n\n"
                f"%CSIZE%\n{len(data)}\n\n%ISIZE%\n{len(data)}\n\n"
                f"%SHA256SUM%\n{hashlib.sha256(data).hexdigest()}\n\n%ARCH%\n{arch}\n\n"
            ).encode()
            info = tarfile.TarInfo(f"{pkgname}-{ver}-{rel}/desc")
            info.size = len(desc)
            tf.addfile(info, io.BytesIO(desc))
    return top


def test_scope_by_repository(pm: PacmanEnv, tmp_path: Path) -> None:
    # issue 12: [scope.pacman] repositories: the sync databases that list the archive's sha256
    other = pm.pkg("other-tool")
    unsigned = pm.pkg("vendor-tool")
    signed = pm.good("vendor-ok")
    core = sync_repo(tmp_path / "repos/core", "core", [other])
    vendor = sync_repo(tmp_path / "repos/vendor", "vendor", [unsigned, signed])
    with pm.sb.config_path.open("a") as fh:
        fh.write(f"[core]\nServer = file://{core}\n[vendor]\nServer = file://{vendor}\n")
    pm.sb.inside("/etc/wotr").mkdir(parents=True, exist_ok=True)
    pm.sb.inside("/etc/wotr/hooks.toml").write_text('[scope.pacman]\nrepositories = ["vendor"]\n')
    proc = pm.sb.pacman(["-Sy", "other-tool"], env=pm.env())
    assert proc.returncode == 0, output(proc)
    assert pm.sb.installed("other-tool") and pm.verifier.calls() == []
    proc = pm.sb.pacman(["-S", "vendor-tool"], env=pm.env())
    assert proc.returncode != 0, output(proc)
    assert not pm.sb.installed("vendor-tool")
    assert any("vendor-tool 1.0-1" in line for line in refused(proc)), output(proc)
    proc = pm.sb.pacman(["-S", "vendor-ok"], env=pm.env())
    assert proc.returncode == 0, output(proc)
    assert pm.sb.installed("vendor-ok")


def test_a_sync_archive_named_like_another_package_is_verified(
    pm: PacmanEnv, tmp_path: Path
) -> None:
    """pacman -S downloads a target into the cache under the sync database's %FILENAME%, which
    a hostile mirror picks freely (libalpm only forbids '/' and a leading '.'; it checks the
    name inside the archive, not the file name).  With the approved 1.0 cached, an unapproved
    2.0 served as `other-thing-1-1-any.pkg.tar` (or `good-pkg-2.0-1-any.pkg.tar.sig`) must be
    the file verified (found by an attacker review: the hook looked the target up by file name
    only and verified the cached 1.0)."""
    import hashlib
    import io
    import tarfile

    good = pm.good("good-pkg", "1.0")
    shutil.copy(good, pm.sb.cachedir / good.name)
    evil = pm.pkg("good-pkg", "2.0")
    for i, served in enumerate(("other-thing-1-1-any.pkg.tar", "good-pkg-2.0-1-any.pkg.tar.sig")):
        top = tmp_path / f"repos/core{i}"
        top.mkdir(parents=True)
        shutil.copy(evil, top / served)
        data = evil.read_bytes()
        desc = (
            f"%FILENAME%\n{served}\n\n%NAME%\ngood-pkg\n\n%VERSION%\n2.0-1\n\n"
            f"%CSIZE%\n{len(data)}\n\n%ISIZE%\n{len(data)}\n\n"
            f"%SHA256SUM%\n{hashlib.sha256(data).hexdigest()}\n\n%ARCH%\nany\n\n"
        ).encode()
        with tarfile.open(top / f"core{i}.db", "w:gz") as tf:
            info = tarfile.TarInfo("good-pkg-2.0-1/desc")
            info.size = len(desc)
            tf.addfile(info, io.BytesIO(desc))
        conf = pm.sb.config_path.read_text().split(f"[core{i - 1}]")[0]
        pm.sb.config_path.write_text(conf + f"[core{i}]\nServer = file://{top}\n")
        proc = pm.sb.pacman(["-Sy", "--noconfirm", "good-pkg"], env=pm.env())
        assert proc.returncode != 0, output(proc)
        assert not pm.sb.installed("good-pkg")
        assert any(served in line and "not verified" in line for line in refused(proc)), output(
            proc
        )
        assert (pm.sb.cachedir / served).exists()
        (pm.sb.cachedir / served).unlink()


def test_a_dependency_named_like_a_misnamed_command_line_file_is_verified(
    pm: PacmanEnv, tmp_path: Path
) -> None:
    """`pacman -U FILE`: FILE's name is not its package name.  An approved `bar` that depends on
    `foo`, handed over as `foo-1.0-1-any.pkg.tar`, made the hook take the target `foo` as covered
    by that file; the unapproved `foo` pacman pulled from the sync repository was never verified
    (found by an attacker review)."""
    from testing.sandbox import build_pkg

    bar = build_pkg(pm.pkgs, "bar", "1.0", b"honest payload\n", depends=["foo"])
    pm.verifier.approve(bar)
    shutil.copy(bar, pm.sb.cachedir / bar.name)  # an older download of bar, approved
    misnamed = tmp_path / "given" / "foo-1.0-1-any.pkg.tar"
    misnamed.parent.mkdir()
    shutil.copy(bar, misnamed)
    foo = pm.pkg("foo", "1.0")  # not approved
    core = sync_repo(tmp_path / "repos/core", "core", [foo])
    with pm.sb.config_path.open("a") as fh:
        fh.write(f"[core]\nServer = file://{core}\n")
    assert pm.sb.pacman(["-Sy"], env=pm.env()).returncode == 0
    proc = pm.sb.pacman(["-U", str(misnamed)], env=pm.env())
    assert proc.returncode != 0, output(proc)
    assert not pm.sb.installed("foo") and not pm.sb.installed("bar")
    assert any("foo 1.0-1" in line and "not verified" in line for line in refused(proc)), output(
        proc
    )


@pytest.mark.parametrize("where", ["twice-in-desc", "in-depends"])
def test_a_filename_the_hook_and_pacman_read_differently_is_verified(
    pm: PacmanEnv, tmp_path: Path, where: str
) -> None:
    """libalpm reads every field of a sync entry from desc AND depends (and files), a later
    %FILENAME% replacing an earlier one; the hook read desc's first one only, so a hostile
    database could show it the approved cached file's name while pacman downloaded another
    (found by an attacker review)."""
    import hashlib
    import io
    import tarfile

    good = pm.good("good-pkg", "1.0")
    shutil.copy(good, pm.sb.cachedir / good.name)
    evil = pm.pkg("good-pkg", "2.0")
    served = "other-thing-1-1-any.pkg.tar"
    top = tmp_path / "repos/core"
    top.mkdir(parents=True)
    shutil.copy(evil, top / served)
    data = evil.read_bytes()
    common = (
        f"%NAME%\ngood-pkg\n\n%VERSION%\n2.0-1\n\n%CSIZE%\n{len(data)}\n\n%ISIZE%\n{len(data)}\n\n"
        f"%SHA256SUM%\n{hashlib.sha256(data).hexdigest()}\n\n%ARCH%\nany\n\n"
    )
    members = {"desc": f"%FILENAME%\n{good.name}\n\n{common}"}
    if where == "twice-in-desc":
        members["desc"] += f"%FILENAME%\n{served}\n\n"
    else:
        members["depends"] = f"%FILENAME%\n{served}\n\n"
    with tarfile.open(top / "core.db", "w:gz") as tf:
        for member, text in members.items():
            info = tarfile.TarInfo(f"good-pkg-2.0-1/{member}")
            info.size = len(text.encode())
            tf.addfile(info, io.BytesIO(text.encode()))
    with pm.sb.config_path.open("a") as fh:
        fh.write(f"[core]\nServer = file://{top}\n")
    proc = pm.sb.pacman(["-Sy", "good-pkg"], env=pm.env())
    assert proc.returncode != 0, output(proc)
    assert not pm.sb.installed("good-pkg")
    assert any(served in line and "not verified" in line for line in refused(proc)), output(proc)
