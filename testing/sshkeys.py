"""Throwaway SSH keys and SSHSIG signatures for tests, made with the real ``ssh-keygen``.

Keys live in a short private directory under ``/tmp``; ``ssh-keygen -t ed25519 -N ''`` takes a
few milliseconds, an RSA key longer (prime generation). Signing never uses an agent: ``-f`` names
the private key file. ``HOME`` is pointed at the key's directory so the user's ``~/.ssh`` is never
read.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SshKey", "make_key", "remove", "sign", "sign_binary"]


@dataclass(frozen=True)
class SshKey:
    name: str
    home: Path
    private: Path
    public_line: str  # "<type> <base64> <comment>"
    fingerprint: str  # "SHA256:…"

    @property
    def public(self) -> Path:
        return Path(str(self.private) + ".pub")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"SSH_AUTH_SOCK", "SSH_AGENT_PID"}}
    env.update({"HOME": str(home), "LC_ALL": "C"})
    return env


def make_key(name: str, kind: str = "ed25519", bits: int | None = None) -> SshKey:
    """A new key pair without passphrase. ``kind``: ed25519, ecdsa, rsa, dsa (dsa may be missing
    from ssh-keygen builds; the caller then skips)."""
    home = Path(tempfile.mkdtemp(prefix="ws", dir="/tmp"))
    private = home / f"id_{name}"
    argv = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"{name}@test", "-f", str(private)]
    if bits is not None:
        argv += ["-b", str(bits)]
    subprocess.run(argv, env=_env(home), check=True, capture_output=True)
    line = Path(str(private) + ".pub").read_text().strip()
    fpr = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(private) + ".pub"],
        env=_env(home),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[1]
    return SshKey(name, home, private, line, fpr)


def sign(key: SshKey, data: bytes, namespace: str = "wotr") -> bytes:
    """The armored SSH signature of ``data`` by ``key`` for ``namespace``."""
    res = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-n", namespace, "-f", str(key.private)],
        input=data,
        env=_env(key.home),
        capture_output=True,
        check=True,
    )
    return res.stdout


def sign_binary(key: SshKey, data: bytes, namespace: str = "wotr") -> bytes:
    """The binary SSHSIG blob, as a wotr envelope carries it."""
    lines = sign(key, data, namespace).strip().splitlines()
    return base64.b64decode(b"".join(lines[1:-1]))


def remove(key: SshKey) -> None:
    shutil.rmtree(key.home, ignore_errors=True)
