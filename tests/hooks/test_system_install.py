"""The documented system install (docs/install.md), end to end: `make install` (a venv with wotr
and links on the PATH), `make install-hooks ENABLE=apt` (the hook files and apt's configuration),
the real apt-get running the INSTALLED hook, which runs the INSTALLED `wotr verify`, then
`make uninstall`, after which nothing the install wrote is left.

Every directory is under a temporary directory (PREFIX, BINDIR, HOOKSDIR, SYSCONFDIR,
BUNDLESDIR), the same Makefile variables an administrator leaves at their defaults
(/opt/wotr, /usr/local/bin, /usr/local/lib/wotr/hooks, /etc, /var/lib/wotr/bundles).
`make install` runs pip: about a minute here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from testing.sandbox import AptSandbox, Verifier, build_deb, tamper

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    shutil.which("apt-get") is None or shutil.which("make") is None,
    reason="needs apt-get and make",
)


def tree(top: Path) -> set[str]:
    return {str(p.relative_to(top)) for p in top.rglob("*")}


def make(target: str, variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WOTR_", "VIRTUAL_ENV"))}
    return subprocess.run(
        ["make", "-C", str(REPO), target, *(f"{k}={v}" for k, v in variables.items())],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_install_run_hook_uninstall(tmp_path: Path, verifier: Verifier) -> None:
    top = tmp_path / "machine"
    sb = AptSandbox(top / "root")  # no hook configured by the test: the install adds it
    variables = {
        "PREFIX": str(top / "opt/wotr"),
        "BINDIR": str(top / "usr/local/bin"),
        "HOOKSDIR": str(top / "usr/local/lib/wotr/hooks"),
        "SYSCONFDIR": str(sb.root / "etc"),  # apt reads the sandbox's apt.conf.d
        "BUNDLESDIR": str(top / "var/lib/wotr/bundles"),
        "PYTHON": shutil.which("python3") or "python3",
    }
    before = tree(top)
    res = make("install", variables)
    assert res.returncode == 0, res.stdout + res.stderr
    res = make("install-hooks", {**variables, "ENABLE": "apt"})
    assert res.returncode == 0, res.stdout + res.stderr
    conf = sb.root / "etc/apt/apt.conf.d/80wotr"
    assert f'"{variables["HOOKSDIR"]}/apt/wotr-apt-hook"' in conf.read_text()
    wotr = Path(variables["BINDIR"]) / "wotr"
    assert wotr.is_symlink() and os.readlink(wotr) == f"{variables['PREFIX']}/bin/wotr"

    # the installed hook with the installed wotr (on PATH like /usr/local/bin on secure_path)
    hooks_toml = tmp_path / "hooks.toml"
    hooks_toml.write_text(f'policy = "{verifier.policy}"\nbundles = "{verifier.bundles}"\n')
    env = {
        "PATH": f"{variables['BINDIR']}:/usr/bin:/bin",
        "WOTR_HOOKS_CONFIG": str(hooks_toml),
    }
    good = build_deb(tmp_path / "debs", "good-pkg", "1.0", b"honest payload\n")
    evil = build_deb(tmp_path / "debs", "evil-pkg", "1.0", b"honest payload\n")
    verifier.approve(good, evil)
    tamper(evil)
    proc = sb.install([good], env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sb.installed("good-pkg")
    assert "wotr-apt-hook: verified 1 package file(s)" in proc.stderr
    proc = sb.install([evil], env=env)
    assert proc.returncode == 100, proc.stdout + proc.stderr
    assert "REFUSED: evil-pkg 1.0 (all): not verified" in proc.stderr
    assert not sb.installed("evil-pkg")

    res = make("uninstall", variables)
    assert res.returncode == 0, res.stdout + res.stderr
    left = tree(top) - before
    # what is left is apt's and dpkg's own work in the sandbox (the installed good-pkg, logs)
    apt_work = ("root/var/", "root/usr/")
    assert {p for p in left if not p.startswith(apt_work) and p != "root/usr"} == set(), left
    assert not conf.exists() and not wotr.exists()
    # the package manager goes on without the hook
    proc = sb.install([evil], env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_install_refuses_a_prefix_it_did_not_create(tmp_path: Path) -> None:
    # `make uninstall` removes PREFIX: it must never be a directory that held anything else
    prefix = tmp_path / "usr-local"
    prefix.mkdir()
    (prefix / "precious").write_text("keep me\n")
    res = make("install", {"PREFIX": str(prefix), "BINDIR": str(tmp_path / "bin")})
    assert res.returncode != 0
    assert "exists and was not created by wotr's install" in res.stderr
    res = make("uninstall", {"PREFIX": str(prefix)})
    assert res.returncode != 0
    assert (prefix / "precious").read_text() == "keep me\n"


def test_install_hooks_under_umask_0_writes_nothing_others_may_change(tmp_path: Path) -> None:
    """A root shell with umask 000 must not leave the hooks (run as root by apt, pacman, dnf) or
    the directories holding them writable by every user (found by an attacker review: mkdir
    followed the umask, so any user could replace wotr-apt-hook)."""
    prefix = tmp_path / "opt/wotr"
    prefix.mkdir(parents=True)
    manifest = prefix / "install-manifest.txt"
    manifest.write_text(f"{prefix}/\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PREFIX": str(prefix),
        "HOOKSDIR": str(tmp_path / "usr/local/lib/wotr/hooks"),
        "SYSCONFDIR": str(tmp_path / "etc"),
        "BUNDLESDIR": str(tmp_path / "var/lib/wotr/bundles"),
        "ENABLE": "apt pacman",
    }
    res = subprocess.run(
        ["sh", "-c", 'umask 000; exec sh "$0" install-hooks', str(REPO / "tools/install.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    written = [p for p in tmp_path.rglob("*") if p != manifest]
    assert written
    loose = [str(p) for p in written if p.lstat().st_mode & 0o022 and not p.is_symlink()]
    assert loose == [], loose
