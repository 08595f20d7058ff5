"""The small OpenPGP parser agrees with gpg on fingerprints and refuses what it must."""

from __future__ import annotations

from typing import Any

import pytest

from testing import gpgkeys
from wotr import _openpgp


def test_fingerprints_match_gpg(keys: Any) -> None:
    dave = keys.get("dave", signing_subkeys=2)
    (key,) = _openpgp.public_keys(gpgkeys.public_armored(dave))
    assert key.fingerprint == dave.fingerprint
    assert set(key.subkeys) >= set(dave.subkeys)
    (again,) = _openpgp.public_keys(gpgkeys.public_binary(dave))
    assert again == key


def test_several_keys_in_one_file(keys: Any) -> None:
    ks = [keys.get("alice"), keys.get("bob")]
    found = _openpgp.public_keys(gpgkeys.armored_keyring(*ks))
    assert [k.fingerprint for k in found] == [k.fingerprint for k in ks]


def test_single_signature_gate(keys: Any) -> None:
    alice = keys.get("alice")
    sig = gpgkeys.sign_detached(alice, b"data")
    _openpgp.check_single_signature(sig)
    with pytest.raises(_openpgp.PacketError, match="2 packets"):
        _openpgp.check_single_signature(sig + sig)
    with pytest.raises(_openpgp.PacketError):
        _openpgp.check_single_signature(sig[:-1])
    with pytest.raises(_openpgp.PacketError):
        _openpgp.check_single_signature(b"")
    with pytest.raises(_openpgp.PacketError, match="weak digest SHA-1"):
        _openpgp.check_single_signature(gpgkeys.sign_detached(alice, b"d", digest_algo="SHA1"))
    with pytest.raises(_openpgp.PacketError, match="not a signature"):
        _openpgp.check_single_signature(
            next(_openpgp.iter_packets(gpgkeys.public_binary(alice))).raw
        )


def test_text_mode_signature_is_refused(keys: Any) -> None:
    alice = keys.get("alice")
    with gpgkeys.temporary_home() as tmp:
        src = tmp / "d"
        src.write_bytes(b"data\n")
        gpgkeys.gpg(
            alice.home,
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "-u",
            alice.fingerprint + "!",
            "--textmode",
            "--detach-sign",
            "-o",
            str(tmp / "s"),
            str(src),
        )
        with pytest.raises(_openpgp.PacketError, match="class 0x01"):
            _openpgp.check_single_signature((tmp / "s").read_bytes())


@pytest.mark.parametrize(
    "data",
    [b"\x00", b"\xc0", b"\x99\xff\xff", b"\xff" * 3, b"\x88\x03ab", b"\xcf\xff\x00\x00\x00\x10x"],
)
def test_malformed_packets(data: bytes) -> None:
    with pytest.raises(_openpgp.PacketError):
        list(_openpgp.iter_packets(data))


def test_issuers_of_real_signatures(keys: Any) -> None:
    dave = keys.get("dave", signing_subkeys=2)
    by_primary = _openpgp.issuers(gpgkeys.sign_detached(dave, b"d"))
    assert dave.fingerprint in by_primary and dave.fingerprint[-16:] in by_primary
    by_subkey = _openpgp.issuers(gpgkeys.sign_detached(dave, b"d", subkey=dave.subkeys[1]))
    assert dave.subkeys[1] in by_subkey and dave.fingerprint not in by_subkey


@pytest.mark.parametrize(
    "body",
    [
        b"\x04\x00\x16\x08",  # no subpacket areas
        b"\x04\x00\x16\x08\x00\x05\x01",  # hashed area runs past the end
        b"\x04\x00\x16\x08\x00\x02\xff\x00\x00\x00",  # 4-byte length truncated
        b"\x04\x00\x16\x08\x00\x02\x05\x10\x00\x00",  # subpacket longer than its area
    ],
)
def test_issuers_refuse_malformed_subpackets(body: bytes) -> None:
    packet = bytes([0xC2, len(body)]) + body
    with pytest.raises(_openpgp.PacketError):
        _openpgp.issuers(packet)
