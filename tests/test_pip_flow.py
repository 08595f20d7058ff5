"""pip: resolve (dry run) -> wotr verifies every download by digest -> --require-hashes lock.

Real pip, real wheels (written by hand in the test), a local wheel directory, no network.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from testing import sim

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "hooks" / "pip" / "wotr-pip-lock"


def make_wheel(
    directory: Path, name: str, version: str, requires: Sequence[str] = (), body: str = ""
) -> Path:
    dist = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n{body}".encode(),
        f"{dist}/METADATA": meta.encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: wotr-test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }

    def record_hash(data: bytes) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    record = "".join(f"{p},sha256={record_hash(b)},{len(b)}\n" for p, b in files.items())
    files[f"{dist}/RECORD"] = (record + f"{dist}/RECORD,,\n").encode()
    path = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for p, data in files.items():
            z.writestr(zipfile.ZipInfo(p, (2020, 1, 1, 0, 0, 0)), data)
    return path


def pip_env() -> dict[str, str]:
    """No pip configuration of this machine (constraints, find-links, indexes): offline."""
    env = {k: v for k, v in sim.base_env().items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_NO_INDEX"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["WOTR_VERIFY_CMD"] = f"{sys.executable} -m wotr verify"
    return env


def lock(
    world: sim.World, out: Path, *pip_args: str | Path, extra: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(LOCK),
            "--policy",
            str(world.policy_dir / "threshold.toml"),
            "--bundles",
            str(world.root / "bundles"),
            *extra,
            "-o",
            str(out),
            "--",
            *map(str, pip_args),
        ],
        env=pip_env(),
        capture_output=True,
        text=True,
        check=False,
        cwd=world.root,
    )


def install(locked: Path, wheels: Path, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--require-hashes",
            "--no-deps",
            "--no-index",
            "--find-links",
            str(wheels),
            "--target",
            str(target),
            "-r",
            str(locked),
        ],
        env=pip_env(),
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def wheels(world: sim.World) -> Path:
    """tinya 1.0 (needs tinyb) and tinyb 1.2, built, signed by alice and bob, bundled."""
    wheels = world.root / "wheels"
    wheels.mkdir()
    a = make_wheel(wheels, "tinya", "1.0", ["tinyb>=1"])
    b = make_wheel(wheels, "tinyb", "1.2")
    world.policy(2)
    for party in ("alice", "bob"):
        world.sign(party, a, b)
    (world.root / "bundles").mkdir()
    res = world.run("export", "-o", world.root / "bundles" / "tiny.wotr")
    assert res.returncode == 0, res.stderr
    return wheels


def test_verified_lock_then_hash_locked_install(world: sim.World, wheels: Path) -> None:
    locked = world.root / "locked.txt"
    res = lock(world, locked, "tinya", "--find-links", wheels)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in locked.read_text().splitlines() if not ln.startswith("#")]
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in wheels.iterdir()}
    assert lines == [
        f"tinya==1.0 --hash=sha256:{digests['tinya-1.0-py3-none-any.whl']}",
        f"tinyb==1.2 --hash=sha256:{digests['tinyb-1.2-py3-none-any.whl']}",
    ]
    target = world.root / "site"
    res = install(locked, wheels, target)
    assert res.returncode == 0, res.stderr
    assert (target / "tinya" / "__init__.py").exists()
    assert (target / "tinyb" / "__init__.py").exists()
    # swapped after locking: pip itself refuses the other bytes
    make_wheel(wheels, "tinyb", "1.2", body="EVIL = True\n")
    res = install(locked, wheels, world.root / "site2")
    assert res.returncode != 0
    assert "hash" in res.stderr.lower()


def test_unverified_dependency_refuses_and_writes_nothing(world: sim.World, wheels: Path) -> None:
    make_wheel(wheels, "tinyb", "1.2", body="EVIL = True\n")  # same name, other bytes
    locked = world.root / "locked.txt"
    res = lock(world, locked, "tinya", "--find-links", wheels)
    assert res.returncode == 1, res.stderr
    assert "REFUSED" in res.stderr and "tinyb==1.2" in res.stderr
    assert "tinya==1.0" not in res.stderr.split("REFUSED")[1]
    assert not locked.exists()
    assert not list(world.root.glob(".wotr-lock.*"))


def test_below_threshold_and_bad_inputs(world: sim.World, wheels: Path) -> None:
    locked = world.root / "locked.txt"
    # a stricter policy than the claims can meet
    res = lock(
        world, locked, "tinya", "--find-links", wheels, extra=["--policy", str(world.policy(3))]
    )
    assert res.returncode == 1 and not locked.exists()
    # wotr's reason, as apt's hook shows it: who signed, how many were needed
    assert "FAIL  tinyb==1.2" in res.stderr and "2 of 3 needed; signed by alice, bob" in res.stderr
    world.policy(2)
    # a local source directory has no fixed archive: refused, not waved through
    project = world.root / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "localproj"\nversion = "0.1"\n'
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
    )
    (project / "backend.py").write_text(
        "def get_requires_for_build_wheel(c=None): return []\n"
        "def prepare_metadata_for_build_wheel(d, c=None):\n"
        "    import os; p = os.path.join(d, 'localproj-0.1.dist-info'); os.makedirs(p)\n"
        "    open(os.path.join(p, 'METADATA'), 'w').write("
        "'Metadata-Version: 2.1\\nName: localproj\\nVersion: 0.1\\n')\n"
        "    return 'localproj-0.1.dist-info'\n"
    )
    res = lock(world, locked, project)
    assert res.returncode == 2, res.stderr
    assert "no fixed archive" in res.stderr
    # nothing resolvable
    res = lock(world, locked, "no-such-package", "--find-links", wheels)
    assert res.returncode == 2 and "pip could not resolve" in res.stderr
    # wotr missing: environment, fail closed
    env_missing = pip_env() | {"WOTR_VERIFY_CMD": "/nonexistent/wotr verify"}
    res = subprocess.run(
        [sys.executable, str(LOCK), "-o", str(locked), "--", "tinya", "--find-links", str(wheels)],
        env=env_missing,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 3 and not locked.exists()
    # a verifier that crashes (here: cannot import) is "wotr failed", never "not verified"
    crash = f"{sys.executable} -c 'import wotr_no_such_module'"
    res = subprocess.run(
        [sys.executable, str(LOCK), "-o", str(locked), "--", "tinya", "--find-links", str(wheels)],
        env=pip_env() | {"WOTR_VERIFY_CMD": crash},
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 3 and not locked.exists(), res.stderr
    assert "REFUSED: wotr failed: exit 1 without a report" in res.stderr
    assert "ModuleNotFoundError" in res.stderr and "not verified" not in res.stderr
    shutil.rmtree(project)


def test_sdists_are_not_resolved_unless_allowed(world: sim.World, wheels: Path) -> None:
    """Found by an attacker review: to resolve an sdist, pip runs its build backend during the
    dry run, before anything is verified. wotr-pip-lock resolves wheels only by default."""
    import io
    import tarfile

    marker = world.root / "backend-ran"
    backend = (
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "def get_requires_for_build_wheel(c=None): return []\n"
        "def prepare_metadata_for_build_wheel(d, c=None):\n"
        "    import os; p = os.path.join(d, 'evil-1.0.dist-info'); os.makedirs(p)\n"
        "    open(os.path.join(p, 'METADATA'), 'w').write("
        "'Metadata-Version: 2.1\\nName: evil\\nVersion: 1.0\\n')\n"
        "    return 'evil-1.0.dist-info'\n"
    )
    files = {
        "evil-1.0/pyproject.toml": b'[build-system]\nrequires = []\nbuild-backend = "backend"\n'
        b'backend-path = ["."]\n',
        "evil-1.0/backend.py": backend.encode(),
        "evil-1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
    }
    links = world.root / "links"
    links.mkdir()
    with tarfile.open(links / "evil-1.0.tar.gz", "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tf.addfile(info, io.BytesIO(data))
    locked = world.root / "locked.txt"
    res = lock(world, locked, "evil", "--no-index", "--find-links", links)
    assert res.returncode != 0 and not locked.exists(), res.stderr
    assert not marker.exists()
    res = lock(
        world,
        locked,
        "evil",
        "--no-index",
        "--find-links",
        links,
        extra=["--unsafe-allow-sdists"],
    )
    assert marker.exists()  # what the default prevents
    assert res.returncode != 0 and not locked.exists()  # and it is still not verified
