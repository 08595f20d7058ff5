"""Just enough of the OpenSSH key and signature formats to gate SSH claims before ssh-keygen runs.

- public keys, as a policy lists them (``"<type> <base64> [comment]"``): the key blob must parse
  exactly, its type must be one wotr accepts (no DSA, no RSA under 2048 bits, no certificates,
  nothing unknown) and agree with the type written before it;
- signatures: an SSHSIG blob (OpenSSH ``PROTOCOL.sshsig``) must be exactly one blob -- magic
  ``SSHSIG``, version 1, the signer's public key, the namespace, an empty reserved field, hash
  ``sha512`` or ``sha256`` and the signature -- with nothing after it. The embedded public key
  names the signer (the envelope's ``keyid`` is only a hint).

Nothing here decides that a signature is *valid*: that is ssh-keygen's job (``ssh.py``).
"""

from __future__ import annotations

import base64
import binascii

from ._record import record

MAGIC = b"SSHSIG"
NAMESPACE = "wotr"
HASHES = frozenset({"sha512", "sha256"})
MIN_RSA_BITS = 2048

_ED25519 = "ssh-ed25519"
_SK_ED25519 = "sk-ssh-ed25519@openssh.com"
_RSA = "ssh-rsa"
_ECDSA = {
    "ecdsa-sha2-nistp256": ("nistp256", 65),
    "ecdsa-sha2-nistp384": ("nistp384", 97),
    "ecdsa-sha2-nistp521": ("nistp521", 133),
}
_SK_ECDSA = "sk-ecdsa-sha2-nistp256@openssh.com"
KEY_TYPES = frozenset({_ED25519, _SK_ED25519, _RSA, *_ECDSA, _SK_ECDSA})
# The signature algorithms each key type may sign with (RSA: never SHA-1 "ssh-rsa").
_SIG_TYPES = {
    _ED25519: {_ED25519},
    _SK_ED25519: {_SK_ED25519},
    _RSA: {"rsa-sha2-256", "rsa-sha2-512"},
    _SK_ECDSA: {_SK_ECDSA},
    **{t: {t} for t in _ECDSA},
}
_REFUSED = {
    "ssh-dss": "DSA keys are refused (weak, removed from OpenSSH)",
}
MAX_KEY_BYTES = 8 * 1024  # an RSA key of 16384 bits is ~2 KiB


class SshFormatError(ValueError):
    """The bytes are not the OpenSSH data they should be."""


@record
class PublicKey:
    type: str
    blob: bytes  # the wire-format key: what the SHA256 fingerprint is taken over
    fingerprint: str  # "SHA256:<base64, no padding>", as ssh-keygen -l prints it

    def line(self) -> str:
        """``<type> <base64>``: one allowed-signers key, without comment."""
        return f"{self.type} {base64.b64encode(self.blob).decode('ascii')}"


@record
class Signature:
    key: PublicKey
    namespace: str
    hash_algorithm: str
    sig_type: str
    value: bytes = b""  # the signature value inside the blob (ed25519: R || S, 64 bytes)

    def signed_data(self, message: bytes) -> bytes:
        """What the key signed for ``message`` (PROTOCOL.sshsig; the reserved field is signed
        empty, as ssh-keygen verifies it)."""
        from .hashing import hasher

        digest = hasher(self.hash_algorithm, len(message))(message).digest()
        parts = [MAGIC, _string(self.namespace.encode()), _string(b"")]
        return b"".join([*parts, _string(self.hash_algorithm.encode()), _string(digest)])


def _string(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value


# The order of the ed25519 group: a signature's S must be below it (RFC 8032 §5.1.7). OpenSSH
# 9.2's ssh-keygen accepts S + L too (a second encoding of the same signature); wotr does not.
_ED25519_L = 2**252 + 27742317777372353535851937790883648493


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u32(self) -> int:
        if self.pos + 4 > len(self.data):
            raise SshFormatError("truncated")
        value = int.from_bytes(self.data[self.pos : self.pos + 4], "big")
        self.pos += 4
        return value

    def string(self) -> bytes:
        n = self.u32()
        if self.pos + n > len(self.data):
            raise SshFormatError("truncated")
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        return value

    def text(self) -> str:
        raw = self.string()
        if not raw.isascii() or not raw.decode("ascii").isprintable():
            raise SshFormatError("a name field is not printable ASCII")
        return raw.decode("ascii")

    def byte(self) -> int:
        if self.pos + 1 > len(self.data):
            raise SshFormatError("truncated")
        self.pos += 1
        return self.data[self.pos - 1]

    def end(self) -> None:
        if self.pos != len(self.data):
            raise SshFormatError("unexpected bytes after the end")


def fingerprint(blob: bytes) -> str:
    from .hashing import sha256_for

    digest: bytes = sha256_for(len(blob))(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _mpint_bits(raw: bytes) -> int:
    if raw and raw[0] & 0x80:
        raise SshFormatError("negative RSA value")
    return int.from_bytes(raw, "big").bit_length()


def parse_key_blob(blob: bytes) -> PublicKey:
    """The wire-format public key ``blob``, checked: a type wotr accepts, exact length."""
    if len(blob) > MAX_KEY_BYTES:
        raise SshFormatError("the key is implausibly large")
    r = _Reader(blob)
    key_type = r.text()
    if key_type in _REFUSED:
        raise SshFormatError(_REFUSED[key_type])
    if key_type not in KEY_TYPES:
        raise SshFormatError(
            f"key type {key_type!r} is not accepted (use ssh-ed25519, ecdsa-sha2-nistp*, "
            "ssh-rsa of 2048 bits or more, or a FIDO sk- key; certificates are not accepted)"
        )
    if key_type in (_ED25519, _SK_ED25519):
        if len(r.string()) != 32:
            raise SshFormatError("an ed25519 key must be 32 bytes")
    elif key_type == _RSA:
        e, n = r.string(), r.string()
        if _mpint_bits(e) < 2 or not int.from_bytes(e, "big") & 1:
            raise SshFormatError("the RSA public exponent is not valid")
        bits = _mpint_bits(n)
        if bits < MIN_RSA_BITS:
            raise SshFormatError(f"RSA keys under {MIN_RSA_BITS} bits are refused ({bits} bits)")
    else:
        curve, size = _ECDSA.get(key_type, ("nistp256", 65))
        if r.text() != curve:
            raise SshFormatError(f"the curve of the {key_type} key is not {curve}")
        point = r.string()
        if len(point) != size or point[0] != 4:
            raise SshFormatError("the ECDSA point is not an uncompressed point of its curve")
    if key_type in (_SK_ED25519, _SK_ECDSA):
        r.text()  # the FIDO application, e.g. "ssh:"
    r.end()
    return PublicKey(key_type, blob, fingerprint(blob))


def parse_key_line(line: str) -> PublicKey:
    """``"<type> <base64> [comment]"``, as in an ``.pub`` file or ``authorized_keys`` without
    options. The comment is ignored; the written type must be the blob's own type."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        raise SshFormatError("not '<type> <base64> [comment]'")
    written, b64 = parts[0], parts[1]
    if written in _REFUSED:
        raise SshFormatError(_REFUSED[written])
    try:
        blob = base64.b64decode(b64.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise SshFormatError("the key is not valid base64") from exc
    key = parse_key_blob(blob)
    if key.type != written:
        raise SshFormatError(f"the line says {written!r} but the key is {key.type!r}")
    return key


def is_sshsig(sig: bytes) -> bool:
    """Does ``sig`` claim to be an SSHSIG blob (as opposed to an OpenPGP packet)?"""
    return sig.startswith(MAGIC)


def parse_signature(sig: bytes) -> Signature:
    """Exactly one SSHSIG blob, version 1, namespace ``wotr``, hash sha512/sha256, a signature of
    the type its key makes, nothing after it."""
    if not is_sshsig(sig):
        raise SshFormatError("not an SSH signature (no SSHSIG magic)")
    r = _Reader(sig)
    r.pos = len(MAGIC)
    version = r.u32()
    if version != 1:
        raise SshFormatError(f"SSHSIG version {version} is not supported")
    key = parse_key_blob(r.string())
    namespace = r.string()
    if namespace != NAMESPACE.encode():
        shown = namespace.decode("ascii", "replace")[:32]
        raise SshFormatError(
            f"the SSH signature was made for namespace {shown!r}, not {NAMESPACE!r}"
        )
    r.string()  # reserved: ignored, as ssh-keygen does
    hash_algorithm = r.text()
    if hash_algorithm not in HASHES:
        raise SshFormatError(f"hash {hash_algorithm!r} is not sha512 or sha256")
    inner = _Reader(r.string())
    r.end()
    sig_type = inner.text()
    if sig_type not in _SIG_TYPES[key.type]:
        raise SshFormatError(f"a {key.type} key does not make {sig_type!r} signatures")
    value = inner.string()
    if key.type in (_ED25519, _SK_ED25519) and (
        len(value) != 64 or int.from_bytes(value[32:], "little") >= _ED25519_L
    ):
        raise SshFormatError("not a canonical ed25519 signature value")
    if key.type in (_SK_ED25519, _SK_ECDSA):
        inner.byte()  # flags
        inner.u32()  # counter
    inner.end()
    return Signature(key, NAMESPACE, hash_algorithm, sig_type, value)


ARMOR_BEGIN = b"-----BEGIN SSH SIGNATURE-----"
ARMOR_END = b"-----END SSH SIGNATURE-----"


def armor(sig: bytes) -> bytes:
    """The armored form ssh-keygen reads (base64 in lines of 70, as it writes them)."""
    b64 = base64.b64encode(sig)
    body = b"\n".join(b64[i : i + 70] for i in range(0, len(b64), 70))
    return ARMOR_BEGIN + b"\n" + body + b"\n" + ARMOR_END + b"\n"


def dearmor(text: bytes) -> bytes:
    """The binary blob of exactly one armored SSH signature (ssh-keygen -Y sign's output)."""
    lines = [ln.strip() for ln in text.strip().splitlines()]
    if len(lines) < 3 or lines[0] != ARMOR_BEGIN or lines[-1] != ARMOR_END:
        raise SshFormatError("not one armored SSH signature")
    try:
        return base64.b64decode(b"".join(lines[1:-1]), validate=True)
    except binascii.Error as exc:
        raise SshFormatError("the armored SSH signature is not valid base64") from exc
