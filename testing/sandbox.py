"""Throw-away package-manager roots for testing the wotr install hooks with the real tools.

AptSandbox (apt-get + dpkg), PacmanSandbox (pacman, chroot-aware) and DnfSandbox (dnf 4
--installroot), package builders build_deb / build_pkg / build_rpm, and Verifier: the REAL
`wotr verify` the hooks are tested with, with throwaway signers that "approve" a package by
signing its sha256 (`wotr sign`) and exporting a bundle (`git wotr export`).  Nothing here
touches the machine's own package databases: every helper works inside a directory you give it,
and every apt-get / pacman / dnf run checks that the host's dpkg status (and pacman/rpm
databases, where present) are byte-identical before and after (see `host_state_unchanged`).

Packages are built uncompressed on purpose, so that `tamper()` can change one byte of the
payload after approval without breaking the archive: the package manager still reads it, and
only the digest check can catch it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from testing import gpgkeys, sim

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
    depends: Sequence[str] = (),
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
        "license = Apache-2.0\n" + "".join(f"depend = {_control_field(d)}\n" for d in depends)
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
    lib, lib64, sbin), /dev is bind-mounted and a proc is mounted at <root>/proc.  Each of
    `binds` (host directories, e.g. `python_binds()`: the interpreter's prefix and the wotr
    source tree) is bind-mounted READ-ONLY at the same path inside the root, so that
    `/that/python -m wotr verify` works chrooted exactly as outside.  The mounts vanish with the
    namespace.  Test packages therefore install under /opt.  Needs root.

    `hooks` are (file name, text) pairs written to the sandbox HookDir.  `stage(path)` copies a
    file into <root>/opt/wotr-test/ and returns its path as seen inside the chroot.
    """

    root: Path
    hooks: Sequence[tuple[str, str]] = ()
    binds: Sequence[Path] = ()
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
        self.binds = _check_binds(self.binds, r)
        for b in self.binds:
            (r / str(b).lstrip("/")).mkdir(parents=True, exist_ok=True)
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
            'set -e; R="$1"; n="$2"; shift 2; '
            'mount --bind -o ro /usr "$R/usr"; '
            'mount --bind /dev "$R/dev"; '
            'mount -t proc proc "$R/proc"; '
            'while [ "$n" -gt 0 ]; do mount --bind -o ro "$1" "$R$1"; shift; n=$((n - 1)); done; '
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
            str(len(self.binds)),
            *(str(b) for b in self.binds),
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


def _within(path: Path, top: Path) -> bool:
    return path == top or top in path.parents


def _check_binds(binds: Sequence[Path], root: Path) -> tuple[Path, ...]:
    """Resolved, de-duplicated bind sources; refuse what cannot be mounted safely."""
    out: list[Path] = []
    for b in sorted({Path(b).resolve() for b in binds}, key=lambda p: len(p.parts)):
        if not b.is_dir():
            raise ValueError(f"bind source {b} is not a directory")
        if b == Path("/") or _within(root, b) or _within(b, root):
            raise ValueError(f"cannot bind {b} into the sandbox root {root}")
        if _within(b, Path("/usr")) or _within(b, Path("/proc")) or _within(b, Path("/dev")):
            continue  # already there
        if any(_within(b, o) for o in out):
            continue  # inside a directory bound already
        out.append(b)
    return tuple(out)


def python_binds(*extra: Path) -> tuple[Path, ...]:
    """Host directories to bind into a chroot so that THIS interpreter can run wotr there.

    The interpreter's prefixes (pyenv, venv, conda: anything outside /usr), every directory on
    sys.path (site-packages, and an editable install's source tree) and the directory of the
    `wotr` package itself, plus `extra`.  Paths under /usr are left out (PacmanSandbox binds the
    host's /usr anyway); nested paths collapse into their parent.
    """
    import wotr

    candidates = [
        Path(sys.base_prefix),
        Path(sys.prefix),
        Path(sys.base_exec_prefix),
        Path(sys.exec_prefix),
        Path(sys.executable).resolve().parent,
        Path(wotr.__file__).resolve().parent.parent,
        *(Path(p) for p in sys.path if p and os.path.isabs(p) and os.path.isdir(p)),
        *extra,
    ]
    found: list[Path] = []
    for c in sorted({c.resolve() for c in candidates}, key=lambda p: len(p.parts)):
        if c == Path("/") or any(_within(c, f) for f in found):
            continue
        if _within(c, Path("/usr")):
            continue
        found.append(c)
    return tuple(found)


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

#: Throwaway parties: the policy trusts TRUSTED with threshold 2; MALLORY signs but is not trusted.
TRUSTED: tuple[str, ...] = ("alice", "bob", "carol")
MALLORY = "mallory"
QUORUM: tuple[str, ...] = ("alice", "bob")
#: The recorder (tests/hooks/record_verify.py) appends one JSON line per call to this file.
LOG_VAR = "WOTR_TEST_VERIFY_LOG"


def tamper(path: Path, marker: bytes = b"honest payload") -> None:
    """Change ONE byte of `path` (inside `marker`, i.e. in the package's payload, which the
    builders above store uncompressed), as an attacker would after approval: the archive stays
    well-formed, only its sha256 changes."""
    data = bytearray(path.read_bytes())
    at = data.find(marker)
    if at < 0:
        raise ValueError(f"{path} does not contain {marker!r}")
    data[at] ^= 0x20  # "h" -> "H"
    path.write_bytes(bytes(data))


#: Ways an attacker who can write files the verifier reads (next to a package, or into the
#: bundles directory) makes `wotr verify` fail with something other than "not verified" (exit 1):
#: a garbage PKG.wotr sidecar, a hostile bundle among the bundles, both at once.
HOSTILE_KINDS: tuple[str, ...] = ("sidecar", "bundle", "both")
GARBAGE_SIDECAR = b"\x00\xffthis is not a wotr bundle\n"
#: Parses as JSON, claims to be a bundle, and is not one (a future version, nonsense fields).
HOSTILE_BUNDLE = b'{"format": "wotr-bundle", "version": 999, "commit": 12, "claims": "x"}\n'


def plant_hostile(kind: str, package: Path, bundles: Path) -> list[Path]:
    """Plant the attacker's files of `kind` (see HOSTILE_KINDS) for `package`; return them.
    "fifo" makes the sidecar a named pipe nobody writes to (a verifier that opens it hangs)."""
    planted: list[Path] = []
    sidecar = package.with_name(package.name + ".wotr")
    if kind in ("sidecar", "both"):
        sidecar.write_bytes(GARBAGE_SIDECAR)
        planted.append(sidecar)
    if kind in ("bundle", "both"):
        hostile = bundles / "zz-hostile.wotr"
        hostile.write_bytes(HOSTILE_BUNDLE)
        planted.append(hostile)
    if kind == "fifo":
        os.mkfifo(sidecar)
        planted.append(sidecar)
    if not planted:
        raise ValueError(f"unknown kind of hostile input {kind!r}")
    return planted


#: What tests/hooks/buggy_verify.py (the real verifier with a parser bug) does when it reads an
#: attacker's file carrying the trigger: every outcome but exit 0 and 1 that a verifier can have.
PARSER_BUG_FAILURES: tuple[str, ...] = (
    "exit 2",
    "exit 3",
    "exit 70",
    "signal 9",
    "signal 11",
    "hang",
)
PARSER_BUG_TRIGGER = b"WOTR-TEST-PARSER-BUG "


def plant_parser_bug(failure: str, package: Path, bundles: Path, *, where: str) -> Path:
    """Plant a file that makes tests/hooks/buggy_verify.py fail as `failure` (one of
    PARSER_BUG_FAILURES) when it verifies `package`: the sidecar PKG.wotr (`where="sidecar"`) or
    a bundle in `bundles` (`where="bundle"`), both places an attacker may be able to write."""
    if failure not in PARSER_BUG_FAILURES:
        raise ValueError(f"unknown failure {failure!r}")
    if where == "sidecar":
        target = package.with_name(package.name + ".wotr")
    elif where == "bundle":
        target = bundles / "zz-hostile.wotr"
    else:
        raise ValueError(f"unknown place {where!r}")
    target.write_bytes(PARSER_BUG_TRIGGER + failure.encode() + b"\n")
    return target


@dataclass
class Verifier:
    """The real `wotr verify` as the hooks are tested with, and a way to approve packages.

    `command` is the value for $WOTR_VERIFY_CMD (the recorder tests/hooks/record_verify.py,
    which logs its argv and cwd to `log` and then runs `wotr verify` in-process through the same
    entry point as the `wotr` console script).  The installer side is `policy` (threshold 2 of
    alice, bob and carol) and the bundles directory `bundles`; the hooks find both themselves
    (apt config, dnf plugin config, or the defaults /etc/wotr/policy.toml and
    /var/lib/wotr/bundles inside a pacman root), so `env()` carries only the command.

    `approve(path)`: a quorum of throwaway parties signs the file's sha256 as an artifact of the
    HEAD commit of a throwaway repository (`wotr sign`, real gpg keys), then `git wotr export`
    writes the commit's bundle into `bundles` (or, with `sidecar=True`, next to each file as
    FILE.wotr).  `log_seen_as` is the path of `log` as the verifier sees it (inside a chroot).
    """

    world: sim.World
    policy: Path
    bundles: Path
    command: str
    log: Path
    log_seen_as: str = ""

    def approve(
        self,
        *paths: Path,
        by: Sequence[str] = QUORUM,
        sidecar: bool = False,
        cli: bool = False,
    ) -> None:
        """Have each party of `by` sign all `paths` (one claim each) at HEAD, then export the
        commit's bundle with the real `git wotr export`.

        Signing: with `cli=True` each party runs the real `wotr sign` (about 0.3-0.6 s per
        party here, mostly interpreter start-up); by default the claim is built with wotr's own
        code (`wotr.claim.Claim.build`, as `wotr sign` does: role author, no tag), signed with
        the party's key by gpg (DSSE PAE, detached) and appended to the commit's note -- the
        same envelope line, byte for byte, in ~30 ms.
        """
        if not paths:
            raise ValueError("nothing to approve")
        for name in by:
            if cli:
                self.world.sign(name, *paths)
                continue
            claim = self.world.claim({p.name: p.read_bytes() for p in paths})
            line = sim.envelope_line(self.world.parties[name].key, claim)
            head = self.world.head()
            note = sim.read_note(self.world.repo, head)
            sim.write_note(self.world.repo, head, note + line + b"\n")
        outs = (
            [p.with_name(p.name + ".wotr") for p in paths]
            if sidecar
            else [self.bundles / f"{self.world.head()[:12]}.wotr"]
        )
        for out in outs:
            res = self.world.run("export", "-o", out)
            if res.returncode != 0:
                raise RuntimeError(f"git wotr export failed: {res.stderr}")

    def env(self) -> dict[str, str]:
        return {"WOTR_VERIFY_CMD": self.command, LOG_VAR: self.log_seen_as or str(self.log)}

    def records(self) -> list[dict[str, object]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def calls(self) -> list[list[str]]:
        """argv (after `wotr verify`) of each call so far."""
        out: list[list[str]] = []
        for r in self.records():
            argv = r["argv"]
            assert isinstance(argv, list)
            out.append([str(a) for a in argv])
        return out

    def files(self) -> list[list[str]]:
        """The files of each call: the argv after `--`."""
        out: list[list[str]] = []
        for argv in self.calls():
            out.append(argv[argv.index("--") + 1 :] if "--" in argv else argv)
        return out


#: What the `verifier_factory` fixture returns: keyword arguments of make_verifier but the keys.
VerifierFactory = Callable[..., Verifier]


def make_verifier(
    workdir: Path,
    keys: Mapping[str, gpgkeys.Key],
    *,
    policy: Path,
    bundles: Path,
    command: str,
    log: Path,
    log_seen_as: str = "",
    trusted: Sequence[str] = TRUSTED,
    threshold: int = 2,
) -> Verifier:
    """A throwaway repository at `workdir`/repo whose parties are `keys` (name -> key), the
    installer's policy at `policy` trusting `trusted` with `threshold`, and an empty `bundles`
    directory."""
    world = sim.make_world(workdir, names=tuple(keys), keys=keys)
    sim.write_policy(
        policy.parent, [world.parties[n] for n in trusted], threshold, name=policy.name
    )
    bundles.mkdir(parents=True, exist_ok=True)
    return Verifier(world, policy, bundles, command, log, log_seen_as)
