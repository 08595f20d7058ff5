"""Just enough OpenPGP (RFC 4880) packet parsing to avoid starting gpg where it is not needed.

- key files: which primary keys a file holds (v4 fingerprints), and the binary key material
  of exactly the keys a policy lists, to hand to gpg as its only keyring;
- signatures: a detached signature blob must be exactly one v4 binary-document signature
  packet, made with an acceptable hash (DESIGN §6 rule 3). gpg checks it again; this is the
  cheap first gate that also lets several signatures be checked in one gpg call.

Nothing here decides that a signature is *valid*: that is gpg's job (``gpg.py``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator

from ._record import record

TAG_SIGNATURE = 2
TAG_PUBLIC_KEY = 6
TAG_PUBLIC_SUBKEY = 14

# RFC 4880 §9.4: 1 MD5, 2 SHA-1, 3 RIPEMD-160 are not acceptable for new signatures.
WEAK_HASHES = frozenset({1, 2, 3})
HASH_NAMES = {
    1: "MD5",
    2: "SHA-1",
    3: "RIPEMD-160",
    8: "SHA256",
    9: "SHA384",
    10: "SHA512",
    11: "SHA224",
}


class PacketError(ValueError):
    """The bytes are not the OpenPGP data they should be."""


@record
class Packet:
    tag: int
    body: bytes
    raw: bytes


@record
class PublicKey:
    """One transferable public key: primary key packet and everything up to the next one."""

    fingerprint: str
    subkeys: tuple[str, ...]
    raw: bytes


def iter_packets(data: bytes) -> Iterator[Packet]:
    pos = 0
    end = len(data)
    while pos < end:
        start = pos
        head = data[pos]
        pos += 1
        if not head & 0x80:
            raise PacketError(f"byte {start}: not an OpenPGP packet header")
        if head & 0x40:  # new format
            tag = head & 0x3F
            if pos >= end:
                raise PacketError("truncated packet length")
            first = data[pos]
            if first < 192:
                length, pos = first, pos + 1
            elif first < 224:
                if pos + 1 >= end:
                    raise PacketError("truncated packet length")
                length, pos = ((first - 192) << 8) + data[pos + 1] + 192, pos + 2
            elif first == 255:
                if pos + 5 > end:
                    raise PacketError("truncated packet length")
                length, pos = int.from_bytes(data[pos + 1 : pos + 5], "big"), pos + 5
            else:
                raise PacketError("partial-length packets are not accepted here")
        else:  # old format
            tag = (head >> 2) & 0x0F
            ltype = head & 0x03
            if ltype == 3:
                raise PacketError("indeterminate-length packets are not accepted here")
            nbytes = 1 << ltype
            if pos + nbytes > end:
                raise PacketError("truncated packet length")
            length, pos = int.from_bytes(data[pos : pos + nbytes], "big"), pos + nbytes
        if pos + length > end:
            raise PacketError(f"packet at byte {start} runs past the end of the data")
        yield Packet(tag, data[pos : pos + length], data[start : pos + length])
        pos += length


def dearmor(data: bytes) -> bytes:
    """Binary OpenPGP data from ASCII armor (every block in the file), or ``data`` unchanged."""
    if b"-----BEGIN PGP" not in data:
        return data
    out = bytearray()
    lines = data.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].strip().startswith(b"-----BEGIN PGP"):
            i += 1
            continue
        i += 1
        while i < len(lines) and lines[i].strip() and b":" in lines[i]:  # armor headers
            i += 1
        body = bytearray()
        while i < len(lines) and not lines[i].strip().startswith(b"-----END PGP"):
            line = lines[i].strip()
            if line and not line.startswith(b"="):
                body += line
            i += 1
        if i >= len(lines):
            raise PacketError("armor block has no END line")
        try:
            out += base64.b64decode(bytes(body), validate=True)
        except binascii.Error as exc:
            raise PacketError(f"armor is not valid base64: {exc}") from exc
        i += 1
    return bytes(out)


def _fingerprint(body: bytes) -> str:
    if not body:
        raise PacketError("empty key packet")
    if body[0] != 4:
        raise PacketError(f"OpenPGP v{body[0]} keys are not supported (gpg 2.2 reads v4)")
    prefix = b"\x99" + len(body).to_bytes(2, "big")
    from .hashing import hasher

    data = prefix + body
    digest: str = hasher("sha1", len(data))(data, usedforsecurity=False).hexdigest()
    return digest.upper()


def public_keys(data: bytes) -> list[PublicKey]:
    """Every transferable public key in a key file (armored or binary)."""
    keys: list[PublicKey] = []
    current: tuple[str, list[str], bytearray] | None = None
    for packet in iter_packets(dearmor(data)):
        if packet.tag == TAG_PUBLIC_KEY:
            if current:
                keys.append(PublicKey(current[0], tuple(current[1]), bytes(current[2])))
            current = (_fingerprint(packet.body), [], bytearray(packet.raw))
        elif current is None:
            raise PacketError("key material does not start with a public key packet")
        else:
            if packet.tag == TAG_PUBLIC_SUBKEY:
                current[1].append(_fingerprint(packet.body))
            current[2].extend(packet.raw)
    if current:
        keys.append(PublicKey(current[0], tuple(current[1]), bytes(current[2])))
    return keys


def check_single_signature(sig: bytes) -> None:
    """Raise :class:`PacketError` unless ``sig`` is exactly one acceptable signature packet."""
    packets = list(iter_packets(sig))
    if len(packets) != 1:
        raise PacketError(f"the signature blob holds {len(packets)} packets, not exactly one")
    packet = packets[0]
    if packet.tag != TAG_SIGNATURE:
        raise PacketError(
            f"the signature blob holds a packet of type {packet.tag}, not a signature"
        )
    body = packet.body
    if len(body) < 4 or body[0] != 4:
        raise PacketError("only OpenPGP v4 signatures are accepted")
    if body[1] != 0x00:
        raise PacketError(f"signature class 0x{body[1]:02x} is not a binary-document signature")
    if body[3] in WEAK_HASHES:
        raise PacketError(f"signature uses the weak digest {HASH_NAMES[body[3]]}")


def issuers(sig: bytes) -> frozenset[str]:
    """Issuer hints of a v4 signature packet: 16-hex key ids and 40-hex fingerprints (upper).

    A hint only (the unhashed area is not signed): used to skip, before any gpg call,
    signatures that cannot be by a policy key. It can never make a signature count.
    """
    packets = list(iter_packets(sig))
    if len(packets) != 1:
        raise PacketError(f"the signature blob holds {len(packets)} packets, not exactly one")
    body = packets[0].body
    if len(body) < 6 or body[0] != 4:
        raise PacketError("only OpenPGP v4 signatures are accepted")
    found: set[str] = set()
    pos = 4
    for _area in range(2):  # hashed, then unhashed subpackets
        if pos + 2 > len(body):
            raise PacketError("truncated signature subpackets")
        size = int.from_bytes(body[pos : pos + 2], "big")
        area, pos = body[pos + 2 : pos + 2 + size], pos + 2 + size
        if len(area) != size:
            raise PacketError("truncated signature subpackets")
        i = 0
        while i < len(area):
            first = area[i]
            if first < 192:
                length, i = first, i + 1
            elif first < 255:
                if i + 1 >= len(area):
                    raise PacketError("truncated subpacket length")
                length, i = ((first - 192) << 8) + area[i + 1] + 192, i + 2
            else:
                if i + 5 > len(area):
                    raise PacketError("truncated subpacket length")
                length, i = int.from_bytes(area[i + 1 : i + 5], "big"), i + 5
            sub = area[i : i + length]
            if length < 1 or len(sub) != length:
                raise PacketError("malformed signature subpacket")
            kind, data = sub[0] & 0x7F, sub[1:]
            if kind == 16 and len(data) == 8:
                found.add(data.hex().upper())
            elif kind == 33 and len(data) == 21 and data[0] == 4:
                found.add(data[1:].hex().upper())
            i += length
    return frozenset(found)
