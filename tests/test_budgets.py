"""Limits may turn a yes into a no, never a no into a yes (issue 10 §3, DESIGN §6 rule 8).

A flood of signatures that fail (no private key needed: a changed signature value) can push a
trusted signer's real lines past the gpg budget. Those unchecked lines are taken at their worst:
a signer who may have signed a second digest counts for neither (rule 7), and a possible dissent
fails ``--strict``. The answer with the flood is never better than without it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from testing import sim
from wotr import render
from wotr import verify as verify_mod
from wotr.consensus import Target
from wotr.policy import load

GOOD = b"release bytes\n"
EVIL = b"backdoored bytes\n"


def _forged(line: bytes, count: int) -> list[bytes]:
    """``count`` copies of ``line`` with a changed signature value (BADSIG; no key needed)."""
    doc = json.loads(line)
    sig = base64.b64decode(doc["signatures"][0]["sig"])
    out = []
    for i in range(count):
        tail = bytes(b ^ m for b, m in zip(sig[-4:], (i + 1).to_bytes(4, "big"), strict=True))
        bad = {**doc["signatures"][0], "sig": base64.b64encode(sig[:-4] + tail).decode()}
        out.append(json.dumps({**doc, "signatures": [bad]}).encode() + b"\n")
    return out


def _key(world: sim.World, name: str) -> Any:
    return world.parties[name].key


def _scene(world: sim.World) -> dict[str, bytes]:
    """alice and bob sign EVIL; bob also signed GOOD (rule 7: bob counts for neither); carol
    signed GOOD (a dissent). Honestly held, EVIL must not verify (1 of 2)."""
    world.policy(2)
    evil = world.claim({"app.tar.gz": EVIL})
    good = world.claim({"app.tar.gz": GOOD})
    return {
        "alice_evil": sim.envelope_line(_key(world, "alice"), evil) + b"\n",
        "bob_evil": sim.envelope_line(_key(world, "bob"), evil) + b"\n",
        "bob_good": sim.envelope_line(_key(world, "bob"), good) + b"\n",
        "carol_good": sim.envelope_line(_key(world, "carol"), good) + b"\n",
    }


def _evil_target() -> list[Target]:
    import hashlib

    return [Target("app.tar.gz", hashlib.sha256(EVIL).hexdigest())]


def _verify(world: sim.World, note: bytes, *, strict: bool = False) -> verify_mod.Report:
    policy = load(world.policy_dir / "threshold.toml")
    ctx = verify_mod.Context(world.head(), world.tree(), None)
    return verify_mod.evaluate(policy, note, ctx, _evil_target(), strict=strict)


def test_a_flood_cannot_hide_a_second_claim_of_a_signer(
    world: sim.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case, with real gpg: forged copies of bob's claim on EVIL, placed before his
    claim on GOOD, used to spend the gpg budget so that his GOOD claim was never checked; rule
    7 vanished and EVIL verified with alice and bob. Now bob's unchecked claim may name GOOD,
    so bob counts for neither and EVIL is not verified, as in a clone without the flood."""
    lines = _scene(world)
    honest = lines["alice_evil"] + lines["bob_evil"] + lines["bob_good"]
    held = _verify(world, honest)
    assert held.result is not None and not held.result.verified
    assert [c.signer for c in held.result.conflicts] == ["bob"]

    monkeypatch.setattr(verify_mod, "MAX_CHECKED_SIGNATURES", 8)
    flood = b"".join(_forged(lines["bob_evil"], 30))
    note = lines["alice_evil"] + lines["bob_evil"] + flood + lines["bob_good"]
    report = _verify(world, note)
    result = report.result
    assert result is not None and not result.verified, result
    assert result.artifacts[0].signers == ("alice",)
    assert [(d.signer, d.name) for d in result.doubts] == [("bob", "app.tar.gz")]
    text = render.verify_text(report)
    assert "bob: 1 claim(s) on app.tar.gz not checked" in text and "NOT VERIFIED" in text
    doc = json.loads(render.verify_json(report))
    assert doc["verified"] is False
    assert doc["unchecked"][0]["signer"] == "bob"
    assert any("not checked" in r["reason"] for r in doc["rejected"])


def test_forged_copies_of_the_same_claim_cost_nothing_at_their_worst(
    world: sim.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood of forged copies of a claim (same payload) that the budget leaves unchecked
    can at worst repeat that claim: it takes no one's vote (bounded work, same answer)."""
    lines = _scene(world)
    monkeypatch.setattr(verify_mod, "MAX_CHECKED_SIGNATURES", 8)
    note = lines["alice_evil"] + lines["bob_evil"] + b"".join(_forged(lines["bob_evil"], 30))
    result = _verify(world, note).result
    assert result is not None and result.verified, result
    assert result.doubts == ()
    strict = _verify(world, note, strict=True).result
    assert strict is not None and strict.verified


def test_a_flood_cannot_hide_a_dissent_from_strict(
    world: sim.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--strict fails when a trusted signer dissents; carol's dissent pushed past the budget
    by forged copies of her own claim must still fail it (she may dissent)."""
    lines = _scene(world)
    honest = lines["alice_evil"] + lines["bob_evil"] + lines["carol_good"]
    held = _verify(world, honest, strict=True).result
    assert held is not None and not held.verified
    monkeypatch.setattr(verify_mod, "MAX_CHECKED_SIGNATURES", 8)
    flood = b"".join(_forged(lines["carol_good"], 30))
    note = lines["alice_evil"] + lines["bob_evil"] + flood + lines["carol_good"]
    assert _verify(world, note).result.verified  # type: ignore[union-attr]
    result = _verify(world, note, strict=True).result
    assert result is not None and not result.verified
    assert "may dissent" in result.reason


def test_with_no_artifacts_an_unchecked_claim_on_another_digest_fails_the_name(
    world: sim.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify without artifacts asks that every claimed name reach a quorum on exactly one
    digest. An unchecked claim naming another digest could have made two reach it."""
    lines = _scene(world)
    monkeypatch.setattr(verify_mod, "MAX_CHECKED_SIGNATURES", 8)
    note = lines["alice_evil"] + lines["bob_evil"] + b"".join(_forged(lines["carol_good"], 30))
    policy = load(world.policy_dir / "threshold.toml")
    ctx = verify_mod.Context(world.head(), world.tree(), None)
    # forged copies of carol's GOOD claim: carol holds no checked claim, but her unchecked ones
    # name GOOD, which alice's and bob's EVIL quorum does not agree with
    report = verify_mod.evaluate(policy, note, ctx, None, strict=False)
    assert report.result is not None and not report.result.verified
    assert "were not checked" in report.result.artifacts[0].reason


def test_a_signature_copied_onto_another_payload_hides_nothing(world: sim.World) -> None:
    """Found attacking this work: lines were de-duplicated by signature alone, so a copy of
    bob's GOOD signature put on his EVIL payload (it fails: other bytes), placed first, made
    his real GOOD line "the same signature as line 1" and unchecked — rule 7 vanished."""
    lines = _scene(world)
    good_doc = json.loads(lines["bob_good"])
    evil_doc = json.loads(lines["bob_evil"])
    copied = {**evil_doc, "signatures": good_doc["signatures"]}
    decoy = json.dumps(copied).encode() + b"\n"
    note = decoy + lines["alice_evil"] + lines["bob_evil"] + lines["bob_good"]
    result = _verify(world, note).result
    assert result is not None and not result.verified, result
    assert [c.signer for c in result.conflicts] == ["bob"]


def test_an_unchecked_claim_that_could_not_count_changes_nothing(
    world: sim.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worst case is only taken for lines that would count were their signature good: a
    claim for a tag other than the one verified cannot take bob's vote."""
    _scene(world)
    tagged = world.claim({"app.tar.gz": GOOD}, ref="refs/tags/v9")
    bob_tagged = sim.envelope_line(_key(world, "bob"), tagged) + b"\n"
    flood = b"".join(_forged(bob_tagged, 30))
    monkeypatch.setattr(verify_mod, "MAX_CHECKED_SIGNATURES", 4)
    policy = load(world.policy_dir / "threshold.toml")
    evil_tagged = world.claim({"app.tar.gz": EVIL}, ref="refs/tags/v1")
    note = (
        sim.envelope_line(_key(world, "alice"), evil_tagged)
        + b"\n"
        + sim.envelope_line(_key(world, "bob"), evil_tagged)
        + b"\n"
        + flood
    )
    ctx = verify_mod.Context(world.head(), world.tree(), "refs/tags/v1")
    report = verify_mod.evaluate(policy, note, ctx, _evil_target(), strict=True)
    assert report.result is not None and report.result.verified, report.result
    # verified as a plain commit, bob's v9 claims would count: at their worst, he conflicts
    ctx = verify_mod.Context(world.head(), world.tree(), None)
    report = verify_mod.evaluate(policy, note, ctx, _evil_target(), strict=False)
    assert report.result is not None and not report.result.verified


def test_a_bundle_relabelled_with_another_tag_cannot_leave_out_lines(world: sim.World) -> None:
    """Found attacking this work: offline, bundles were grouped by (commit, the bundle's tag)
    and each group's lines were only its own bundles'. A bundle's tag is unsigned: a copy of
    some honest lines under another label formed a group without bob's second claim, and EVIL
    verified. The lines of every bundle of a commit now form that commit's one note."""
    import subprocess

    from wotr import bundle, offline

    world.policy(2)
    evil = world.claim({"app.tar.gz": EVIL}, ref="refs/tags/v1")
    good = world.claim({"app.tar.gz": GOOD}, ref="refs/tags/v1")
    alice_evil = sim.envelope_line(_key(world, "alice"), evil)
    bob_evil = sim.envelope_line(_key(world, "bob"), evil)
    bob_good = sim.envelope_line(_key(world, "bob"), good)
    obj = subprocess.run(
        ["git", "cat-file", "commit", "HEAD"], cwd=world.repo, capture_output=True, check=True
    ).stdout
    store = world.root / "bundles"
    store.mkdir()
    honest, _ = bundle.build(
        world.head(), obj, "refs/tags/v1", b"\n".join([alice_evil, bob_evil, bob_good]) + b"\n"
    )
    (store / "honest.wotr").write_bytes(bundle.to_bytes(honest))
    artifact = world.artifact("app.tar.gz", EVIL)
    policy = load(world.policy_dir / "threshold.toml")
    sources = offline.Sources(directory=store)
    assert not offline.verify(policy, artifacts=[artifact], sources=sources).verified
    relabelled, _ = bundle.build(world.head(), obj, None, alice_evil + b"\n" + bob_evil + b"\n")
    (store / "relabelled.wotr").write_bytes(bundle.to_bytes(relabelled))
    outcome = offline.verify(policy, artifacts=[artifact], sources=sources)
    assert not outcome.verified, offline.text(outcome)


def test_honest_offline_work_is_not_refused_by_the_run_budget(
    world: sim.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: the signature budget of one offline verify grows with the artifacts asked
    about, so many honest packages from many commits verify (it used to be refused past 4,096
    signatures: 1,366 packages of 3 claims); all their commits share one gpg home."""
    import subprocess

    from wotr import bundle, gpg, offline

    world.policy(2)
    store = world.root / "bundles"
    store.mkdir()
    arts = []
    for i in range(4):
        world.artifact(f"pkg{i}.tar", b"package %d\n" % i)
        sim.commit(world.repo, f"release {i}", {"v": b"%d" % i})
        claim = world.claim({f"pkg{i}.tar": b"package %d\n" % i})
        note = b"".join(
            sim.envelope_line(_key(world, name), claim) + b"\n" for name in ("alice", "bob")
        )
        obj = subprocess.run(
            ["git", "cat-file", "commit", "HEAD"], cwd=world.repo, capture_output=True, check=True
        ).stdout
        made, _ = bundle.build(world.head(), obj, None, note)
        (store / f"pkg{i}.wotr").write_bytes(bundle.to_bytes(made))
        arts.append(world.root / "dist" / f"pkg{i}.tar")
    monkeypatch.setattr(verify_mod, "MAX_CHECKED_SIGNATURES_PER_RUN", 2)  # < 8 signatures
    homes: list[int] = []
    real_init = gpg.Verifier.__init__

    def counting_init(self: Any, *a: Any, **kw: Any) -> None:
        homes.append(1)
        real_init(self, *a, **kw)

    monkeypatch.setattr(gpg.Verifier, "__init__", counting_init)
    policy = load(world.policy_dir / "threshold.toml")
    outcome = offline.verify(policy, artifacts=arts, sources=offline.Sources(directory=store))
    assert outcome.verified, offline.text(outcome)
    assert len(outcome.groups) == 4 and homes == [1]
    monkeypatch.setattr(offline, "PER_TARGET_SIGNATURES", 0)  # the old fixed budget: refused
    outcome = offline.verify(policy, artifacts=arts, sources=offline.Sources(directory=store))
    assert not outcome.verified and "limit of 2 signatures" in outcome.reason


def test_show_never_marks_as_counting_a_claim_that_counts_for_nothing(
    world: sim.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """show / show --json / the status page list each line with ``counts``: a claim of a signer
    who counts for neither digest of the name (rule 7, or an unchecked second claim taken at
    its worst) must not be shown as counting, while verify does not count it."""
    lines = _scene(world)
    policy = load(world.policy_dir / "threshold.toml")
    ctx = verify_mod.Context(world.head(), world.tree(), None)

    def bob_lines(note: bytes) -> list[verify_mod.Line]:
        report = verify_mod.evaluate(policy, note, ctx, None, strict=False)
        doc = json.loads(render.show_json(report))
        assert not any(c["counts"] for c in doc["claims"] if c["signer"] == "bob"), doc
        return [ln for ln in report.lines if ln.signer == "bob"]

    found = bob_lines(lines["alice_evil"] + lines["bob_evil"] + lines["bob_good"])
    assert found and all("two digests" in ln.reason for ln in found)
    monkeypatch.setattr(verify_mod, "MAX_CHECKED_SIGNATURES", 8)
    flood = b"".join(_forged(lines["bob_evil"], 30))
    note = lines["alice_evil"] + lines["bob_evil"] + flood + lines["bob_good"]
    assert any("not checked" in ln.reason for ln in bob_lines(note))


def test_audit_takes_unchecked_claims_at_their_worst_as_verify_does(
    world: sim.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git wotr audit says whether each release verifies now: it decided without the unchecked
    claims and said "verified" where verify (rule 8 worst case) says no."""
    from wotr import audit

    lines = _scene(world)
    monkeypatch.setattr(verify_mod, "MAX_CHECKED_SIGNATURES", 8)
    flood = b"".join(_forged(lines["bob_evil"], 30))
    note = lines["alice_evil"] + lines["bob_evil"] + flood + lines["bob_good"]
    policy = load(world.policy_dir / "threshold.toml")
    ctx = verify_mod.Context(world.head(), world.tree(), None)
    checked = verify_mod.check(policy, note, ctx)
    assert not verify_mod.decide(policy, checked, None, strict=False).result.verified  # type: ignore[union-attr]
    mine = [c for c in checked.counted if c.signer == "alice"]
    entry = audit._entry(policy, checked, mine, "alice", ctx.commit, None)
    assert not entry.verified and not entry.verified_without
