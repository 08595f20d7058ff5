"""The gpg fixtures in ``testing.gpgkeys`` are what they claim, checked with gpg's status output.

Every signature is verified in a separate fresh home that holds only the public keys.  The tests
marked "gpg behaviour" pin down how GnuPG 2.2 reports things that wotr's verifier relies on.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testing.gpgkeys import (
    BACKDATE,
    Key,
    armored_keyring,
    binary_keyring,
    gpg,
    gpg_env,
    make_key,
    parse_status,
    public_armored,
    public_binary,
    remove_home,
    short_home,
    sign_detached,
    temporary_home,
    verify_status,
)

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg not installed")

DATA = b"DSSEv1 28 application/vnd.in-toto+json 2 {}"

#: VALIDSIG arguments (after the keyword), see doc/DETAILS in GnuPG
V_SIGNER, V_DATE, V_TIME, V_EXPIRE, V_VERSION, V_RESERVED, V_PKALGO, V_HASH, V_CLASS, V_PRIMARY = (
    range(10)
)
HASH_SHA1, HASH_SHA256, HASH_SHA512 = "2", "8", "10"


@dataclass(frozen=True)
class Keys:
    alice: Key  # ed25519 with two signing subkeys
    bob: Key  # ed25519, shares alice's home
    expired: Key
    revoked: Key
    revsub: Key  # subkeys[0] revoked
    rsa: Key  # rsa2048
    stranger: Key  # never given to a verifier


@pytest.fixture(scope="module")
def keys() -> Iterator[Keys]:
    alice = make_key("alice", signing_subkeys=2)
    bob = make_key("bob", home=alice.home)
    ks = Keys(
        alice=alice,
        bob=bob,
        expired=make_key("expired", expired=True),
        revoked=make_key("revoked", revoked=True),
        revsub=make_key("revsub", revoked_subkey=True),
        rsa=make_key("rsa", algo="rsa2048"),
        stranger=make_key("stranger"),
    )
    yield ks
    for home in {k.home for k in vars(ks).values()}:
        remove_home(home)


def blocks(status: list[list[str]]) -> list[list[list[str]]]:
    """Status lines grouped per signature: each group starts at a NEWSIG."""
    out: list[list[list[str]]] = []
    for row in status:
        if row[0] == "NEWSIG":
            out.append([])
        elif out:
            out[-1].append(row)
    return out


def kinds(block: list[list[str]]) -> list[str]:
    interesting = {
        "GOODSIG", "BADSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG", "ERRSIG", "NO_PUBKEY", "VALIDSIG",
    }  # fmt: skip
    return [r[0] for r in block if r[0] in interesting]


def one(block: list[list[str]], keyword: str) -> list[str]:
    rows = [r[1:] for r in block if r[0] == keyword]
    assert len(rows) == 1, (keyword, block)
    return rows[0]


def long_id(fpr: str) -> str:
    return fpr[-16:]


# ---------------------------------------------------------------- homes and keys


def test_short_home_is_private_empty_and_short() -> None:
    home = short_home()
    try:
        assert home.parent == Path("/tmp")
        assert home.name.startswith("wg")
        assert len(str(home)) <= 20
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        assert list(home.iterdir()) == []
    finally:
        remove_home(home)


def test_temporary_home_is_removed() -> None:
    with temporary_home() as home:
        assert home.is_dir()
    assert not home.exists()


def test_gpg_env_drops_gnupghome(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GNUPGHOME", "/nonexistent")
    assert "GNUPGHOME" not in gpg_env()


def test_keys_have_full_fingerprints_and_signing_subkeys(keys: Keys) -> None:
    for key in vars(keys).values():
        assert len(key.fingerprint) == 40
        assert key.fingerprint == key.fingerprint.upper()
        int(key.fingerprint, 16)
    assert len(keys.alice.subkeys) == 2
    assert keys.bob.subkeys == ()
    assert keys.alice.home == keys.bob.home
    assert keys.alice.fingerprint != keys.bob.fingerprint

    with temporary_home() as home:
        gpg(home, "--import", "--no-autostart", input=binary_keyring(keys.alice))
        out = gpg(home, "--with-colons", "--fixed-list-mode", "--list-keys").stdout.decode()
    rows = [line.split(":") for line in out.splitlines()]
    pubs = [r for r in rows if r[0] == "pub"]
    subs = [r for r in rows if r[0] == "sub"]
    fprs = [r[9] for r in rows if r[0] == "fpr"]
    assert len(pubs) == 1 and pubs[0][11] == "scSC"  # sign-only primary, signing-capable key
    assert pubs[0][16] == "ed25519"
    assert [s[11] for s in subs] == ["s", "s"]
    assert fprs == [keys.alice.fingerprint, *keys.alice.subkeys]


def test_keys_are_backdated(keys: Keys) -> None:
    assert abs(keys.alice.created - (time.time() - BACKDATE)) < 600


def validity(key: Key) -> list[tuple[str, str]]:
    """(record type, validity) of pub and sub lines as a fresh verifier sees the public key."""
    with temporary_home() as home:
        gpg(home, "--import", "--no-autostart", input=public_binary(key))
        out = gpg(home, "--with-colons", "--list-keys").stdout.decode()
    return [
        (r[0], r[1]) for r in (ln.split(":") for ln in out.splitlines()) if r[0] in {"pub", "sub"}
    ]


def test_expired_revoked_and_revoked_subkey_as_seen_by_a_verifier(keys: Keys) -> None:
    assert validity(keys.expired) == [("pub", "e")]
    assert validity(keys.revoked) == [("pub", "r")]
    revsub = validity(keys.revsub)
    assert revsub[0][0] == "pub" and revsub[0][1] != "r"
    assert revsub[1] == ("sub", "r")
    assert keys.revsub.revoked_subkeys == (keys.revsub.subkeys[0],)


def test_public_key_encodings(keys: Keys) -> None:
    armored = public_armored(keys.alice)
    assert armored.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    binary = public_binary(keys.alice)
    assert binary[0] & 0x80 and not binary.startswith(b"-----")
    ring = armored_keyring(keys.alice, keys.bob, keys.rsa)
    assert ring.count(b"-----BEGIN PGP PUBLIC KEY BLOCK-----") == 1
    with temporary_home() as home:
        out = gpg(home, "--no-autostart", "--status-fd", "1", "--import", input=ring).stdout
    ok = [r[2] for r in parse_status(out) if r[0] == "IMPORT_OK"]
    assert sorted(ok) == sorted(k.fingerprint for k in (keys.alice, keys.bob, keys.rsa))


def test_signatures_are_binary(keys: Keys) -> None:
    sig = sign_detached(keys.alice, DATA)
    assert sig[0] & 0x80 and not sig.startswith(b"-----")
    assert b"BEGIN PGP" not in sig


# ---------------------------------------------------------------- one signature


def test_good_signature_by_primary(keys: Keys) -> None:
    rc, st = verify_status([keys.alice], sign_detached(keys.alice, DATA), DATA)
    assert rc == 0
    [b] = blocks(st)
    assert kinds(b) == ["GOODSIG", "VALIDSIG"]
    assert one(b, "GOODSIG")[0] == long_id(keys.alice.fingerprint)
    v = one(b, "VALIDSIG")
    assert v[V_SIGNER] == v[V_PRIMARY] == keys.alice.fingerprint
    assert v[V_HASH] == HASH_SHA256
    assert v[V_CLASS] == "00"
    assert v[V_EXPIRE] == "0"
    assert v[V_PKALGO] == "22"  # EdDSA


@pytest.mark.parametrize("index", [0, 1])
def test_good_signature_by_subkey(keys: Keys, index: int) -> None:
    sub = keys.alice.subkeys[index]
    rc, st = verify_status([keys.alice], sign_detached(keys.alice, DATA, subkey=sub), DATA)
    assert rc == 0
    [b] = blocks(st)
    assert kinds(b) == ["GOODSIG", "VALIDSIG"]
    assert one(b, "GOODSIG")[0] == long_id(sub)
    v = one(b, "VALIDSIG")
    assert v[V_SIGNER] == sub
    assert v[V_PRIMARY] == keys.alice.fingerprint


def test_key_sharing_a_home_signs_with_its_own_key(keys: Keys) -> None:
    rc, st = verify_status([keys.alice, keys.bob], sign_detached(keys.bob, DATA), DATA)
    assert rc == 0
    assert one(blocks(st)[0], "VALIDSIG")[V_PRIMARY] == keys.bob.fingerprint


def test_expired_key(keys: Keys) -> None:
    rc, st = verify_status([keys.expired], sign_detached(keys.expired, DATA), DATA)
    assert rc == 0  # gpg behaviour: exit code 0 -- only the status line tells
    [b] = blocks(st)
    assert kinds(b) == ["EXPKEYSIG", "VALIDSIG"]
    assert "KEYEXPIRED" in [r[0] for r in b]
    assert one(b, "VALIDSIG")[V_PRIMARY] == keys.expired.fingerprint


def test_revoked_key(keys: Keys) -> None:
    rc, st = verify_status([keys.revoked], sign_detached(keys.revoked, DATA), DATA)
    assert rc == 0  # gpg behaviour: exit code 0 -- only the status line tells
    [b] = blocks(st)
    assert kinds(b) == ["REVKEYSIG", "VALIDSIG"]
    assert one(b, "VALIDSIG")[V_PRIMARY] == keys.revoked.fingerprint


def test_revoked_subkey(keys: Keys) -> None:
    k = keys.revsub
    rc, st = verify_status([k], sign_detached(k, DATA, subkey=k.subkeys[0]), DATA)
    assert rc == 0
    [b] = blocks(st)
    assert kinds(b) == ["REVKEYSIG", "VALIDSIG"]
    assert one(b, "REVKEYSIG")[0] == long_id(k.subkeys[0])
    v = one(b, "VALIDSIG")
    assert (v[V_SIGNER], v[V_PRIMARY]) == (k.subkeys[0], k.fingerprint)
    # the primary key itself is still good
    rc, st = verify_status([k], sign_detached(k, DATA), DATA)
    assert rc == 0 and kinds(blocks(st)[0]) == ["GOODSIG", "VALIDSIG"]


def test_revocation_only_in_the_public_key(keys: Keys) -> None:
    """Without the revocation (the signing home's own export) the same signature is good."""
    stripped = gpg(keys.revoked.home, "--export", keys.revoked.fingerprint).stdout
    sig = sign_detached(keys.revoked, DATA)
    with temporary_home() as home:
        gpg(home, "--no-autostart", "--import", input=stripped)
        (home / "s").write_bytes(sig)
        (home / "d").write_bytes(DATA)
        out = gpg(
            home, "--trust-model", "always", "--status-fd", "1",
            "--verify", str(home / "s"), str(home / "d"),
        ).stdout  # fmt: skip
    assert kinds(blocks(parse_status(out))[0]) == ["GOODSIG", "VALIDSIG"]


def test_expired_signature(keys: Keys) -> None:
    sig = sign_detached(keys.alice, DATA, expired_signature=True)
    rc, st = verify_status([keys.alice], sig, DATA)
    assert rc == 1
    [b] = blocks(st)
    assert kinds(b) == ["EXPSIG", "VALIDSIG"]
    v = one(b, "VALIDSIG")
    assert 0 < int(v[V_EXPIRE]) < time.time()
    assert v[V_PRIMARY] == keys.alice.fingerprint


@pytest.mark.parametrize("which", ["alice", "rsa"])
def test_sha1_signature_is_accepted_by_default(keys: Keys, which: str) -> None:
    key: Key = getattr(keys, which)
    sig = sign_detached(key, DATA, digest_algo="SHA1")
    rc, st = verify_status([key], sig, DATA)
    assert rc == 0  # gpg 2.2 accepts SHA-1: the verifier must check the VALIDSIG hash field
    [b] = blocks(st)
    assert kinds(b) == ["GOODSIG", "VALIDSIG"]
    assert one(b, "VALIDSIG")[V_HASH] == HASH_SHA1


def test_sha1_rejected_with_weak_digest(keys: Keys) -> None:
    sig = sign_detached(keys.rsa, DATA, digest_algo="SHA1")
    rc, st = verify_status([keys.rsa], sig, DATA, "--weak-digest", "SHA1")
    assert rc == 2
    [b] = blocks(st)
    assert kinds(b) == ["ERRSIG"]
    e = one(b, "ERRSIG")
    assert (e[2], e[5], e[6]) == (HASH_SHA1, "5", keys.rsa.fingerprint)  # rc 5: bad digest algo


def test_rsa_and_sha512(keys: Keys) -> None:
    rc, st = verify_status([keys.rsa], sign_detached(keys.rsa, DATA), DATA)
    assert rc == 0 and one(blocks(st)[0], "VALIDSIG")[V_PKALGO] == "1"
    rc, st = verify_status(
        [keys.alice], sign_detached(keys.alice, DATA, digest_algo="SHA512"), DATA
    )
    assert rc == 0 and one(blocks(st)[0], "VALIDSIG")[V_HASH] == HASH_SHA512


def test_unknown_key(keys: Keys) -> None:
    rc, st = verify_status([keys.alice], sign_detached(keys.stranger, DATA), DATA)
    assert rc == 2
    [b] = blocks(st)
    assert kinds(b) == ["ERRSIG", "NO_PUBKEY"]
    e = one(b, "ERRSIG")
    assert e[0] == long_id(keys.stranger.fingerprint)
    assert e[5] == "9"  # rc 9: no public key
    assert e[6] == keys.stranger.fingerprint  # issuer fingerprint subpacket


def test_modified_data_is_badsig(keys: Keys) -> None:
    sig = sign_detached(keys.alice, DATA)
    changed = bytes([DATA[0] ^ 1]) + DATA[1:]
    rc, st = verify_status([keys.alice], sig, changed)
    assert rc == 1
    [b] = blocks(st)
    assert kinds(b) == ["BADSIG"]
    assert one(b, "BADSIG")[0] == long_id(keys.alice.fingerprint)


def test_corrupted_signature_is_badsig(keys: Keys) -> None:
    sig = bytearray(sign_detached(keys.alice, DATA))
    sig[-5] ^= 1
    rc, st = verify_status([keys.alice], bytes(sig), DATA)
    assert rc == 1
    assert kinds(blocks(st)[0]) == ["BADSIG"]


# ---------------------------------------------------------------- several signatures in one blob


def test_concatenated_good_signatures_are_all_reported_in_order(keys: Keys) -> None:
    a, r = sign_detached(keys.alice, DATA), sign_detached(keys.rsa, DATA)
    rc, st = verify_status([keys.alice, keys.rsa], a + r + a, DATA)
    assert rc == 0
    bs = blocks(st)
    assert [kinds(b) for b in bs] == [["GOODSIG", "VALIDSIG"]] * 3
    assert [one(b, "VALIDSIG")[V_PRIMARY] for b in bs] == [
        keys.alice.fingerprint, keys.rsa.fingerprint, keys.alice.fingerprint,
    ]  # fmt: skip


def test_batch_stops_at_first_bad_or_expired_signature(keys: Keys) -> None:
    """gpg behaviour: with --batch, BADSIG/EXPSIG end the verification; later sigs are unseen."""
    good = sign_detached(keys.rsa, DATA)
    bad = sign_detached(keys.alice, DATA + b"x")
    rc, st = verify_status([keys.alice, keys.rsa], bad + good, DATA)
    assert rc == 1
    assert [kinds(b) for b in blocks(st)] == [["BADSIG"]]

    rc, st = verify_status([keys.alice, keys.rsa], good + bad + good, DATA)
    assert rc == 1
    assert [kinds(b) for b in blocks(st)] == [["GOODSIG", "VALIDSIG"], ["BADSIG"]]

    expsig = sign_detached(keys.alice, DATA, expired_signature=True)
    rc, st = verify_status([keys.alice, keys.rsa], expsig + good, DATA)
    assert rc == 1
    assert [kinds(b) for b in blocks(st)] == [["EXPSIG", "VALIDSIG"]]


def test_unknown_key_expired_key_revoked_key_do_not_stop(keys: Keys) -> None:
    good = sign_detached(keys.rsa, DATA)
    pub = [keys.rsa, keys.expired, keys.revoked]
    unknown = sign_detached(keys.stranger, DATA)
    rc, st = verify_status(pub, unknown + good, DATA)
    assert rc == 2
    assert [kinds(b) for b in blocks(st)] == [["ERRSIG", "NO_PUBKEY"], ["GOODSIG", "VALIDSIG"]]
    rc, st = verify_status(pub, good + unknown, DATA)
    assert rc == 2
    assert [kinds(b) for b in blocks(st)] == [["GOODSIG", "VALIDSIG"], ["ERRSIG", "NO_PUBKEY"]]
    rc, st = verify_status(
        pub, sign_detached(keys.expired, DATA) + sign_detached(keys.revoked, DATA) + good, DATA
    )
    assert rc == 0
    assert [kinds(b) for b in blocks(st)] == [
        ["EXPKEYSIG", "VALIDSIG"], ["REVKEYSIG", "VALIDSIG"], ["GOODSIG", "VALIDSIG"],
    ]  # fmt: skip


def test_trailing_garbage_after_good_signature(keys: Keys) -> None:
    rc, st = verify_status([keys.alice], sign_detached(keys.alice, DATA) + b"\x00junk", DATA)
    assert rc == 2
    assert ["NODATA", "3"] in st
    assert [kinds(b) for b in blocks(st)] == [["GOODSIG", "VALIDSIG"]]


def test_not_a_signature(keys: Keys) -> None:
    for blob in (b"", b"garbage"):
        rc, st = verify_status([keys.alice], blob, DATA)
        assert rc == 2
        assert blocks(st) == []


# ---------------------------------------------------------------- keyring file instead of import


def test_binary_keyring_without_import(keys: Keys) -> None:
    sigs = sign_detached(keys.alice, DATA) + sign_detached(keys.rsa, DATA)
    rc, st = verify_status([keys.alice, keys.rsa], sigs, DATA, keyring=True)
    assert rc == 0
    assert [one(b, "VALIDSIG")[V_PRIMARY] for b in blocks(st)] == [
        keys.alice.fingerprint, keys.rsa.fingerprint,
    ]  # fmt: skip
    rc, st = verify_status([keys.revoked], sign_detached(keys.revoked, DATA), DATA, keyring=True)
    assert kinds(blocks(st)[0]) == ["REVKEYSIG", "VALIDSIG"]


def test_keyring_verify_writes_nothing_and_starts_no_daemon(keys: Keys) -> None:
    sig = sign_detached(keys.alice, DATA)
    with temporary_home() as tmp:
        home = tmp / "h"
        home.mkdir(mode=0o700)
        ring, sig_path, data_path = tmp / "k.gpg", tmp / "s", tmp / "d"
        ring.write_bytes(binary_keyring(keys.alice))
        sig_path.write_bytes(sig)
        data_path.write_bytes(DATA)
        home.chmod(0o500)
        tmp.chmod(0o500)
        try:
            proc = subprocess.run(
                [
                    "gpg", "--homedir", str(home), "--no-options", "--batch", "--no-tty",
                    "--no-default-keyring", "--keyring", str(ring), "--trust-model", "always",
                    "--no-autostart", "--disable-dirmngr", "--no-auto-key-retrieve",
                    "--status-fd", "1", "--verify", str(sig_path), str(data_path),
                ],
                capture_output=True, env=gpg_env(), check=False,
            )  # fmt: skip
            assert list(home.iterdir()) == []
            assert sorted(p.name for p in tmp.iterdir()) == ["d", "h", "k.gpg", "s"]
        finally:
            tmp.chmod(0o700)
            home.chmod(0o700)
    assert proc.returncode == 0, proc.stderr
    assert kinds(blocks(parse_status(proc.stdout))[0]) == ["GOODSIG", "VALIDSIG"]


def test_armored_keyring_file_is_not_usable_with_keyring_option(keys: Keys) -> None:
    with temporary_home() as home:
        ring = Path(f"{home}.asc")
        try:
            ring.write_bytes(public_armored(keys.alice))
            (home / "s").write_bytes(sign_detached(keys.alice, DATA))
            (home / "d").write_bytes(DATA)
            proc = gpg(
                home, "--no-default-keyring", "--keyring", str(ring), "--no-autostart",
                "--trust-model", "always", "--status-fd", "1",
                "--verify", str(home / "s"), str(home / "d"), check=False,
            )  # fmt: skip
        finally:
            os.unlink(ring)
    assert proc.returncode == 2
    assert kinds(blocks(parse_status(proc.stdout))[0]) == ["ERRSIG", "NO_PUBKEY"]


def test_keyring_first_copy_wins_but_import_merges(keys: Keys) -> None:
    """gpg behaviour: with --keyring, two copies of one key do not merge; with --import they do."""
    stripped = Key(
        name="revoked",
        home=keys.revoked.home,
        fingerprint=keys.revoked.fingerprint,
        public_binary=gpg(keys.revoked.home, "--export", keys.revoked.fingerprint).stdout,
    )
    sig = sign_detached(keys.revoked, DATA)

    def verdict(order: list[Key], keyring: bool) -> str:
        _, st = verify_status(order, sig, DATA, keyring=keyring)
        return kinds(blocks(st)[0])[0]

    assert verdict([stripped, keys.revoked], keyring=True) == "GOODSIG"
    assert verdict([keys.revoked, stripped], keyring=True) == "REVKEYSIG"
    assert verdict([stripped, keys.revoked], keyring=False) == "REVKEYSIG"
    assert verdict([keys.revoked, stripped], keyring=False) == "REVKEYSIG"
