"""A small simulator: N signers with throwaway keys, a repository, a policy and a bare remote.

Everything is real: `git init`, gpg keys in short temporary homes, the `wotr` CLI run as a
separate process (``python -m wotr``) so exit codes and stderr are what a user sees.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from testing import gpgkeys
from wotr import claim as claim_mod

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Tester",
    "GIT_AUTHOR_EMAIL": "tester@example.invalid",
    "GIT_COMMITTER_NAME": "Tester",
    "GIT_COMMITTER_EMAIL": "tester@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def base_env(home: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GNUPG", "WOTR_"))}
    env.update(GIT_ENV)
    env["GIT_CONFIG_GLOBAL"] = os.devnull
    if home is not None:
        env["GNUPGHOME"] = str(home)
    return env


def git(cwd: Path, *args: str, input: bytes | None = None, check: bool = True) -> str:
    res = subprocess.run(
        ["git", *args], cwd=cwd, env=base_env(), input=input, capture_output=True, check=False
    )
    if check and res.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {res.stderr.decode()}")
    return res.stdout.decode().strip()


@dataclass
class Party:
    name: str
    key: gpgkeys.Key
    roles: tuple[str, ...] | None = None

    @property
    def fingerprint(self) -> str:
        return self.key.fingerprint


def init_repo(path: Path, files: Mapping[str, bytes] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for name, data in (files or {"src/main.c": b"int main(void) { return 0; }\n"}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def commit(path: Path, message: str = "change", files: Mapping[str, bytes] | None = None) -> str:
    for name, data in (files or {f"{message}.txt": message.encode()}).items():
        (path / name).write_bytes(data)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", message)
    return git(path, "rev-parse", "HEAD")


def write_policy(
    directory: Path,
    parties: Sequence[Party],
    threshold: int,
    *,
    require: Mapping[str, int] | None = None,
    extra_keys: Mapping[str, Sequence[gpgkeys.Key]] | None = None,
    list_extra: bool = False,
    name: str = "threshold.toml",
) -> Path:
    """A policy file with one key file per party under ``directory/keys``.

    ``extra_keys`` go into a party's key file too; with ``list_extra`` their fingerprints are
    listed under that party (several keys, one signer), else they are present but unlisted.
    """
    (directory / "keys").mkdir(parents=True, exist_ok=True)
    signers: list[dict[str, Any]] = []
    for party in parties:
        keys = [party.key, *(extra_keys or {}).get(party.name, ())]
        keyfile = directory / "keys" / f"{party.name}.asc"
        keyfile.write_bytes(b"".join(gpgkeys.public_armored(k) for k in keys))
        entry: dict[str, Any] = {
            "name": party.name,
            "keys": [f"keys/{party.name}.asc"],
            "fingerprints": [k.fingerprint for k in keys] if list_extra else [party.fingerprint],
        }
        if party.roles is not None:
            entry["roles"] = list(party.roles)
        signers.append(entry)
    doc: dict[str, Any] = {"version": 1, "threshold": threshold, "signers": signers}
    if require:
        doc["require"] = dict(require)
    path = directory / name
    path.write_bytes(tomli_w.dumps(doc).encode())
    return path


def envelope_line(
    key: gpgkeys.Key,
    claim: claim_mod.Claim,
    *,
    subkey: str | None = None,
    digest_algo: str | None = None,
    expired_signature: bool = False,
    payload: bytes | None = None,
) -> bytes:
    """Sign ``claim`` (or raw ``payload``) the way an attacker or an honest party could."""
    body = claim.payload() if payload is None else payload
    sig = gpgkeys.sign_detached(
        key,
        claim_mod.pae(body),
        subkey=subkey,
        digest_algo=digest_algo,
        expired_signature=expired_signature,
    )
    return claim_mod.Envelope(payload=body, sig=sig, keyid=key.fingerprint).line()


def write_note(repo: Path, commit_id: str, data: bytes) -> None:
    """Replace a note with arbitrary bytes, as anyone with push access to the notes ref could."""
    blob = git(repo, "hash-object", "-w", "--stdin", input=data)
    git(repo, "notes", "--ref=wotr", "add", "-f", "-C", blob, commit_id)


def read_note(repo: Path, commit_id: str) -> bytes:
    res = subprocess.run(
        ["git", "notes", "--ref=wotr", "show", commit_id],
        cwd=repo,
        env=base_env(),
        capture_output=True,
        check=False,
    )
    return res.stdout if res.returncode == 0 else b""


def notes_tip(repo: Path) -> str:
    return git(repo, "rev-parse", "-q", "--verify", "refs/notes/wotr", check=False)


@dataclass
class World:
    """A repository, some parties, dist/ artifacts and an installer's policy outside the repo."""

    root: Path
    parties: dict[str, Party] = field(default_factory=dict)
    repo: Path = field(init=False)
    policy_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.repo = init_repo(self.root / "repo")
        self.policy_dir = self.root / "policy"
        self.policy_dir.mkdir()
        (self.root / "dist").mkdir()

    def artifact(self, name: str, data: bytes) -> Path:
        path = self.root / "dist" / name
        path.write_bytes(data)
        return path

    def policy(self, threshold: int, names: Iterable[str] | None = None, **kw: Any) -> Path:
        chosen = [self.parties[n] for n in (names or self.parties)]
        return write_policy(self.policy_dir, chosen, threshold, **kw)

    def head(self) -> str:
        return git(self.repo, "rev-parse", "HEAD")

    def tree(self, rev: str = "HEAD") -> str:
        return git(self.repo, "rev-parse", f"{rev}^{{tree}}")

    def run(
        self,
        *args: str | Path,
        party: str | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real CLI as a separate process."""
        full = base_env(self.parties[party].key.home if party else None)
        full.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "wotr", *map(str, args)],
            cwd=cwd or self.repo,
            env=full,
            capture_output=True,
            text=True,
            check=False,
        )

    def sign(
        self,
        party: str,
        *artifacts: Path,
        rev: str = "HEAD",
        role: str | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        args: list[str | Path] = ["sign", "--rev", rev]
        if role:
            args += ["--role", role]
        res = self.run(*args, *artifacts, party=party, cwd=cwd)
        assert res.returncode == 0, res.stderr
        return res

    def verify(
        self, *args: str | Path, policy: Path | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        pol = policy or self.policy_dir / "threshold.toml"
        return self.run("verify", "--policy", pol, *args, cwd=cwd)

    def claim(
        self,
        artifacts: Mapping[str, bytes],
        *,
        rev: str = "HEAD",
        role: str = "author",
        ref: str | None = None,
        commit_id: str | None = None,
        tree: str | None = None,
    ) -> claim_mod.Claim:
        import hashlib

        return claim_mod.Claim.build(
            commit=commit_id or git(self.repo, "rev-parse", f"{rev}^{{commit}}"),
            tree=tree or self.tree(rev),
            role=role,
            ref=ref,
            artifacts={n: hashlib.sha256(d).hexdigest() for n, d in artifacts.items()},
        )


def make_world(
    root: Path,
    names: Sequence[str] = ("alice", "bob", "carol"),
    roles: Mapping[str, tuple[str, ...]] | None = None,
    keys: Mapping[str, gpgkeys.Key] | None = None,
) -> World:
    world = World(root)
    for name in names:
        key = (keys or {}).get(name) or gpgkeys.make_key(name)
        world.parties[name] = Party(name, key, (roles or {}).get(name))
    return world
