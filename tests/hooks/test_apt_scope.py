"""The scope of /etc/wotr/hooks.toml with the real apt-get, dpkg and `wotr verify` (issue 12).

Packages inside the scope must verify; packages outside pass to apt unchanged.  Scope by package
name (local .deb files) and by the archive a package comes from: two real local archives
(`deb [trusted=yes] file:...` with a Release file each, `apt-get update` in the sandbox), one
playing Debian (its security updates must keep installing) and one a vendor whose packages must
verify.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from testing.sandbox import AptSandbox, Verifier, build_deb, tamper

REPO = Path(__file__).resolve().parents[2]
HOOK = REPO / "hooks" / "apt" / "wotr-apt-hook"

pytestmark = pytest.mark.skipif(
    shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None,
    reason="apt-get and dpkg-deb are needed (Debian packages apt, dpkg)",
)


def sandbox(tmp_path: Path, verifier: Verifier, *config: str) -> AptSandbox:
    lines = (f'Wotr::Policy "{verifier.policy}";', f'Wotr::Bundles "{verifier.bundles}";')
    return AptSandbox(tmp_path / "root", hook=str(HOOK), extra_config=(*lines, *config))


def hooks_toml(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "hooks.toml"
    path.write_text(text)
    return {"WOTR_HOOKS_CONFIG": str(path)}


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def refused(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln for ln in output(proc).splitlines() if "REFUSED" in ln]


def deb(tmp_path: Path, name: str, version: str = "1.0") -> Path:
    return build_deb(tmp_path / "debs", name, version, b"honest payload\n")


SCOPE = '[scope]\npackages = ["vendor-*"]\n'


@pytest.fixture
def three(tmp_path: Path, verifier: Verifier) -> tuple[Path, Path, Path]:
    """(out of scope and unsigned, in scope and signed, in scope and unsigned)."""
    other = deb(tmp_path, "debian-tool")
    signed = deb(tmp_path, "vendor-good")
    unsigned = deb(tmp_path, "vendor-bad")
    verifier.approve(signed)
    return other, signed, unsigned


def test_in_scope_unsigned_refused(
    tmp_path: Path, verifier: Verifier, three: tuple[Path, ...]
) -> None:
    sb = sandbox(tmp_path, verifier)
    proc = sb.install([three[2]], env={**verifier.env(), **hooks_toml(tmp_path, SCOPE)})
    assert proc.returncode == 100, output(proc)
    assert sb.status() == {}
    assert refused(proc)[0].startswith("wotr-apt-hook: REFUSED: vendor-bad 1.0 (all): not verified")


def test_out_of_scope_installed_without_verifier(
    tmp_path: Path, verifier: Verifier, three: tuple[Path, ...]
) -> None:
    sb = sandbox(tmp_path, verifier)
    proc = sb.install([three[0]], env={**verifier.env(), **hooks_toml(tmp_path, SCOPE)})
    assert proc.returncode == 0, output(proc)
    assert sb.installed("debian-tool")
    assert "1 package(s) outside wotr's scope" in output(proc)
    assert verifier.calls() == []


def test_in_scope_signed_installed(
    tmp_path: Path, verifier: Verifier, three: tuple[Path, ...]
) -> None:
    sb = sandbox(tmp_path, verifier)
    proc = sb.install([three[1]], env={**verifier.env(), **hooks_toml(tmp_path, SCOPE)})
    assert proc.returncode == 0, output(proc)
    assert sb.installed("vendor-good")


def test_out_and_in_signed_together_installed(
    tmp_path: Path, verifier: Verifier, three: tuple[Path, ...]
) -> None:
    sb = sandbox(tmp_path, verifier)
    proc = sb.install(list(three[:2]), env={**verifier.env(), **hooks_toml(tmp_path, SCOPE)})
    assert proc.returncode == 0, output(proc)
    assert sb.installed("debian-tool") and sb.installed("vendor-good")
    assert verifier.files() == [[str(three[1].resolve())]]  # only the in-scope file verified


def test_all_three_refused_nothing_unpacked(
    tmp_path: Path, verifier: Verifier, three: tuple[Path, ...]
) -> None:
    sb = sandbox(tmp_path, verifier)
    proc = sb.install(list(three), env={**verifier.env(), **hooks_toml(tmp_path, SCOPE)})
    assert proc.returncode == 100, output(proc)
    assert sb.status() == {}
    for name in ("debian-tool", "vendor-good", "vendor-bad"):
        assert not (sb.root / "usr/share" / name).exists()
    lines = refused(proc)
    assert len(lines) == 1 and "vendor-bad 1.0" in lines[0], lines


def test_no_scope_verifies_everything(
    tmp_path: Path, verifier: Verifier, three: tuple[Path, ...]
) -> None:
    sb = sandbox(tmp_path, verifier)
    proc = sb.install([three[0]], env={**verifier.env(), **hooks_toml(tmp_path, "timeout = 60\n")})
    assert proc.returncode == 100, output(proc)
    assert "debian-tool 1.0 (all): not verified" in output(proc)


@pytest.mark.parametrize(
    "text",
    [
        "[scope\n",  # not TOML
        "[scope]\n",  # names nothing
        "[scope]\npackage = ['vendor-*']\n",  # a typo: unknown key
        "[scope]\npackages = []\n",
        "[scope]\npackages = 'vendor-*'\n",
        "[scope.apt]\norigin = ['Vendor']\n",
        "policy = 'relative/policy.toml'\n",
        "timeout = nan\n",
        "timeout = -1\n",
        "timeout = true\n",
        "polcy = '/etc/wotr/policy.toml'\n",
    ],
)
def test_invalid_configuration_refuses_every_package(
    tmp_path: Path, verifier: Verifier, three: tuple[Path, ...], text: str
) -> None:
    sb = sandbox(tmp_path, verifier)
    proc = sb.install([three[0]], env={**verifier.env(), **hooks_toml(tmp_path, text)})
    assert proc.returncode == 100, output(proc)
    assert sb.status() == {}
    assert "debian-tool" in refused(proc)[0]
    assert verifier.calls() == []


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo", "unreadable"])
def test_unreadable_configuration_refuses(
    tmp_path: Path, verifier: Verifier, three: tuple[Path, ...], kind: str
) -> None:
    import os

    path = tmp_path / "hooks.toml"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "unreadable":
        path.write_text(SCOPE)
        path.chmod(0)
    sb = sandbox(tmp_path, verifier)
    proc = sb.install([three[0]], env={**verifier.env(), "WOTR_HOOKS_CONFIG": str(path)})
    if kind == "unreadable" and os.access(path, os.R_OK):  # root reads anything: still valid
        assert proc.returncode == 0, output(proc)
        return
    assert proc.returncode == 100, output(proc)
    assert "hook configuration" in refused(proc)[0]


def test_policy_and_bundles_from_hooks_toml(
    tmp_path: Path, verifier: Verifier, three: tuple[Path, ...]
) -> None:
    # no Wotr:: keys in apt's configuration: hooks.toml names the policy and bundles
    sb = AptSandbox(tmp_path / "root", hook=str(HOOK))
    text = f'policy = "{verifier.policy}"\nbundles = "{verifier.bundles}"\n' + SCOPE
    proc = sb.install([three[1]], env={**verifier.env(), **hooks_toml(tmp_path, text)})
    assert proc.returncode == 0, output(proc)
    argv = verifier.calls()[0]
    assert argv[argv.index("--policy") + 1] == str(verifier.policy)
    assert argv[argv.index("--bundles") + 1] == str(verifier.bundles)


@pytest.mark.parametrize("spelling", ["Wotr::policy", "WOTR::POLICY", "wotr::Policy"])
def test_apt_keys_are_case_insensitive(
    tmp_path: Path, verifier: Verifier, three: tuple[Path, ...], spelling: str
) -> None:
    # issue 10 section 4: `Wotr::policy` IS Wotr::Policy for apt, so the hook must use it and
    # not fall back to the default policy.  A policy that wotr cannot load proves it is read.
    broken = tmp_path / "broken-policy.toml"
    broken.write_text("this is not a policy\n")
    sb = AptSandbox(
        tmp_path / "root",
        hook=str(HOOK),
        extra_config=(f'{spelling} "{broken}";', f'wotr::bundles "{verifier.bundles}";'),
    )
    proc = sb.install([three[1]], env=verifier.env())
    assert proc.returncode == 100, output(proc)
    argv = verifier.calls()[0]
    assert argv[argv.index("--policy") + 1] == str(broken)


def test_environment_variable_in_other_case_refuses(
    tmp_path: Path, verifier: Verifier, three: tuple[Path, ...]
) -> None:
    sb = sandbox(tmp_path, verifier)
    proc = sb.install([three[1]], env={**verifier.env(), "Wotr_Hooks_Config": "/x.toml"})
    assert proc.returncode == 100, output(proc)
    assert "Wotr_Hooks_Config is set: the name is WOTR_HOOKS_CONFIG" in output(proc)


# ---- scope by archive: real local archives, `apt-get update`, `apt-get install NAME` ---------


def archive(top: Path, origin: str, label: str, debs: list[Path]) -> Path:
    """A `deb [trusted=yes] file:TOP stable main` archive holding `debs`."""
    pool = top / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    stanzas = []
    for d in debs:
        shutil.copy(d, pool / d.name)
        control = subprocess.run(
            ["dpkg-deb", "--field", str(d)], capture_output=True, text=True, check=True
        ).stdout.rstrip("\n")
        data = d.read_bytes()
        stanzas.append(
            f"{control}\nFilename: pool/{d.name}\nSize: {len(data)}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
    index = top / "dists/stable/main/binary-all"
    index.mkdir(parents=True, exist_ok=True)
    packages = "\n".join(stanzas).encode()
    (index / "Packages").write_bytes(packages)
    (index / "Packages.gz").write_bytes(gzip.compress(packages))
    files = [
        (f"main/binary-all/{n}", (index / n).read_bytes()) for n in ("Packages", "Packages.gz")
    ]
    release = (
        f"Origin: {origin}\nLabel: {label}\nSuite: stable\nCodename: stable\n"
        "Architectures: all amd64\nComponents: main\nSHA256:\n"
        + "".join(f" {hashlib.sha256(b).hexdigest()} {len(b)} {n}\n" for n, b in files)
    )
    (top / "dists/stable/Release").write_text(release)
    return top


def apt(sb: AptSandbox, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", *args],
        env=sb.env(env),
        cwd=sb.root,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_walkthrough_vendor_scoped_debian_updates_keep_installing(
    tmp_path: Path, verifier: Verifier
) -> None:
    """hooks/README.md's walkthrough: scope to one vendor's archive; Debian's security update
    installs (no bundle, outside the scope), the vendor's signed package installs, the vendor's
    tampered package is refused with nothing unpacked."""
    security = deb(tmp_path, "libssl-fix", "3.0.1")
    vendor_ok = deb(tmp_path, "vendor-app", "2.0")
    vendor_bad = deb(tmp_path, "vendor-agent", "1.1")
    verifier.approve(vendor_ok, vendor_bad)
    tamper(vendor_bad)  # the vendor's archive was compromised: its index lists these bytes
    debian = archive(tmp_path / "debian", "Debian", "Debian-Security", [security])
    vendor = archive(tmp_path / "vendor", "Vendor Inc", "Vendor", [vendor_ok, vendor_bad])
    sb = sandbox(tmp_path, verifier, 'Acquire::Languages "none";')
    (sb.root / "etc/apt/sources.list").write_text(
        f"deb [trusted=yes] file:{debian} stable main\n"
        f"deb [trusted=yes] file:{vendor} stable main\n"
    )
    env = {**verifier.env(), **hooks_toml(tmp_path, '[scope.apt]\norigins = ["Vendor Inc"]\n')}
    update = apt(sb, ["update"], env)
    assert update.returncode == 0, output(update)

    proc = apt(sb, ["install", "-y", "libssl-fix"], env)
    assert proc.returncode == 0, output(proc)
    assert sb.installed("libssl-fix") and verifier.calls() == []

    proc = apt(sb, ["install", "-y", "vendor-app"], env)
    assert proc.returncode == 0, output(proc)
    assert sb.installed("vendor-app")

    proc = apt(sb, ["install", "-y", "vendor-agent"], env)
    assert proc.returncode == 100, output(proc)
    assert not sb.installed("vendor-agent")
    assert not (sb.root / "usr/share/vendor-agent").exists()
    lines = refused(proc)
    assert len(lines) == 1 and "vendor-agent 1.1 (all): not verified" in lines[0], lines


@pytest.mark.parametrize(
    "selector",
    ['origins = ["Vendor*"]', 'labels = ["Vendor"]', 'sites = [""]'],
)
def test_archive_selectors(tmp_path: Path, verifier: Verifier, selector: str) -> None:
    # an unsigned package from the selected archive is refused, one from another installs.
    # (file: archives have no host name: sites = [""] selects them.)
    plain = deb(tmp_path, "plain-tool")
    vendored = deb(tmp_path, "vendored-tool")
    debian = archive(tmp_path / "debian", "Debian", "Debian", [plain])
    vendor = archive(tmp_path / "vendor", "Vendor Inc", "Vendor", [vendored])
    sb = sandbox(tmp_path, verifier, 'Acquire::Languages "none";')
    (sb.root / "etc/apt/sources.list").write_text(
        f"deb [trusted=yes] file:{debian} stable main\n"
        f"deb [trusted=yes] file:{vendor} stable main\n"
    )
    env = {**verifier.env(), **hooks_toml(tmp_path, f"[scope.apt]\n{selector}\n")}
    assert apt(sb, ["update"], env).returncode == 0
    proc = apt(sb, ["install", "-y", "vendored-tool"], env)
    assert proc.returncode == 100, output(proc)
    proc = apt(sb, ["install", "-y", "plain-tool"], env)
    if selector.startswith("sites"):  # both archives are file: archives: both selected
        assert proc.returncode == 100, output(proc)
    else:
        assert proc.returncode == 0, output(proc)
        assert sb.installed("plain-tool")


def test_local_file_no_archive_lists_is_inside_an_archive_scope(
    tmp_path: Path, verifier: Verifier
) -> None:
    # with archive selectors, a .deb that no index lists (a local file, or bytes no archive
    # published) cannot be placed: it is inside the scope, so it must verify.
    local = deb(tmp_path, "plain-local")
    sb = sandbox(tmp_path, verifier)
    env = {**verifier.env(), **hooks_toml(tmp_path, '[scope.apt]\norigins = ["Vendor"]\n')}
    proc = sb.install([local], env=env)
    assert proc.returncode == 100, output(proc)


def test_two_hundred_packages_one_line_per_culprit(tmp_path: Path, verifier: Verifier) -> None:
    """Issue 13 item 6: 200 packages in one apt-get run, 150 approved, 50 not: ONE verifier run
    (no re-run per package), one REFUSED line naming each of the 50, none of the others."""
    good = [deb(tmp_path, f"ok-{i:03d}") for i in range(150)]
    bad = [deb(tmp_path, f"bad-{i:03d}") for i in range(50)]
    verifier.approve(*good)
    sb = sandbox(tmp_path, verifier)
    proc = sb.install([*good, *bad], env=verifier.env(), timeout=900)
    assert proc.returncode == 100, output(proc)[-2000:]
    assert sb.status() == {}
    lines = refused(proc)
    assert len(lines) == 50, lines[:5]
    for i, line in enumerate(sorted(lines)):
        assert line.startswith(f"wotr-apt-hook: REFUSED: bad-{i:03d} 1.0 (all): not verified: ")
        assert len(line) < 200
    assert len(verifier.calls()) == 1 and len(verifier.files()[0]) == 200
