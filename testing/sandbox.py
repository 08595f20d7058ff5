"""Throw-away package-manager roots for testing the wotr install hooks with the real tools.

AptSandbox (apt-get + dpkg), PacmanSandbox (pacman, chroot-aware) and DnfSandbox (dnf 4
--installroot), package builders build_deb / build_pkg / build_rpm, and Verifier, the
$WOTR_VERIFY_CMD the hooks are tested with.  Nothing here touches the machine's own package
databases: every helper works inside a directory you give it, and every apt-get / pacman / dnf
run checks that the host's dpkg status (and pacman/rpm databases, where present) are
byte-identical before and after (see `host_state_unchanged`).

Packages are built uncompressed on purpose, so that a marker written into the payload (the
test verifier rejects files whose bytes contain ``TAMPERED``) is visible in the file's bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HOST_DPKG_STATUS = Path("/var/lib/dpkg/status")
HOST_STATE_FILES: tuple[Path, ...] = (
    HOST_DPKG_STATUS,
    Path("/var/lib/pacman/local/ALPM_DB_VERSION"),
    Path("/var/lib/rpm/rpmdb.sqlite"),
)


class HostStateChanged(AssertionError):
    """A sandboxed run changed a package database of the machine itself."""


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def host_snapshot(paths: Sequence[Path] = HOST_STATE_FILES) -> dict[Path, str | None]:
    return {p: _digest(p) for p in paths}


@contextmanager
def host_state_unchanged(paths: Sequence[Path] = HOST_STATE_FILES) -> Iterator[None]:
    """Raise HostStateChanged if any of `paths` (host package databases) changed in the block."""
    before = host_snapshot(paths)
    yield
    after = host_snapshot(paths)
    changed = [str(p) for p in paths if before[p] != after[p]]
    if changed:
        raise HostStateChanged(f"sandboxed run modified the host: {', '.join(changed)}")


def _check_conf_string(value: str) -> str:
    if any(c in value for c in '"\n\r'):
        raise ValueError(f"cannot put {value!r} into an apt/pacman configuration string")
    return value


def _control_field(value: str) -> str:
    if "\n" in value or not value.strip():
        raise ValueError(f"bad control field value {value!r}")
    return value


def build_deb(
    directory: Path, name: str, version: str, payload: bytes, *, arch: str = "all"
) -> Path:
    """Build `name_version_arch.deb` in `directory`, shipping `payload` at
    /usr/share/<name>/payload, with dpkg-deb --root-owner-group and no compression."""
    directory.mkdir(parents=True, exist_ok=True)
    stage = directory / f".stage-{name}-{version}"
    if stage.exists():
        shutil.rmtree(stage)
    (stage / "DEBIAN").mkdir(parents=True)
    (stage / "usr" / "share" / name).mkdir(parents=True)
    (stage / "usr" / "share" / name / "payload").write_bytes(payload)
    (stage / "DEBIAN" / "control").write_text(
        f"Package: {_control_field(name)}\n"
        f"Version: {_control_field(version)}\n"
        f"Architecture: {_control_field(arch)}\n"
        "Maintainer: wotr tests <tests@wotr.invalid>\n"
        "Priority: optional\n"
        f"Description: wotr hook test package {name}\n",
        encoding="utf-8",
    )
    out = directory / f"{name}_{version}_{arch}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Znone", "--build", str(stage), str(out)],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(stage)
    return out


def _base_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("APT_", "WOTR_", "DEBIAN_", "DPKG_"))
    }
    env.update({"LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"})
    if extra:
        env.update(extra)
    return env


def parse_dpkg_status(text: str) -> dict[str, str]:
    """Map package name -> Status field of a dpkg status file."""
    result: dict[str, str] = {}
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        if "Package" in fields:
            result[fields["Package"]] = fields.get("Status", "")
    return result


@dataclass
class AptSandbox:
    """A dpkg/apt root at `root`, driven by the real apt-get through APT_CONFIG.

    `hook` is the command string apt runs through /bin/sh for DPkg::Pre-Install-Pkgs (None:
    no hook). `protocol` is the hook protocol version; `info_fd` selects the InfoFD (None:
    stdin), meaningful for protocol 2 and 3 only.  `extra_config` lines are appended verbatim.
    """

    root: Path
    hook: str | None = None
    protocol: int = 3
    info_fd: int | None = 20
    extra_config: Sequence[str] = ()
    config_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        r = self.root
        for d in (
            "var/lib/dpkg/info",
            "var/lib/dpkg/updates",
            "var/lib/dpkg/triggers",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/log/apt",
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "etc/apt/sources.list.d",
        ):
            (r / d).mkdir(parents=True, exist_ok=True)
        for f in ("var/lib/dpkg/status", "var/lib/dpkg/available", "etc/apt/sources.list"):
            (r / f).touch()
        rs = _check_conf_string(str(r))
        lines = [
            f'Dir "{rs}/";',
            f'Dir::State::status "{rs}/var/lib/dpkg/status";',
            f'Dir::Etc "{rs}/etc/apt/";',
            f'Dir::Log "{rs}/var/log/apt";',
            "DPkg::Options {"
            f'"--root={rs}"; "--admindir={rs}/var/lib/dpkg"; "--force-not-root"; '
            f'"--force-script-chrootless"; "--log={rs}/var/log/dpkg.log";'
            "};",
        ]
        if self.hook is not None:
            h = _check_conf_string(self.hook)
            lines.append(f'DPkg::Pre-Install-Pkgs {{"{h}";}};')
            lines.append(f'DPkg::Tools::Options::{h}::Version "{self.protocol}";')
            if self.info_fd is not None and self.protocol >= 2:
                lines.append(f'DPkg::Tools::Options::{h}::InfoFD "{self.info_fd}";')
        lines.extend(self.extra_config)
        self.config_path = r / "apt.conf"
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = _base_env(extra)
        env["APT_CONFIG"] = str(self.config_path)
        return env

    def install(
        self,
        deb_paths: Sequence[Path],
        env: Mapping[str, str] | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """`apt-get install -y /abs/x.deb ...` in the sandbox (offline: local files only)."""
        cmd = ["apt-get", "install", "-y", "--no-install-recommends"]
        cmd += [str(Path(p).resolve()) for p in deb_paths]
        with host_state_unchanged((HOST_DPKG_STATUS,)):
            return subprocess.run(
                cmd,
                env=self.env(env),
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )

    def status(self) -> dict[str, str]:
        return parse_dpkg_status(
            (self.root / "var/lib/dpkg/status").read_text(encoding="utf-8", errors="replace")
        )

    def installed(self, name: str) -> bool:
        return self.status().get(name) == "install ok installed"


# --------------------------------------------------------------------------- pacman


def build_pkg(
    directory: Path,
    name: str,
    version: str,
    payload: bytes,
    *,
    arch: str = "any",
    pkgrel: str = "1",
    prefix: str = "opt",
) -> Path:
    """Build an uncompressed pacman package `name-version-pkgrel-arch.pkg.tar` by hand
    (.PKGINFO + /<prefix>/<name>/payload), as makepkg lays one out.  pacman reads plain
    .pkg.tar as well as .pkg.tar.zst; plain keeps test markers visible in the file's bytes.
    The default prefix /opt stays clear of the read-only /usr of PacmanSandbox."""
    directory.mkdir(parents=True, exist_ok=True)
    full = f"{version}-{pkgrel}"
    pkginfo = (
        f"pkgname = {_control_field(name)}\n"
        f"pkgbase = {name}\n"
        f"pkgver = {_control_field(full)}\n"
        f"pkgdesc = wotr hook test package {name}\n"
        "url = https://wotr.invalid/\n"
        f"builddate = {int(time.time())}\n"
        "packager = wotr tests <tests@wotr.invalid>\n"
        f"size = {len(payload)}\n"
        f"arch = {_control_field(arch)}\n"
        "license = Apache-2.0\n"
    ).encode()
    out = directory / f"{name}-{full}-{arch}.pkg.tar"
    mtime = int(time.time())

    def add(tf: tarfile.TarFile, arcname: str, data: bytes | None) -> None:
        info = tarfile.TarInfo(arcname)
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = mtime
        if data is None:
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tf.addfile(info)
        else:
            info.mode = 0o644
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))

    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tf:
        add(tf, ".PKGINFO", pkginfo)
        parts = [p for p in prefix.split("/") if p]
        for i in range(1, len(parts) + 1):
            add(tf, "/".join(parts[:i]), None)
        base = "/".join([*parts, name])
        add(tf, base, None)
        add(tf, f"{base}/payload", payload)
    return out


@dataclass
class PacmanSandbox:
    """A pacman RootDir at `root`, driven by the real pacman with its own --config.

    pacman runs hooks chrooted into RootDir, so the hook, its interpreter and the verifier must
    exist inside it: each run happens in a private mount namespace (`unshare --mount`) where
    the host's /usr is bind-mounted READ-ONLY at <root>/usr (with the usrmerge symlinks bin,
    lib, lib64, sbin), /dev is bind-mounted and a proc is mounted at <root>/proc.  The mounts
    vanish with the namespace.  Test packages therefore install under /opt.  Needs root.

    `hooks` are (file name, text) pairs written to the sandbox HookDir.  `stage(path)` copies a
    file into <root>/opt/wotr-test/ and returns its path as seen inside the chroot.
    """

    root: Path
    hooks: Sequence[tuple[str, str]] = ()
    config_path: Path = field(init=False)
    hookdir: Path = field(init=False)
    cachedir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        r = self.root
        for d in (
            "usr",
            "dev",
            "proc",
            "etc",
            "tmp",
            "var/lib/pacman",
            "var/cache/pacman/pkg",
            "var/log",
            "opt/wotr-test",
            "hooks",
        ):
            (r / d).mkdir(parents=True, exist_ok=True)
        for link in ("bin", "lib", "lib64", "sbin"):
            if Path("/" + link).is_symlink() and not (r / link).is_symlink():
                (r / link).symlink_to(os.readlink("/" + link))
        if Path("/etc/ld.so.cache").exists():
            shutil.copy2("/etc/ld.so.cache", r / "etc/ld.so.cache")
        self.hookdir = r / "hooks"
        self.cachedir = r / "var/cache/pacman/pkg"
        for name, text in self.hooks:
            (self.hookdir / name).write_text(text, encoding="utf-8")
        rs = _check_conf_string(str(r))
        self.config_path = r / "pacman.conf"
        self.config_path.write_text(
            "[options]\n"
            f"RootDir = {rs}\n"
            f"DBPath = {rs}/var/lib/pacman/\n"
            f"CacheDir = {rs}/var/cache/pacman/pkg/\n"
            f"LogFile = {rs}/var/log/pacman.log\n"
            f"GPGDir = {rs}/etc/pacman.d/gnupg/\n"
            f"HookDir = {rs}/hooks/\n"
            "Architecture = auto\n"
            "SigLevel = Never\n"
            "LocalFileSigLevel = Never\n",
            encoding="utf-8",
        )

    def stage(self, path: Path, mode: int = 0o755) -> str:
        dest = self.root / "opt/wotr-test" / path.name
        shutil.copyfile(path, dest)
        dest.chmod(mode)
        return f"/opt/wotr-test/{path.name}"

    def inside(self, path: str) -> Path:
        """Host path of a path inside the sandbox root."""
        return self.root / path.lstrip("/")

    def pacman(
        self,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        r = str(self.root)
        script = (
            'set -e; R="$1"; shift; '
            'mount --bind -o ro /usr "$R/usr"; '
            'mount --bind /dev "$R/dev"; '
            'mount -t proc proc "$R/proc"; '
            'exec "$@"'
        )
        cmd = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            r,
            "pacman",
            "--config",
            str(self.config_path),
            "--noconfirm",
            *args,
        ]
        with host_state_unchanged():
            return subprocess.run(
                cmd,
                env=_base_env(env),
                cwd=cwd or self.root,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )

    def install(
        self, pkg_paths: Sequence[Path], env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`pacman -U FILE...` (files outside the root are fine: pacman reads them itself)."""
        return self.pacman(["-U", *(str(Path(p).resolve()) for p in pkg_paths)], env=env)

    def installed(self, name: str) -> bool:
        local = self.root / "var/lib/pacman/local"
        return any(
            (d / "desc").is_file() and d.name.rsplit("-", 2)[0] == name
            for d in (local.iterdir() if local.is_dir() else [])
        )


def can_unshare_mounts() -> bool:
    """True when this process may create a private mount namespace with bind mounts."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs", "none", "/mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


# --------------------------------------------------------------------------- dnf / rpm


def build_rpm(directory: Path, name: str, version: str, payload: bytes) -> Path:
    """Build noarch `name-version-1.noarch.rpm` with rpmbuild, shipping `payload` at
    /opt/<name>/payload, with an uncompressed payload (w0.ufdio)."""
    directory.mkdir(parents=True, exist_ok=True)
    top = directory / f".rpmbuild-{name}-{version}"
    if top.exists():
        shutil.rmtree(top)
    (top / "SOURCES").mkdir(parents=True)
    (top / "SOURCES" / "payload").write_bytes(payload)
    spec = top / "pkg.spec"
    spec.write_text(
        f"Name: {_control_field(name)}\n"
        f"Version: {_control_field(version)}\n"
        "Release: 1\n"
        f"Summary: wotr hook test package {name}\n"
        "License: Apache-2.0\n"
        "BuildArch: noarch\n"
        "%define _binary_payload w0.ufdio\n"
        "%define __os_install_post %{nil}\n"
        "%description\nwotr hook test package\n"
        "%install\n"
        f"mkdir -p %{{buildroot}}/opt/{name}\n"
        f"cp %{{_sourcedir}}/payload %{{buildroot}}/opt/{name}/payload\n"
        "%files\n"
        f"/opt/{name}/payload\n",
        encoding="utf-8",
    )
    subprocess.run(
        ["rpmbuild", "--define", f"_topdir {top}", "-bb", str(spec)],
        check=True,
        capture_output=True,
        env=_base_env(None),
    )
    built = top / "RPMS" / "noarch" / f"{name}-{version}-1.noarch.rpm"
    out = directory / built.name
    shutil.move(built, out)
    shutil.rmtree(top)
    return out


@dataclass
class DnfSandbox:
    """A dnf --installroot at `root` with its own dnf.conf, no repositories, gpgcheck off, and
    plugins loaded only from `pluginpath` (with `pluginconfpath`) -- never the host's."""

    root: Path
    pluginpath: Path
    pluginconfpath: Path
    config_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        (self.root / "etc/dnf").mkdir(parents=True, exist_ok=True)
        (self.root / "etc/yum.repos.d").mkdir(parents=True, exist_ok=True)
        self.config_path = self.root / "etc/dnf/dnf.conf"
        self.config_path.write_text(
            f"[main]\ngpgcheck=0\nreposdir={self.root}/etc/yum.repos.d\n", encoding="utf-8"
        )

    def dnf(
        self, args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        cmd = [
            "dnf",
            "-y",
            "-c",
            str(self.config_path),
            f"--installroot={self.root}",
            "--releasever=1",
            f"--setopt=pluginpath={self.pluginpath}",
            f"--setopt=pluginconfpath={self.pluginconfpath}",
            f"--setopt=reposdir={self.root}/etc/yum.repos.d",
            *args,
        ]
        with host_state_unchanged():
            return subprocess.run(
                cmd,
                env=_base_env(env),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )

    def install(
        self, rpm_paths: Sequence[Path], env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.dnf(["install", *(str(Path(p).resolve()) for p in rpm_paths)], env=env)

    def installed(self, name: str) -> bool:
        proc = subprocess.run(
            ["rpm", "--root", str(self.root), "-q", name], capture_output=True, text=True
        )
        return proc.returncode == 0


# --------------------------------------------------------------------------- verifier


@dataclass
class Verifier:
    """The verifier the hooks are tested with, passed to them as $WOTR_VERIFY_CMD.

    Today the fixture `verifier` (tests/hooks/conftest.py) builds one around the stub
    tests/hooks/stub_verifier.py, which rejects files whose bytes contain TAMPERED.  To run
    the hook tests against the real `wotr verify`, change only that fixture: a Verifier whose
    `command` runs `wotr verify --policy ...` and whose `approve()` has a quorum of the policy's
    signers sign the file's sha256.
    """

    command: str  # the value for WOTR_VERIFY_CMD
    log: Path  # one JSON line per call (written by the stub; the real verifier writes none)

    def approve(self, path: Path) -> None:
        """Make `path` verifiable.  The stub trusts any file without TAMPERED in it."""
        if b"TAMPERED" in path.read_bytes():
            raise ValueError(f"{path} carries the TAMPERED marker and cannot be approved")

    def env(self) -> dict[str, str]:
        return {"WOTR_VERIFY_CMD": self.command, "WOTR_STUB_LOG": str(self.log)}

    def calls(self) -> list[list[str]]:
        """argv of each call so far (stub only)."""
        if not self.log.exists():
            return []
        return [json.loads(line)["argv"] for line in self.log.read_text().splitlines()]
