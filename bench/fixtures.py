"""Repositories, keys, notes and artifacts for the benchmarks, built fast and thrown away.

Claims are signed directly with :mod:`testing.gpgkeys` (the same bytes ``git wotr sign`` makes,
see ``testing.sim.envelope_line``); big note sets are written with one ``git fast-import``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testing import gpgkeys, sim
from wotr import claim as claim_mod

COMMITTER = "Bench <bench@wotr.invalid> 1700000000 +0000"


def bench_env(root: Path) -> dict[str, str]:
    """The environment every timed wotr/git/gpg process gets.

    - the interpreter's own ``bin`` first on PATH, so ``git wotr`` finds the console script
      itself, not a version-manager shim (pyenv's bash shim adds ~40 ms to any command);
    - bytecode cached under ``root`` (an installed wotr has .pyc files; with
      ``PYTHONDONTWRITEBYTECODE`` every run would compile wotr's sources again, ~70 ms);
    - prepared policies (``wotr/prepared.py``) kept under ``root`` too, as an installed wotr
      keeps them in the user's cache: the first (warm-up) run prepares, the timed runs use it.
    """
    env = sim.base_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    env["WOTR_CACHE_DIR"] = str(root / "cache")
    env.pop("WOTR_NO_CACHE", None)
    return env


@dataclass
class Keys:
    """Throwaway keys, made once per bench run."""

    made: list[gpgkeys.Key] = field(default_factory=list)

    def get(self, n: int) -> list[gpgkeys.Key]:
        while len(self.made) < n:
            self.made.append(gpgkeys.make_key(f"signer{len(self.made):02d}"))
        return self.made[:n]

    def close(self) -> None:
        for key in self.made:
            gpgkeys.remove_home(key.home)


@dataclass(frozen=True)
class Scene:
    """A repository whose HEAD carries a note, an artifact set and a policy outside the repo."""

    repo: Path
    policy: Path
    artifacts: tuple[Path, ...]
    claim: claim_mod.Claim
    keys: tuple[gpgkeys.Key, ...]
    note: bytes


def write_artifacts(directory: Path, count: int, size: int) -> list[Path]:
    """``count`` files of ``size`` bytes with distinct contents (cheap pseudo-random bytes)."""
    directory.mkdir(parents=True, exist_ok=True)
    block = hashlib.shake_256(b"wotr-bench").digest(min(size, 1 << 20) or 1)
    paths = []
    for i in range(count):
        path = directory / f"artifact-{i:05d}.bin"
        with open(path, "wb") as f:
            f.write(i.to_bytes(8, "big"))
            left = size - 8
            while left > 0:
                chunk = block[: min(left, len(block))]
                f.write(chunk)
                left -= len(chunk)
        paths.append(path)
    return paths


def policy_for(directory: Path, keys: Sequence[gpgkeys.Key], threshold: int) -> Path:
    parties = [sim.Party(f"p{i:02d}", k) for i, k in enumerate(keys)]
    return sim.write_policy(directory, parties, threshold)


def claim_for(repo: Path, artifacts: Sequence[Path], rev: str = "HEAD") -> claim_mod.Claim:
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in artifacts}
    return claim_mod.Claim.build(
        commit=sim.git(repo, "rev-parse", f"{rev}^{{commit}}"),
        tree=sim.git(repo, "rev-parse", f"{rev}^{{tree}}"),
        role="author",
        artifacts=digests,
        ref=None,
    )


def signed_lines(keys: Sequence[gpgkeys.Key], claim: claim_mod.Claim) -> list[bytes]:
    return [sim.envelope_line(k, claim) for k in keys]


def scene(
    root: Path,
    keys: Sequence[gpgkeys.Key],
    *,
    signers: int,
    artifacts: Sequence[Path],
    threshold: int = 2,
    extra_lines: Sequence[bytes] = (),
) -> Scene:
    """A fresh repository with one commit whose note holds ``signers`` valid claims."""
    repo = sim.init_repo(root / "repo")
    policy = policy_for(root / "policy", keys, threshold)
    claim = claim_for(repo, artifacts)
    note = b"".join([*extra_lines, *signed_lines(keys[:signers], claim)])
    sim.write_note(repo, sim.git(repo, "rev-parse", "HEAD"), note)
    return Scene(repo, policy, tuple(artifacts), claim, tuple(keys), note)


def many_commits_repo(root: Path, commits: int) -> Path:
    """A repository with ``commits`` commits on main, made by one ``git fast-import``."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    sim.git(repo, "init", "-q", "-b", "main")
    stream = bytearray()
    for i in range(1, commits + 1):
        content = f"change {i}\n".encode()
        stream += (
            (
                f"commit refs/heads/main\nmark :{i}\ncommitter {COMMITTER}\ndata 0\n"
                f"M 644 inline file.txt\ndata {len(content)}\n"
            ).encode()
            + content
            + b"\n"
        )
    _fast_import(repo, bytes(stream))
    sim.git(repo, "checkout", "-q", "main")
    return repo


def note_every_commit(repo: Path, head_note: bytes, other_note: bytes) -> int:
    """Give every commit a note in one notes commit; HEAD's is ``head_note``. Returns the count.

    fast-import writes the notes tree with git's fanout (2/38 above a few hundred notes), the
    layout ``git wotr sign`` writes too.
    """
    head = sim.git(repo, "rev-parse", "HEAD")
    ids = sim.git(repo, "rev-list", "main").split()
    stream = bytearray()
    for mark, data in ((1, other_note), (2, head_note)):
        stream += f"blob\nmark :{mark}\ndata {len(data)}\n".encode() + data + b"\n"
    stream += f"commit refs/notes/wotr\ncommitter {COMMITTER}\ndata 0\n".encode()
    for commit_id in ids:
        stream += f"N :{2 if commit_id == head else 1} {commit_id}\n".encode()
    _fast_import(repo, bytes(stream))
    return len(ids)


def _fast_import(repo: Path, stream: bytes) -> None:
    import subprocess

    res = subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=repo,
        input=stream,
        env=sim.base_env(),
        capture_output=True,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"git fast-import failed: {res.stderr.decode(errors='replace')}")


def corrupt_signatures(sig: bytes, count: int) -> list[bytes]:
    """``count`` distinct signatures that parse like ``sig`` but fail gpg's check (BADSIG).

    The last bytes (the signature's MPI) are changed; the hash prefix gpg checks first is
    kept, so gpg does the full public-key operation before it says BAD.
    """
    out = []
    for i in range(count):
        tail = bytes(b ^ m for b, m in zip(sig[-4:], (i + 1).to_bytes(4, "big"), strict=True))
        out.append(sig[:-4] + tail)
    return out


class GpgFloor:
    """A GnuPG home holding a policy keyring, for the ``gpg --verify`` part of a floor."""

    def __init__(self, root: Path, keys: Sequence[gpgkeys.Key], data: bytes) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="wb", dir="/tmp"))
        self.keyring = self.home / "policy.gpg"
        self.keyring.write_bytes(gpgkeys.binary_keyring(*keys))
        self.data = self.home / "data"
        self.data.write_bytes(data)
        self.root = root

    def verify_argv(self, sig: bytes, name: str) -> list[str | Path]:
        sig_file = self.home / name
        sig_file.write_bytes(sig)
        return [
            "gpg",
            "--homedir",
            self.home,
            "--no-options",
            "--batch",
            "--no-tty",
            "--no-autostart",
            "--no-default-keyring",
            "--keyring",
            self.keyring,
            "--trust-model",
            "always",
            "--status-fd",
            "1",
            "--verify",
            sig_file,
            self.data,
        ]

    def close(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


def sig_of(line: bytes) -> bytes:
    return claim_mod.parse_line(line.rstrip(b"\n")).sig


def tempdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def iter_lines(note: bytes) -> Iterator[bytes]:
    yield from (ln for ln in note.split(b"\n") if ln)
