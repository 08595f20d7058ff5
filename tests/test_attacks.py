"""DESIGN §6, rule by rule, from the attacker's side.

The attacker can write anything into refs/notes/wotr and any file in the repository, but holds
no trusted private key. Each test sets up a situation that a missing rule would turn into a
false "verified": removing the rule makes the test fail.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from testing import gpgkeys, sim
from wotr import claim as claim_mod

APP = b"release bytes\n"


def add_lines(world: sim.World, commit: str, *lines: bytes) -> None:
    old = sim.read_note(world.repo, commit)
    sim.write_note(world.repo, commit, old + b"".join(ln.rstrip(b"\n") + b"\n" for ln in lines))


def verify_json(world: sim.World, *args: str | Path, threshold: int = 2) -> tuple[int, Any]:
    res = world.verify("--json", "--threshold", str(threshold), *args)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def reasons(doc: Any) -> str:
    return " | ".join(r["reason"] for r in doc["rejected"])


def party(
    world: sim.World, name: str, key: gpgkeys.Key, roles: tuple[str, ...] | None = None
) -> None:
    world.parties[name] = sim.Party(name, key, roles)


# --- rule 1: isolated GnuPG home ------------------------------------------------------------------


def test_user_keyring_cannot_unrevoke_a_key(world: sim.World, keys: Any) -> None:
    """The policy's key file carries a revocation; the user's own keyring has the key unrevoked."""
    rev = keys.get("rev", revoked=True)
    party(world, "rev", rev)
    world.policy(2, ["alice", "rev"])
    head = world.head()
    add_lines(world, head, sim.envelope_line(rev, world.claim({"app.tar.gz": APP})))
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    # The user's GNUPGHOME is the revoked key's own home: there the key is NOT revoked.
    res = world.run(
        "verify",
        "--json",
        "--policy",
        world.policy_dir / "threshold.toml",
        world.root / "dist" / "app.tar.gz",
        env={"GNUPGHOME": str(rev.home)},
    )
    doc = json.loads(res.stdout)
    assert res.returncode == 1
    assert doc["artifacts"][0]["signers"] == ["alice"]
    assert "revoked" in reasons(doc)


def test_poisoned_gpg_conf_is_ignored(world: sim.World, keys: Any, short_tmp: Path) -> None:
    """A user gpg.conf that trusts an attacker keyring and weak digests changes nothing."""
    mallory = keys.get("mallory")
    home = short_tmp / "userhome"
    home.mkdir(mode=0o700)
    (short_tmp / "mallory.gpg").write_bytes(gpgkeys.public_binary(mallory))
    (home / "gpg.conf").write_text(
        f"keyring {short_tmp / 'mallory.gpg'}\ntrust-model always\nallow-weak-digest-algos\n"
        f"trusted-key {mallory.fingerprint[-16:]}\n"
    )
    world.policy(2)
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    line = sim.envelope_line(
        world.parties["bob"].key, world.claim({"app.tar.gz": APP}), digest_algo="SHA1"
    )
    add_lines(
        world, world.head(), line, sim.envelope_line(mallory, world.claim({"app.tar.gz": APP}))
    )
    res = world.run(
        "verify",
        "--json",
        "--policy",
        world.policy_dir / "threshold.toml",
        world.root / "dist" / "app.tar.gz",
        env={"GNUPGHOME": str(home)},
    )
    doc = json.loads(res.stdout)
    assert res.returncode == 1, res.stderr
    assert doc["artifacts"][0]["signers"] == ["alice"]


# --- rule 2: the signer is the primary fingerprint; people are counted once ----------------------


def test_two_subkeys_of_one_signer_count_once(world: sim.World, keys: Any) -> None:
    dave = keys.get("dave", signing_subkeys=2)
    party(world, "dave", dave)
    world.policy(2, ["alice", "dave"])
    claim = world.claim({"app.tar.gz": APP})
    add_lines(
        world,
        world.head(),
        sim.envelope_line(dave, claim, subkey=dave.subkeys[0]),
        sim.envelope_line(dave, claim, subkey=dave.subkeys[1]),
    )
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz")
    assert code == 1
    assert doc["artifacts"][0]["signers"] == ["dave"]
    # ...and one more person makes it: a subkey signature does count for its primary.
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz")
    assert code == 0, doc
    assert doc["artifacts"][0]["signers"] == ["alice", "dave"]


def test_several_keys_of_one_signer_count_once(
    world: sim.World, keys: Any, short_tmp: Path
) -> None:
    second = keys.get("alice2")
    policy = sim.write_policy(
        world.policy_dir,
        [world.parties["alice"], world.parties["bob"]],
        2,
        extra_keys={"alice": [second]},
        list_extra=True,
    )
    assert second.fingerprint in policy.read_text()
    claim = world.claim({"app.tar.gz": APP})
    add_lines(
        world,
        world.head(),
        sim.envelope_line(world.parties["alice"].key, claim),
        sim.envelope_line(second, claim),
    )
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz")
    assert code == 1
    assert doc["artifacts"][0]["signers"] == ["alice"]


def test_repeated_and_reencoded_envelopes_count_once(world: sim.World) -> None:
    world.policy(2)
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    line = sim.read_note(world.repo, world.head()).strip()
    doc = json.loads(line)
    reencoded = json.dumps(doc, indent=None, separators=(", ", ": "), sort_keys=True).encode()
    add_lines(world, world.head(), line, reencoded, b"  " + line)
    code, out = verify_json(world, world.root / "dist" / "app.tar.gz")
    assert code == 1
    assert out["artifacts"][0]["signers"] == ["alice"]


def test_keyid_hint_is_not_identity(world: sim.World, keys: Any) -> None:
    """An untrusted key's envelope naming a trusted fingerprint as keyid counts for nobody."""
    mallory = keys.get("mallory")
    world.policy(1)
    claim = world.claim({"app.tar.gz": APP})
    body = claim.payload()
    sig = gpgkeys.sign_detached(mallory, claim_mod.pae(body))
    forged = claim_mod.Envelope(body, sig, keyid=world.parties["alice"].fingerprint).line()
    add_lines(world, world.head(), forged)
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz", threshold=1)
    assert code == 1
    assert doc["artifacts"][0]["signers"] == []
    assert "not in the policy" in reasons(doc)


def test_keys_in_key_file_but_not_listed_never_count(world: sim.World, keys: Any) -> None:
    mallory = keys.get("mallory")
    sim.write_policy(
        world.policy_dir,
        [world.parties["alice"], world.parties["bob"]],
        2,
        extra_keys={"alice": [mallory]},
    )
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    add_lines(world, world.head(), sim.envelope_line(mallory, world.claim({"app.tar.gz": APP})))
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz")
    assert code == 1
    assert doc["artifacts"][0]["signers"] == ["alice"]
    assert mallory.fingerprint in reasons(doc)


# --- rule 3: only a clean good signature counts ---------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expect"),
    [
        ("tampered_payload", "not a valid wotr claim"),  # payload no longer canonical / bad sig
        ("flipped_sig", "bad signature"),
        ("other_payload_sig", "bad signature"),
        ("expired_key", "expired"),
        ("revoked_key", "revoked"),
        ("revoked_subkey", "revoked"),
        ("expired_signature", "expired"),
        ("unknown_key", "not in the policy"),
        ("sha1", "weak digest"),
        ("two_sigs_in_blob", "not exactly one"),
        ("armored_sig", "not an OpenPGP packet"),
    ],
)
def test_only_clean_good_signatures_count(
    world: sim.World, keys: Any, kind: str, expect: str
) -> None:
    alice = world.parties["alice"].key
    claim = world.claim({"app.tar.gz": APP})
    body = claim.payload()
    signer = {
        "expired_key": keys.get("exp", expired=True),
        "revoked_key": keys.get("rev", revoked=True),
        "revoked_subkey": keys.get("revsub", revoked_subkey=True),
        "unknown_key": keys.get("mallory"),
    }.get(kind, world.parties["bob"].key)
    if kind != "unknown_key":
        party(world, "x", signer) if signer is not world.parties["bob"].key else None
    names = ["alice", "x"] if "x" in world.parties else ["alice", "bob"]
    world.policy(2, names)
    pae = claim_mod.pae(body)
    if kind == "tampered_payload":
        sig = gpgkeys.sign_detached(signer, pae)
        evil = world.claim({"app.tar.gz": b"evil"})
        line = claim_mod.Envelope(evil.payload(), sig, signer.fingerprint).line()
        expect = "bad signature"
    elif kind == "flipped_sig":
        flipped = bytearray(gpgkeys.sign_detached(signer, pae))
        flipped[-3] ^= 0x01
        line = claim_mod.Envelope(body, bytes(flipped), signer.fingerprint).line()
    elif kind == "other_payload_sig":
        sig = gpgkeys.sign_detached(signer, claim_mod.pae(world.claim({"x": b"y"}).payload()))
        line = claim_mod.Envelope(body, sig, signer.fingerprint).line()
    elif kind == "revoked_subkey":
        sig = gpgkeys.sign_detached(signer, pae, subkey=signer.revoked_subkeys[0])
        line = claim_mod.Envelope(body, sig, signer.fingerprint).line()
    elif kind == "expired_signature":
        sig = gpgkeys.sign_detached(signer, pae, expired_signature=True)
        line = claim_mod.Envelope(body, sig, signer.fingerprint).line()
    elif kind == "sha1":
        sig = gpgkeys.sign_detached(signer, pae, digest_algo="SHA1")
        line = claim_mod.Envelope(body, sig, signer.fingerprint).line()
    elif kind == "two_sigs_in_blob":
        sig = gpgkeys.sign_detached(signer, pae) + gpgkeys.sign_detached(alice, pae)
        line = claim_mod.Envelope(body, sig, signer.fingerprint).line()
    elif kind == "armored_sig":
        raw = gpgkeys.sign_detached(signer, pae)
        armored = (
            b"-----BEGIN PGP SIGNATURE-----\n\n"
            + base64.encodebytes(raw)
            + b"-----END PGP SIGNATURE-----\n"
        )
        line = claim_mod.Envelope(body, armored, signer.fingerprint).line()
    else:
        line = sim.envelope_line(signer, claim)
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    add_lines(world, world.head(), line)
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz")
    assert code == 1, doc
    assert doc["artifacts"][0]["signers"] == ["alice"]
    assert expect in reasons(doc), reasons(doc)


def test_expired_key_signature_counts_with_a_valid_key(world: sim.World) -> None:
    """Control for the parametrized test: the same construction with a good key passes."""
    world.policy(2, ["alice", "bob"])
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    add_lines(
        world,
        world.head(),
        sim.envelope_line(world.parties["bob"].key, world.claim({"app.tar.gz": APP})),
    )
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz")
    assert code == 0, doc
    assert doc["artifacts"][0]["signers"] == ["alice", "bob"]


def test_key_with_an_old_expired_subkey_still_counts(world: sim.World, keys: Any) -> None:
    """Availability: rotating subkeys must not make an honest signer's primary key useless."""
    import time

    key = gpgkeys.make_key("rotated")
    past = int(time.time()) - 20 * 86400
    gpgkeys.gpg(
        key.home,
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--faked-system-time",
        f"{past}!",
        "--quick-add-key",
        key.fingerprint,
        "ed25519",
        "sign",
        "1d",
    )
    public = gpgkeys.gpg(key.home, "--armor", "--export", key.fingerprint).stdout
    try:
        party(world, "rotated", key)
        policy = world.policy(2, ["alice", "rotated"])
        (policy.parent / "keys" / "rotated.asc").write_bytes(public)
        world.sign("alice", world.root / "dist" / "app.tar.gz")
        add_lines(world, world.head(), sim.envelope_line(key, world.claim({"app.tar.gz": APP})))
        code, doc = verify_json(world, world.root / "dist" / "app.tar.gz")
        assert code == 0, reasons(doc)
    finally:
        gpgkeys.remove_home(key.home)


def test_stripped_copy_of_a_key_cannot_hide_its_revocation(world: sim.World, keys: Any) -> None:
    """A key file with an unrevoked copy first and the revoked copy second: still revoked."""
    rev = keys.get("rev", revoked=True)
    party(world, "rev", rev)
    policy = world.policy(2, ["alice", "rev"])
    unrevoked = gpgkeys.gpg(rev.home, "--armor", "--export", rev.fingerprint).stdout
    keyfile = policy.parent / "keys" / "rev.asc"
    keyfile.write_bytes(unrevoked + gpgkeys.public_armored(rev))
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    add_lines(world, world.head(), sim.envelope_line(rev, world.claim({"app.tar.gz": APP})))
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz")
    assert code == 1, doc
    assert "revoked" in reasons(doc)


# --- rule 4: a claim counts only on its own commit and tree ---------------------------------------


def test_claim_copied_to_another_commit_counts_for_nothing(world: sim.World) -> None:
    world.policy(2)
    old = world.head()
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    world.sign("bob", world.root / "dist" / "app.tar.gz")
    new = sim.commit(world.repo, "next")
    sim.write_note(world.repo, new, sim.read_note(world.repo, old))
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz")
    assert code == 1
    assert doc["artifacts"][0]["signers"] == []
    assert "not this commit" in reasons(doc)
    code, _ = verify_json(world, "--rev", old, world.root / "dist" / "app.tar.gz")
    assert code == 0


def test_copied_claims_are_refused_before_any_signature_work(world: sim.World, keys: Any) -> None:
    """Rule 4 is decided from the payload alone: a flood of copied claims costs no gpg call."""
    world.policy(1)
    old = world.head()
    claim = world.claim({"app.tar.gz": APP})
    sim.commit(world.repo, "next")
    add_lines(world, world.head(), sim.envelope_line(keys.get("mallory"), claim))
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz", threshold=1)
    assert code == 1
    assert doc["rejected"][0]["reason"].startswith(f"claim is for commit {old[:12]}")
    assert doc["rejected"][0]["fingerprint"] is None  # no signature was checked


def test_claim_with_wrong_tree_counts_for_nothing(world: sim.World) -> None:
    world.policy(2)
    old_tree = world.tree()
    sim.commit(world.repo, "next")
    claim = world.claim({"app.tar.gz": APP}, tree=old_tree)
    add_lines(
        world,
        world.head(),
        *(sim.envelope_line(world.parties[n].key, claim) for n in ("alice", "bob")),
    )
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz")
    assert code == 1
    assert "tree" in reasons(doc)


# --- rule 5: roles --------------------------------------------------------------------------------


def test_role_not_granted_does_not_count(short_tmp: Path, keys: Any) -> None:
    world = sim.make_world(
        short_tmp,
        keys={n: keys.get(n) for n in ("alice", "bob", "carol")},
        roles={"alice": ("author",), "bob": ("reviewer",), "carol": ("ci",)},
    )
    art = world.artifact("app.tar.gz", APP)
    world.policy(2, require={"ci": 1})
    world.sign("alice", art, role="author")
    world.sign("bob", art, role="ci")  # bob is not CI
    code, doc = verify_json(world, art)
    assert code == 1
    assert "may not claim role 'ci'" in reasons(doc)
    world.sign("bob", art, role="reviewer")
    code, doc = verify_json(world, art)
    assert code == 1  # threshold met (alice, bob) but no CI signer
    assert "role 'ci'" in doc["artifacts"][0]["reason"]
    world.sign("carol", art, role="ci")
    code, doc = verify_json(world, art)
    assert code == 0, doc


# --- rule 6: a tag counts only claims naming it ---------------------------------------------------


def test_moved_tag_fails(world: sim.World) -> None:
    world.policy(2)
    art = world.root / "dist" / "app.tar.gz"
    old = world.head()
    world.sign("alice", art)
    world.sign("bob", art)  # claims on the old commit, made for no tag
    sim.commit(world.repo, "v1")
    sim.git(world.repo, "tag", "-a", "v1.0", "-m", "release")
    world.sign("alice", art, rev="v1.0")
    world.sign("bob", art, rev="v1.0")
    code, _ = verify_json(world, "--rev", "v1.0", art)
    assert code == 0
    # the attacker moves the tag to the old commit, which has claims of its own
    sim.git(world.repo, "tag", "-f", "-a", "v1.0", "-m", "moved", old)
    code, doc = verify_json(world, "--rev", "v1.0", art)
    assert code == 1
    assert "not refs/tags/v1.0" in reasons(doc)


def test_claims_for_other_tag_do_not_count(world: sim.World) -> None:
    world.policy(2)
    art = world.root / "dist" / "app.tar.gz"
    sim.git(world.repo, "tag", "v0.9")
    sim.git(world.repo, "tag", "v1.0")
    world.sign("alice", art, rev="v0.9")
    world.sign("bob", art, rev="v0.9")
    code, doc = verify_json(world, "--rev", "v1.0", art)
    assert code == 1
    code, doc = verify_json(world, "--rev", "v0.9", art)
    assert code == 0, doc
    # by commit id, claims made for any tag count: they are claims about this commit
    code, doc = verify_json(world, "--rev", world.head(), art)
    assert code == 0, doc


# --- rule 7: one signer, two digests for one name -------------------------------------------------


def test_signer_with_two_digests_for_one_name_counts_for_neither(world: sim.World) -> None:
    world.policy(2)
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    world.sign("bob", art)
    code, _ = verify_json(world, art)
    assert code == 0
    other = world.root / "other"
    other.mkdir()
    (other / "app.tar.gz").write_bytes(b"something else")
    world.sign("alice", other / "app.tar.gz")
    code, doc = verify_json(world, art)
    assert code == 1
    assert doc["artifacts"][0]["signers"] == ["bob"]
    assert doc["conflicts"][0]["signer"] == "alice"
    code, doc = verify_json(world, other / "app.tar.gz", threshold=1)
    assert code == 1


# --- rule 8: hostile notes ------------------------------------------------------------------------


def test_garbage_cannot_hide_valid_claims(world: sim.World) -> None:
    world.policy(2)
    art = world.root / "dist" / "app.tar.gz"
    for name in ("alice", "bob", "carol"):
        world.sign(name, art)
    valid = sim.read_note(world.repo, world.head())
    claim = world.claim({"app.tar.gz": APP})
    alice = world.parties["alice"].fingerprint
    junk = [
        b"\x00\xff\xfe garbage",
        b"{" * 100_000,  # deep nesting
        b"[" * 5000 + b"]" * 5000,
        b'{"payloadType":"application/vnd.in-toto+json"}',
        b"x" * (2 * 1024 * 1024),
        json.dumps(
            {
                "payloadType": "application/vnd.in-toto+json",
                "payload": base64.b64encode(claim.payload()).decode(),
                "signatures": [{"keyid": alice, "sig": "AAAA"}],
            }
        ).encode(),
    ]
    # many envelopes over the valid payload, naming alice, carrying junk signature packets
    fake_sig = b"\x88\x5e\x04\x00\x16\x08" + bytes(88)
    for i in range(200):
        junk.append(
            claim_mod.Envelope(claim.payload(), fake_sig + bytes([i]), alice).line().rstrip(b"\n")
        )
    sim.write_note(
        world.repo,
        world.head(),
        b"\n".join(junk[:100]) + b"\n" + valid + b"\n".join(junk[100:]) + b"\r\n\n\n",
    )
    code, doc = verify_json(world, art)
    assert code == 0, reasons(doc)[:2000]
    assert doc["artifacts"][0]["signers"] == ["alice", "bob", "carol"]
    assert len(doc["rejected"]) >= 200


def test_huge_note_is_refused_not_fatal(world: sim.World) -> None:
    from wotr import notes

    world.policy(1)
    sim.write_note(world.repo, world.head(), b"x" * (notes.MAX_NOTE_BYTES + 1))
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz", threshold=1)
    assert code == 1
    assert "limit" in reasons(doc)


def test_verify_never_writes(world: sim.World) -> None:
    world.policy(2)
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    add_lines(world, world.head(), b"garbage")
    before = sim.notes_tip(world.repo)
    verify_json(world, world.root / "dist" / "app.tar.gz")
    world.run("show", "--policy", world.policy_dir / "threshold.toml")
    assert sim.notes_tip(world.repo) == before


@pytest.mark.parametrize(
    "spelling",
    [
        "v1.0^{}",
        "v1.0^0",
        "v1.0~0",
        "v1.0^{commit}",
        "refs/tags/v1.0^{}",
        "v1.0^{}~0^0",
        "tags/v1.0^0",
        "v1.0^{/}",  # the newest commit from the tag whose message matches: the tagged one
    ],
)
def test_peeled_spellings_of_a_moved_tag_still_fail(world: sim.World, spelling: str) -> None:
    """Rule 6 holds however the tag is spelled: peeling does not turn it into a plain commit."""
    world.policy(2)
    art = world.root / "dist" / "app.tar.gz"
    sim.git(world.repo, "tag", "v0.9")
    world.sign("alice", art, rev="v0.9")
    world.sign("bob", art, rev="v0.9")
    sim.git(world.repo, "tag", "-a", "v1.0", "-m", "moved here by the attacker")
    code, doc = verify_json(world, "--rev", spelling, art)
    assert code == 1, doc
    assert doc["tag"] == "refs/tags/v1.0"
    code, _ = verify_json(world, "--rev", "v0.9^{}", art)
    assert code == 0


@pytest.mark.parametrize("tag", ["v1.0", "pkg@1.0.0", "rel{1}"])
@pytest.mark.parametrize("other", ["refs/heads/", "refs/remotes/origin/", "refs/"])
def test_a_ref_named_like_a_moved_tag_does_not_switch_off_rule_6(
    world: sim.World, other: str, tag: str
) -> None:
    """A moved tag plus a branch (e.g. the remote's default branch after a clone) of the same
    name: git names no ref for the ambiguous name, yet resolves it to the tag. Refused, never
    counted as a plain commit — also for tag names holding '@', '{' or '}'."""
    world.policy(2)
    art = world.root / "dist" / "app.tar.gz"
    sim.git(world.repo, "tag", "v0.9")
    world.sign("alice", art, rev="v0.9")
    world.sign("bob", art, rev="v0.9")
    sim.git(world.repo, "tag", "-a", tag, "-m", "moved here by the attacker")
    sim.commit(world.repo, "later")
    sim.git(world.repo, "update-ref", other + tag, "HEAD")
    for spelling in (tag, tag + "^{}", tag + "^{/}"):
        if other == "refs/" and spelling.endswith("^{/}"):
            # git starts from refs/<tag> (it comes before refs/tags/ in git's lookup order),
            # whose commit carries no claims: not verified either way
            code, doc = verify_json(world, "--rev", spelling, art)
            assert code == 1, doc
            continue
        if other.startswith("refs/remotes/") or spelling.endswith("^{/}"):
            # no ambiguity for git, or a spelling that starts at the tag: the tag counts
            code, doc = verify_json(world, "--rev", spelling, art)
            assert code == 1 and doc["tag"] == f"refs/tags/{tag}", (spelling, doc)
            continue
        res = world.verify("--rev", spelling, art)
        assert res.returncode == 2, res.stdout + res.stderr
        assert "names a tag and another ref" in res.stderr
    code, doc = verify_json(world, "--rev", f"refs/tags/{tag}", art)
    assert code == 1 and doc["tag"] == f"refs/tags/{tag}"
    code, _ = verify_json(world, "--rev", "v0.9", art)
    assert code == 0


@pytest.mark.parametrize("spelling", ["HEAD..v1.0", "..v1.0", "v1.0..v1.0", "v1.0...HEAD"])
def test_a_range_is_not_a_revision(world: sim.World, spelling: str) -> None:
    world.policy(2)
    sim.git(world.repo, "tag", "v1.0")
    res = world.verify("--rev", spelling, world.root / "dist" / "app.tar.gz")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "not one revision" in res.stderr or "unknown revision" in res.stderr


def test_flood_of_untrusted_or_repeated_signatures_costs_no_gpg_call(
    world: sim.World, keys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 8: signatures whose issuer is no policy key, and repeats, never reach gpg; the
    number of signatures by policy keys that reach gpg is capped (fail closed beyond it)."""
    from wotr import verify as verify_mod
    from wotr.policy import load

    world.policy(2)
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    world.sign("bob", art)
    claim = world.claim({"app.tar.gz": APP})
    mallory = keys.get("mallory")
    foreign = gpgkeys.sign_detached(mallory, claim_mod.pae(claim.payload()))
    good = sim.read_note(world.repo, world.head())
    alice_line = good.splitlines()[0]
    doc = json.loads(alice_line)
    flood = [claim_mod.Envelope(claim.payload(), foreign, f"k{i}").line() for i in range(300)]
    repeats = [
        json.dumps({**doc, "signatures": [{**doc["signatures"][0], "keyid": f"r{i}"}]}).encode()
        for i in range(300)
    ]
    sim.write_note(world.repo, world.head(), good + b"".join(flood) + b"\n".join(repeats))
    calls: list[int] = []
    from wotr import gpg as gpg_mod

    real_run = gpg_mod.Verifier._run

    def counting_run(self: Any, *a: Any, **kw: Any) -> Any:
        calls.append(1)
        return real_run(self, *a, **kw)

    policy = load(world.policy_dir / "threshold.toml")
    ctx = verify_mod.Context(world.head(), world.tree(), None)
    monkeypatch.setattr(gpg_mod.Verifier, "_run", counting_run)
    report = verify_mod.evaluate(
        policy, sim.read_note(world.repo, world.head()), ctx, None, strict=False
    )
    assert report.result is not None and report.result.verified
    assert len(calls) <= 2  # the two honest signatures, in one or two chains
    reasons_ = [r.reason for r in report.result.rejected]
    assert sum("not in the policy" in r for r in reasons_) == 300
    assert sum("the same signature as line" in r for r in reasons_) == 300


def test_a_note_of_only_foreign_signatures_starts_no_gpg_home(
    world: sim.World, keys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 8 offline: when no signature passes the issuer gate, no isolated gpg home is made
    (with a policy whose key files repeat a key, making one runs gpg --import: a flood of
    bundles of made-up commits used to pay that once per commit)."""
    from wotr import gpg as gpg_mod
    from wotr import verify as verify_mod
    from wotr.policy import load

    world.policy(2)
    claim = world.claim({"app.tar.gz": APP})
    foreign = gpgkeys.sign_detached(keys.get("mallory"), claim_mod.pae(claim.payload()))
    note = b"".join(claim_mod.Envelope(claim.payload(), foreign, f"k{i}").line() for i in range(20))
    made: list[int] = []
    real_init = gpg_mod.Verifier.__init__

    def counting_init(self: Any, *a: Any, **kw: Any) -> None:
        made.append(1)
        real_init(self, *a, **kw)

    monkeypatch.setattr(gpg_mod.Verifier, "__init__", counting_init)
    policy = load(world.policy_dir / "threshold.toml")
    ctx = verify_mod.Context(world.head(), world.tree(), None)
    report = verify_mod.evaluate(policy, note, ctx, None, strict=False)
    assert report.result is not None and not report.result.verified
    assert made == []
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    report = verify_mod.evaluate(
        policy, sim.read_note(world.repo, world.head()), ctx, None, strict=False
    )
    assert made == [1]


def test_a_flood_naming_one_key_does_not_use_up_the_other_signers_checks(
    world: sim.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 8 (found by an attacker review): forged copies of alice's claim (her issuer, a
    changed signature value: no private key needed), placed first in the note, used to spend
    the whole per-commit budget of gpg checks so that bob's and carol's real claims were never
    checked. Checks are now taken one issuer key in turn."""
    from wotr import verify as verify_mod
    from wotr.policy import load

    world.policy(2)
    art = world.root / "dist" / "app.tar.gz"
    for name in ("alice", "bob", "carol"):
        world.sign(name, art)
    honest = sim.read_note(world.repo, world.head()).splitlines(keepends=True)
    doc = json.loads(honest[0])
    sig = base64.b64decode(doc["signatures"][0]["sig"])
    forged = []
    for i in range(40):
        tail = bytes(b ^ m for b, m in zip(sig[-4:], (i + 1).to_bytes(4, "big"), strict=True))
        bad = {**doc["signatures"][0], "sig": base64.b64encode(sig[:-4] + tail).decode()}
        forged.append(json.dumps({**doc, "signatures": [bad]}).encode() + b"\n")
    monkeypatch.setattr(verify_mod, "MAX_CHECKED_SIGNATURES", 10)
    policy = load(world.policy_dir / "threshold.toml")
    ctx = verify_mod.Context(world.head(), world.tree(), None)
    note = b"".join(forged + honest)
    report = verify_mod.evaluate(policy, note, ctx, None, strict=False)
    assert report.result is not None and report.result.verified, report.result
    assert {"bob", "carol"} <= set(report.result.artifacts[0].signers)


def test_signature_budget_fails_closed(world: sim.World, monkeypatch: pytest.MonkeyPatch) -> None:
    from wotr import verify as verify_mod
    from wotr.policy import load

    world.policy(2)
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    world.sign("bob", art)
    monkeypatch.setattr(verify_mod, "MAX_CHECKED_SIGNATURES", 1)
    policy = load(world.policy_dir / "threshold.toml")
    ctx = verify_mod.Context(world.head(), world.tree(), None)
    report = verify_mod.evaluate(
        policy, sim.read_note(world.repo, world.head()), ctx, None, strict=False
    )
    assert report.result is not None and not report.result.verified
    assert any("more than 1 signatures" in r.reason for r in report.result.rejected)


@pytest.mark.parametrize("shape", ["short", "long"])
def test_flooded_note_costs_memory_bounded_by_its_size(world: sim.World, shape: str) -> None:
    """Rule 8: 4 MiB of distinct garbage lines (tiny ones, or ones long enough to be parsed)
    next to the valid claims: still verified, and checking it allocates about the note's size
    (one object per rejected line, as before, cost ~40 times the note)."""
    import tracemalloc

    from wotr import notes
    from wotr import verify as verify_mod
    from wotr.policy import load

    world.policy(2)
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    world.sign("bob", art)
    good = sim.read_note(world.repo, world.head())
    width = 7 if shape == "short" else 300
    count = (4 << 20) // (width + 1)
    junk = b"".join(b"%0*d\n" % (width, i) for i in range(count))
    note = junk + good
    policy = load(world.policy_dir / "threshold.toml")
    ctx = verify_mod.Context(world.head(), world.tree(), None)
    tracemalloc.start()
    try:
        report = verify_mod.evaluate(policy, note, ctx, None, strict=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.result is not None and report.result.verified
    assert peak < 2 * len(note), f"{peak} bytes for a {len(note)}-byte note"
    rejected = report.result.rejected
    listed = notes.MAX_LISTED_SHORT if shape == "short" else verify_mod.MAX_LISTED_REJECTIONS
    assert len(rejected) == listed + 1
    assert f"{count - listed} more line(s)" in rejected[-1].reason
    assert report.note_lines == count + 2


def test_note_over_the_limit_counts_nothing_even_with_valid_claims(
    world: sim.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 8: a note over the size limit is refused whole, valid claims included (a limit that
    only dropped the lines past it would count whatever comes first)."""
    from wotr import git, notes
    from wotr import verify as verify_mod
    from wotr.policy import load

    world.policy(2)
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    world.sign("bob", art)
    good = sim.read_note(world.repo, world.head())
    sim.write_note(world.repo, world.head(), good + b"junk\n" * 200)
    policy = load(world.policy_dir / "threshold.toml")
    repo = git.open_repo(world.repo)
    assert verify_mod.verify_repo(repo, "HEAD", policy, artifacts=[art]).result.verified  # type: ignore[union-attr]
    monkeypatch.setattr(notes, "MAX_NOTE_BYTES", len(good) + 500)
    result = verify_mod.verify_repo(repo, "HEAD", policy, artifacts=[art]).result
    assert result is not None and not result.verified
    assert any("limit" in r.reason for r in result.rejected)


@pytest.mark.parametrize(
    ("kind", "expect"),
    [("revoked_key", "revoked"), ("revoked_subkey", "revoked"), ("expired_key", "expired")],
)
def test_taints_hold_when_many_signatures_go_through_the_keybox(
    world: sim.World, keys: Any, kind: str, expect: str
) -> None:
    """From gpg._IMPORT_AT signatures on, the policy keys are imported into a keybox instead of
    being read as a keyring: a revocation or expiry must stand there too (rule 3)."""
    from wotr import gpg

    signer = {
        "revoked_key": keys.get("rev", revoked=True),
        "revoked_subkey": keys.get("revsub", revoked_subkey=True),
        "expired_key": keys.get("exp", expired=True),
    }[kind]
    party(world, "x", signer)
    world.policy(2, ["alice", "x"])
    claim = world.claim({"app.tar.gz": APP})
    pae = claim_mod.pae(claim.payload())
    sub = signer.revoked_subkeys[0] if kind == "revoked_subkey" else None
    tainted = claim_mod.Envelope(
        claim.payload(), gpgkeys.sign_detached(signer, pae, subkey=sub), signer.fingerprint
    ).line()
    alice = world.parties["alice"].key
    honest = [sim.envelope_line(alice, claim) for _ in range(gpg._IMPORT_AT + 2)]
    add_lines(world, world.head(), b"".join(honest) + tainted)
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz")
    assert code == 1, doc
    assert doc["artifacts"][0]["signers"] == ["alice"]
    assert expect in reasons(doc), reasons(doc)
