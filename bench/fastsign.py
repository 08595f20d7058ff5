"""Many OpenPGP signatures by one throwaway key in one process (bench fixtures only).

``gpg --detach-sign`` costs a process per signature (~10 ms, far more on a busy machine): too
slow for the 10,000 signatures of the distribution-scale cases. Here the key's own gpg-agent
signs digests in one ``gpg-connect-agent`` session and the v4 signature packets (EdDSA, SHA512,
the layout gpg makes: creation time and issuer fingerprint hashed, issuer key id unhashed) are
built around them. Whatever is wrong with them, wotr's verify refuses them: gpg checks each.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import time
from collections.abc import Sequence

from testing import gpgkeys


def _keygrip(key: gpgkeys.Key) -> str:
    out = subprocess.run(
        ["gpg", "--homedir", str(key.home), "--batch", "--with-keygrip", "--with-colons",
         "--list-secret-keys", key.fingerprint],
        capture_output=True, check=True, env=gpgkeys.gpg_env(),
    ).stdout.decode()  # fmt: skip
    for line in out.splitlines():
        if line.startswith("grp:"):
            return line.split(":")[9]
    raise RuntimeError(f"no keygrip for {key.fingerprint}")


def _mpi(raw: bytes) -> bytes:
    n = int.from_bytes(raw, "big")
    return n.bit_length().to_bytes(2, "big") + n.to_bytes((n.bit_length() + 7) // 8, "big")


def _unescape(data: bytes) -> bytes:
    return re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), data)


def sign_many(key: gpgkeys.Key, datas: Sequence[bytes]) -> list[bytes]:
    """A binary detached signature of each of ``datas`` by ``key`` (ed25519)."""
    when = int(time.time())
    fpr = bytes.fromhex(key.fingerprint)
    hashed = bytes([5, 2]) + when.to_bytes(4, "big") + bytes([22, 33, 4]) + fpr
    prefix = bytes([4, 0x00, 22, 10]) + len(hashed).to_bytes(2, "big") + hashed
    trailer = b"\x04\xff" + len(prefix).to_bytes(4, "big")
    unhashed = bytes([9, 16]) + fpr[-8:]
    digests = [hashlib.sha512(d + prefix + trailer).digest() for d in datas]
    grip = _keygrip(key)
    script = (
        "".join(f"SIGKEY {grip}\nSETHASH --hash=sha512 {d.hex()}\nPKSIGN\n" for d in digests)
        + "/bye\n"
    )
    res = subprocess.run(
        ["gpg-connect-agent", "--homedir", str(key.home)],
        input=script.encode(), capture_output=True, check=True, env=gpgkeys.gpg_env(),
    )  # fmt: skip
    blobs: list[bytes] = []
    current = b""
    for line in res.stdout.split(b"\n"):
        if line.startswith(b"D "):
            current += _unescape(line[2:])
        elif line.startswith(b"OK") and current:
            blobs.append(current)
            current = b""
        elif line.startswith(b"ERR"):
            raise RuntimeError(f"gpg-agent: {line.decode(errors='replace')}")
    if len(blobs) != len(datas):
        raise RuntimeError(f"gpg-agent made {len(blobs)} signatures, not {len(datas)}")
    out = []
    for digest, blob in zip(digests, blobs, strict=True):
        r = re.search(rb"\(1:r(\d+):", blob)
        s = re.search(rb"\(1:s(\d+):", blob)
        if r is None or s is None:
            raise RuntimeError(f"unexpected signature from gpg-agent: {blob[:80]!r}")
        rv = blob[r.end() : r.end() + int(r.group(1))]
        sv = blob[s.end() : s.end() + int(s.group(1))]
        body = prefix + len(unhashed).to_bytes(2, "big") + unhashed + digest[:2]
        body += _mpi(rv) + _mpi(sv)
        out.append(bytes([0x88, len(body)]) + body)
    return out
