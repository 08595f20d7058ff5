"""Withdrawn claims (DESIGN §8): real git, real gpg, the real CLI where it matters."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from testing import gpgkeys, sim
from wotr import claim as claim_mod
from wotr import git, verify
from wotr import policy as policy_mod
from wotr.withdraw import Withdrawal, parse, parse_any

DATA = b"release bytes\n"
SHA = hashlib.sha256(DATA).hexdigest()


def withdrawal_line(w: sim.World, party: str, wd: Withdrawal, sig: bytes | None = None) -> bytes:
    key = w.parties[party].key
    payload = wd.payload()
    sig = sig if sig is not None else gpgkeys.sign_detached(key, claim_mod.pae(payload))
    return claim_mod.Envelope(payload=payload, sig=sig, keyid=key.fingerprint).line()


def here(w: sim.World, *, everything: bool = False, rev: str = "HEAD") -> Withdrawal:
    commit = sim.git(w.repo, "rev-parse", f"{rev}^{{commit}}")
    subjects = () if everything else (("app.tar.gz", SHA),)
    return Withdrawal(commit, w.tree(rev), subjects, everything)


def note_of(w: sim.World, *parties: str) -> bytes:
    claim = w.claim({"app.tar.gz": DATA})
    return b"".join(sim.envelope_line(w.parties[p].key, claim) for p in parties)


def check(w: sim.World, note: bytes, threshold: int = 2) -> verify.Report:
    w.policy(threshold)
    pol = policy_mod.load(w.policy_dir / "threshold.toml")
    rev = git.resolve(git.open_repo(w.repo), "HEAD")
    ctx = verify.Context(rev.commit, rev.tree, None)
    return verify.evaluate(pol, note, ctx, None, strict=False)


def test_payload_is_canonical_and_strict(world: sim.World) -> None:
    wd = here(world)
    assert parse(wd.payload()) == wd
    assert parse_any(wd.payload()) == wd
    everything = here(world, everything=True)
    assert parse(everything.payload()) == everything
    doc = json.loads(wd.payload())
    doc["predicate"]["extra"] = 1
    with pytest.raises(claim_mod.ClaimError):
        parse(claim_mod.canonical_json(doc))
    doc = json.loads(everything.payload())
    doc["subject"] = [{"name": "app.tar.gz", "digest": {"sha256": SHA}}]  # all + subjects
    with pytest.raises(claim_mod.ClaimError):
        parse(claim_mod.canonical_json(doc))


def test_golden_withdrawal_payload() -> None:
    wd = Withdrawal("a" * 40, "b" * 40, (("app.tar.gz", "c" * 64),))
    assert wd.payload() == (
        b'{"_type":"https://in-toto.io/Statement/v1","predicate":{"all":false,"gitCommit":"'
        + b"a" * 40
        + b'","gitTree":"'
        + b"b" * 40
        + b'"},"predicateType":"https://wotr.dev/withdrawal/v1","subject":[{"digest":'
        b'{"sha256":"' + b"c" * 64 + b'"},"name":"app.tar.gz"}]}'
    )


def test_own_withdrawal_cancels_and_release_no_longer_verifies(world: sim.World) -> None:
    note = note_of(world, "alice", "bob")
    assert check(world, note).result.verified  # type: ignore[union-attr]
    report = check(world, note + withdrawal_line(world, "alice", here(world)))
    assert report.result is not None and not report.result.verified
    assert report.result.artifacts[0].signers == ("bob",)
    assert any(r.reason.startswith("withdrawn by its signer") for r in report.result.rejected)


def test_withdrawal_by_someone_else_changes_nothing(world: sim.World) -> None:
    note = note_of(world, "alice", "bob")
    note += withdrawal_line(world, "carol", here(world, everything=True))
    report = check(world, note)
    assert report.result is not None and report.result.verified
    assert report.result.artifacts[0].signers == ("alice", "bob")


def test_withdrawal_copied_to_another_commit_changes_nothing(world: sim.World) -> None:
    first = here(world)
    sim.commit(world.repo, "next", {"f": b"x"})
    claim = world.claim({"app.tar.gz": DATA})
    note = b"".join(sim.envelope_line(world.parties[p].key, claim) for p in ("alice", "bob"))
    note += withdrawal_line(world, "alice", first)  # alice's withdrawal of the previous commit
    # and one that names this commit but the old tree
    note += withdrawal_line(world, "bob", Withdrawal(world.head(), first.tree, first.subjects))
    report = check(world, note)
    assert report.result is not None and report.result.verified


def test_partial_withdrawal_keeps_other_digests(world: sim.World) -> None:
    claim = world.claim({"app.tar.gz": DATA, "other.bin": b"other"})
    note = b"".join(sim.envelope_line(world.parties[p].key, claim) for p in ("alice", "bob"))
    note += withdrawal_line(world, "alice", here(world))
    report = check(world, note)
    assert report.result is not None and not report.result.verified
    arts = {a.name: a for a in report.result.artifacts}
    assert arts["other.bin"].verified
    assert not arts["app.tar.gz"].verified


def test_forged_withdrawal_has_no_effect_when_checked(world: sim.World) -> None:
    wd = here(world, everything=True)
    good = withdrawal_line(world, "alice", wd)
    env = claim_mod.parse_line(good)
    bad = bytearray(env.sig)
    bad[-3] ^= 1
    note = note_of(world, "alice", "bob") + withdrawal_line(world, "alice", wd, bytes(bad))
    report = check(world, note)
    assert report.result is not None and report.result.verified


def test_flood_of_withdrawals_beyond_the_bound_counts_worst_case(
    world: sim.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unchecked withdrawal lines naming bob's key: bob's claims do not count (a no, never a
    yes); lines naming keys outside the policy change nothing for anyone."""
    monkeypatch.setattr(verify, "MAX_CHECKED_SIGNATURES", 4)
    wd = here(world, everything=True)
    env = claim_mod.parse_line(withdrawal_line(world, "bob", wd))
    fakes = b""
    for i in range(1, 12):
        bad = bytearray(env.sig)
        bad[-3] ^= i
        fakes += claim_mod.Envelope(wd.payload(), bytes(bad), env.keyid).line()
    report = check(world, note_of(world, "alice", "bob", "carol") + fakes, threshold=3)
    assert report.result is not None and not report.result.verified
    assert "bob" not in report.result.artifacts[0].signers
    assert {"alice", "carol"} <= set(report.result.artifacts[0].signers)


def test_cli_withdraw_show_verify_and_bundle(world: sim.World, short_tmp: Path) -> None:
    art = world.root / "dist" / "app.tar.gz"
    world.policy(2)
    for p in ("alice", "bob"):
        world.sign(p, art)
    assert world.verify(art).returncode == 0
    res = world.run("withdraw", art, party="alice")
    assert res.returncode == 0, res.stderr
    out = world.verify("--json", art)
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert doc["withdrawn"][0]["signer"] == "alice"
    shown = world.run("show", "--policy", world.policy_dir / "threshold.toml")
    assert "WITHDRAWAL" in shown.stdout and "withdrawn by its signer" in shown.stdout
    # the withdrawal travels in the bundle: offline verify fails too
    bundle = short_tmp / "app.wotr"
    assert world.run("export", "-o", bundle).returncode == 0
    off = world.run(
        "verify",
        "--policy",
        world.policy_dir / "threshold.toml",
        "--bundle",
        bundle,
        art,
        cwd=short_tmp,
    )
    assert off.returncode == 1, off.stdout
    # bad input: nothing named, or both
    assert world.run("withdraw", party="alice").returncode == 2
    assert world.run("withdraw", "--all", art, party="alice").returncode == 2
