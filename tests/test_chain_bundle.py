"""The policy chain inside exported bundles (DESIGN §7, issue 11): an installer that pinned
serial 1 follows today's policy from ONE bundle (a --bundle file, a sidecar, an OCI
attachment), without editing any file; chain data in bundles is attacker data."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testing import gpgkeys, sim
from tests.test_chain import write_policy
from wotr import bundle, chain, chainstore, policycmd
from wotr import claim as claim_mod
from wotr import policy as policy_mod


@pytest.fixture
def released(world: sim.World, keys: Any, short_tmp: Path) -> sim.World:
    """alice, bob, carol (threshold 2) as serial 1, pinned by an installer under etc/ and
    state/; then serial 2 (bob rotates to bob2: alice + carol sign), serial 3 (carol,
    compromised, removed: alice + bob2 sign); release v2.0 signed by alice and bob2 (under
    serial 1 only alice counts). dist/app.tar.gz is the release."""
    w = world
    w.parties["bob2"] = sim.Party("bob2", keys.get("bob2"), None)
    write_policy(w.repo, [w.parties[n] for n in ("alice", "bob", "carol")], 2, 1)
    assert w.run("init").returncode == 0
    etc = short_tmp / "etc"
    etc.mkdir()
    shutil.copy(w.repo / "threshold.toml", etc / "policy.toml")
    shutil.copytree(w.repo / "keys", etc / "keys")
    res = w.run("policy", "pin", "--policy", etc / "policy.toml", cwd=short_tmp, env=env_of(w))
    assert res.returncode == 0, res.stderr
    write_policy(w.repo, [w.parties[n] for n in ("alice", "bob2", "carol")], 2, 2)
    assert w.run("policy", "propose", party="alice").returncode == 0
    assert w.run("policy", "sign", party="carol").returncode == 0
    write_policy(w.repo, [w.parties[n] for n in ("alice", "bob2")], 2, 3)
    assert w.run("policy", "propose", party="alice").returncode == 0
    res = w.run("policy", "sign", party="bob2")
    assert "now in effect" in res.stdout, res.stdout + res.stderr
    sim.git(w.repo, "tag", "-a", "v2.0", "-m", "2.0")
    art = w.root / "dist" / "app.tar.gz"
    w.sign("alice", art, rev="v2.0")
    w.sign("bob2", art, rev="v2.0")
    return w


def env_of(w: sim.World) -> dict[str, str]:
    """The installer's state, and an empty bundles directory (no chain files)."""
    (w.root / "nothing").mkdir(exist_ok=True)
    return {"WOTR_POLICY_STATE": str(w.root / "state"), "WOTR_BUNDLES": str(w.root / "nothing")}


def installer(w: sim.World, *args: str | Path, env: dict[str, str] | None = None) -> Any:
    """``wotr verify --json`` on the installer (no repository around, its own policy)."""
    away = w.root / "away"
    away.mkdir(exist_ok=True)
    full = ["verify", "--json", "--policy", w.root / "etc" / "policy.toml", *args]
    return w.run(*full, cwd=away, env=env if env is not None else env_of(w))


def doc_of(res: Any) -> dict[str, Any]:
    assert res.stdout, res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    return doc


def export(w: sim.World, target: Path, rev: str = "v2.0") -> Path:
    res = w.run("export", "--rev", rev, "-o", target)
    assert res.returncode == 0, res.stderr
    return target


def rewrite(path: Path, chain_doc: dict[str, Any] | None, target: Path | None = None) -> Path:
    """``path`` with its policy chain replaced by ``chain_doc`` (None: a v1 bundle, no chain)."""
    doc = json.loads(path.read_bytes())
    doc.pop(bundle.CHAIN_FIELD, None)
    doc["format"] = bundle.FORMAT
    if chain_doc is not None:
        doc["format"] = bundle.FORMAT_CHAIN
        doc[bundle.CHAIN_FIELD] = chain_doc
    out = target or path
    out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return out


def real_store(w: sim.World) -> chainstore.Store:
    from wotr import git

    return chainstore.read(git.open_repo(w.repo))


def only(store: chainstore.Store, *serials: int) -> dict[str, Any]:
    keep = tuple(p for p in store.proposals if chainstore.serial_of(p) in serials)
    return policycmd.chain_doc(chainstore.Store(keep))


def forge(
    w: sim.World,
    parties: list[str],
    serial: int,
    threshold: int,
    previous: str,
    signers: list[str],
) -> chainstore.Proposal:
    """A proposal for ``serial`` signed by ``signers``, as anyone with their keys could."""
    tmp = w.root / f"forge{serial}-{'-'.join(parties)}-{threshold}"
    path = write_policy(tmp, [w.parties[n] for n in parties], threshold, serial)
    pol = policy_mod.load(path)
    files = {n: (tmp / n).read_bytes() for n, _ in chain.chain_digests(pol)}
    p = chainstore.proposal(files)
    payload = chain.statement(p.digests(), serial, previous)
    lines = [
        claim_mod.Envelope(
            payload=payload,
            sig=gpgkeys.sign_detached(w.parties[s].key, claim_mod.pae(payload)),
            keyid=w.parties[s].fingerprint,
        )
        .line()
        .rstrip(b"\n")
        for s in signers
    ]
    return chainstore.proposal(files, lines)


def digest_of_serial(store: chainstore.Store, serial: int) -> str:
    (p,) = [p for p in store.proposals if chainstore.serial_of(p) == serial]
    return chain.policy_digest(chainstore.load(p))


def digest1(w: sim.World) -> str:
    return chain.policy_digest(policy_mod.load(w.root / "etc" / "policy.toml"))


def pinned_serial(w: sim.World) -> int:
    doc = json.loads((w.root / "state" / "policy.pin").read_text())
    serial: int = doc["serial"]
    return serial


# --- the scenario ----------------------------------------------------------------------


def test_one_bundle_takes_the_installer_from_serial_1_to_3(released: sim.World) -> None:
    w = released
    art = w.root / "dist" / "app.tar.gz"
    etc_before = {p: p.read_bytes() for p in (w.root / "etc").rglob("*") if p.is_file()}
    one = export(w, w.root / "app-2.0.wotr")
    assert json.loads(one.read_bytes())["format"] == bundle.FORMAT_CHAIN
    res = installer(w, "--rev", "v2.0", "--bundle", one, art)
    doc = doc_of(res)
    assert res.returncode == 0 and doc["verified"] is True, res.stdout + res.stderr
    assert doc["policy_serial"] == 3
    assert pinned_serial(w) == 3  # remembered
    assert {p: p.read_bytes() for p in (w.root / "etc").rglob("*") if p.is_file()} == etc_before
    # remembered: a bundle without the chain now verifies under serial 3 too
    bare = rewrite(one, None, w.root / "bare.wotr")
    doc = doc_of(installer(w, "--bundle", bare, art))
    assert doc["verified"] is True and doc["policy_serial"] == 3


def test_pinning_again_never_moves_the_pin_back(released: sim.World) -> None:
    """Configuration management re-runs 'wotr policy pin' with the same serial 1 file: the pin
    the chain moved to serial 3 is kept, so a bundle without the chain, signed by alice and
    carol (removed by serial 3), still does not verify."""
    w = released
    art = w.root / "dist" / "app.tar.gz"
    export(w, w.root / "b.wotr")
    assert doc_of(installer(w, "--bundle", w.root / "b.wotr", art))["policy_serial"] == 3
    res = w.run(
        "policy", "pin", "--policy", w.root / "etc" / "policy.toml", cwd=w.root, env=env_of(w)
    )
    assert res.returncode == 0 and "kept" in res.stdout, res.stdout + res.stderr
    assert pinned_serial(w) == 3
    sim.git(w.repo, "tag", "-a", "v2.1", "-m", "2.1")
    w.sign("alice", art, rev="v2.1")
    assert w.run("sign", "--allow-uncounted", "--rev", "v2.1", art, party="carol").returncode == 0
    old = rewrite(export(w, w.root / "c.wotr", "v2.1"), None)
    doc = doc_of(installer(w, "--bundle", old, art))
    assert doc["verified"] is False and doc["policy_serial"] == 3


def test_a_sidecar_carries_the_chain(released: sim.World) -> None:
    w = released
    mirror = w.root / "mirror"
    mirror.mkdir()
    shutil.copy(w.root / "dist" / "app.tar.gz", mirror / "app.tar.gz")
    export(w, mirror / "app.tar.gz.wotr")
    res = installer(w, mirror / "app.tar.gz")
    doc = doc_of(res)
    assert doc["verified"] is True, res.stdout + res.stderr
    assert doc["policy_serial"] == 3


def test_a_bundle_in_the_bundles_directory_carries_the_chain(released: sim.World) -> None:
    """Found by digest in --bundles DIR (a renamed copy). When the state cannot be written, the
    followed policy is used for this run and the report says it was not remembered."""
    w = released
    store = w.root / "store"
    store.mkdir()
    export(w, store / "whatever.wotr")
    renamed = w.root / "renamed.bin"
    shutil.copy(w.root / "dist" / "app.tar.gz", renamed)
    env = {**env_of(w), "WOTR_BUNDLES": str(store)}
    blocker = w.root / "state" / "policy-chain"
    blocker.write_text("not a directory: the copy of serial 3 cannot be written")
    doc = doc_of(installer(w, renamed, env=env))
    blocker.unlink()
    assert doc["verified"] is True and doc["policy_serial"] == 3
    assert any("not remembered" in n for n in doc["policy_chain_notes"]), doc
    assert pinned_serial(w) == 1
    doc = doc_of(installer(w, renamed, env=env))
    assert doc["verified"] is True and pinned_serial(w) == 3


def test_without_the_chain_serial_1_still_applies(released: sim.World) -> None:
    """The control: the same claims in a bundle without a chain do not verify under serial 1
    (bob2 is not a signer of it), so the tests above prove the chain was followed."""
    w = released
    bare = rewrite(export(w, w.root / "b.wotr"), None)
    doc = doc_of(installer(w, "--bundle", bare, w.root / "dist" / "app.tar.gz"))
    assert doc["verified"] is False and doc["policy_serial"] == 1


def test_no_pin_means_the_chain_is_ignored(released: sim.World) -> None:
    w = released
    one = export(w, w.root / "b.wotr")
    env = {**env_of(w), "WOTR_POLICY_STATE": str(w.root / "no-state")}
    res = installer(w, "--bundle", one, w.root / "dist" / "app.tar.gz", env=env)
    doc = doc_of(res)
    assert doc["verified"] is False and doc["policy_serial"] == 1
    assert not (w.root / "no-state").exists()


def test_another_policy_than_the_pinned_one_ignores_the_chain(released: sim.World) -> None:
    w = released
    other = w.root / "other"
    shutil.copytree(w.root / "etc", other)
    one = export(w, w.root / "b.wotr")
    args: list[str | Path] = ["verify", "--json", "--policy", other / "policy.toml"]
    args += ["--bundle", one]
    res = w.run(*args, w.root / "dist" / "app.tar.gz", cwd=w.root, env=env_of(w))
    assert doc_of(res)["policy_serial"] == 1
    assert pinned_serial(w) == 1


def test_the_pinned_policy_under_another_spelling_follows_the_chain(released: sim.World) -> None:
    """A hook configured with a link to the pinned file, or with '..' in its path, is the same
    installer: it must not quietly stay at serial 1 (where carol, removed by serial 3, counts)."""
    w = released
    one = export(w, w.root / "b.wotr")
    link = w.root / "etc" / "policy-link.toml"  # key files are found beside the path named
    link.symlink_to(w.root / "etc" / "policy.toml")
    for spelled in (link, w.root / "etc" / ".." / "etc" / "policy.toml"):
        args: list[str | Path] = ["verify", "--json", "--policy", spelled, "--bundle", one]
        res = w.run(*args, w.root / "dist" / "app.tar.gz", cwd=w.root, env=env_of(w))
        assert doc_of(res)["policy_serial"] == 3, res.stderr


# --- attacks: the chain in a bundle is attacker data -------------------------------------------


def test_forged_steps_in_a_bundle_do_not_move_the_pin(released: sim.World) -> None:
    """Too few signers; a signer of another serial (bob2, whom serial 2 adds, signing his own
    admission); a key that is not in the policy at all."""
    w = released
    d1 = digest1(w)
    too_few = forge(w, ["alice", "bob2", "carol"], 2, 1, d1, ["alice"])
    own_admission = forge(w, ["alice", "bob2"], 2, 1, d1, ["alice", "bob2"])
    w.parties["mallory"] = sim.Party("mallory", gpgkeys.make_key("mallory"), None)
    foreign = forge(w, ["alice", "mallory"], 2, 1, d1, ["mallory", "alice"])
    store = chainstore.Store((too_few, own_admission, foreign))
    one = rewrite(export(w, w.root / "b.wotr"), policycmd.chain_doc(store))
    res = installer(w, "--bundle", one, w.root / "dist" / "app.tar.gz")
    doc = doc_of(res)
    assert res.returncode == 1 and doc["verified"] is False, res.stdout + res.stderr
    assert doc["policy_serial"] == 1 and pinned_serial(w) == 1
    notes = "\n".join(doc["policy_chain_notes"])
    assert "1 of 2 required update signers" in notes
    away = w.root / "away"
    args: list[str | Path] = ["verify", "--policy", w.root / "etc" / "policy.toml", "--bundle", one]
    text = w.run(*args, w.root / "dist" / "app.tar.gz", cwd=away, env=env_of(w)).stdout
    assert "policy chain: proposal" in text and "NOT VERIFIED" in text


def test_a_key_the_update_removed_cannot_sign_the_next_step(released: sim.World) -> None:
    """The installer holds serial 3 (carol removed). A bundle carrying a serial 4 that brings
    carol back, signed by carol and alice, does not count; alice + carol claims stay refused."""
    w = released
    art = w.root / "dist" / "app.tar.gz"
    export(w, w.root / "b.wotr")
    assert doc_of(installer(w, "--bundle", w.root / "b.wotr", art))["policy_serial"] == 3
    store = real_store(w)
    d3 = digest_of_serial(store, 3)
    back = forge(w, ["alice", "carol"], 4, 1, d3, ["alice", "carol"])
    # v2.1: alice and carol sign it
    sim.git(w.repo, "tag", "-a", "v2.1", "-m", "2.1")
    w.sign("alice", art, rev="v2.1")
    assert w.run("sign", "--allow-uncounted", "--rev", "v2.1", art, party="carol").returncode == 0
    full = chainstore.Store((*store.proposals, back))
    one = rewrite(export(w, w.root / "c.wotr", "v2.1"), policycmd.chain_doc(full))
    doc = doc_of(installer(w, "--bundle", one, art))
    assert doc["verified"] is False and doc["policy_serial"] == 3


def test_a_replayed_older_policy_does_not_move_the_pin_back(released: sim.World) -> None:
    """After serial 3, a bundle carrying only serial 2 (or a validly signed other serial 2,
    made by serial 1's quorum) leaves the installer at 3: carol's claims stay void."""
    w = released
    art = w.root / "dist" / "app.tar.gz"
    export(w, w.root / "b.wotr")
    assert doc_of(installer(w, "--bundle", w.root / "b.wotr", art))["policy_serial"] == 3
    old = forge(w, ["alice", "bob", "carol"], 2, 1, digest1(w), ["alice", "carol"])
    sim.git(w.repo, "tag", "-a", "v2.1", "-m", "2.1")
    w.sign("alice", art, rev="v2.1")
    assert w.run("sign", "--allow-uncounted", "--rev", "v2.1", art, party="carol").returncode == 0
    with_2 = only(real_store(w), 2)
    with_2["proposals"] += policycmd.chain_doc(chainstore.Store((old,)))["proposals"]
    one = rewrite(export(w, w.root / "c.wotr", "v2.1"), with_2)
    doc = doc_of(installer(w, "--bundle", one, art))
    assert doc["verified"] is False and doc["policy_serial"] == 3
    assert pinned_serial(w) == 3


def test_a_step_naming_another_previous_policy_is_reported(released: sim.World) -> None:
    w = released
    wrong = forge(w, ["alice", "bob", "carol"], 2, 1, "ab" * 32, ["alice", "carol"])
    one = rewrite(export(w, w.root / "b.wotr"), policycmd.chain_doc(chainstore.Store((wrong,))))
    doc = doc_of(installer(w, "--bundle", one, w.root / "dist" / "app.tar.gz"))
    assert doc["verified"] is False and doc["policy_serial"] == 1
    notes = "\n".join(doc["policy_chain_notes"])
    assert wrong.digest[:16] in notes and "signs another statement" in notes, notes


def test_a_fork_inside_one_bundle_fails_closed(released: sim.World) -> None:
    w = released
    other2 = forge(w, ["alice", "bob", "carol"], 2, 1, digest1(w), ["alice", "carol"])
    forked = chainstore.Store((*real_store(w).proposals, other2))
    one = rewrite(export(w, w.root / "b.wotr"), policycmd.chain_doc(forked))
    res = installer(w, "--bundle", one, w.root / "dist" / "app.tar.gz")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "fork" in res.stderr and other2.digest[:16] in res.stderr
    assert pinned_serial(w) == 1


def test_a_fork_across_two_bundles_fails_closed(released: sim.World) -> None:
    w = released
    other2 = forge(w, ["alice", "bob", "carol"], 2, 1, digest1(w), ["alice", "carol"])
    honest = export(w, w.root / "honest.wotr")
    evil = rewrite(honest, policycmd.chain_doc(chainstore.Store((other2,))), w.root / "e.wotr")
    res = installer(w, "--bundle", honest, "--bundle", evil, w.root / "dist" / "app.tar.gz")
    assert res.returncode == 2 and "fork" in res.stderr, res.stdout + res.stderr
    assert pinned_serial(w) == 1


def test_a_bundle_cannot_hide_the_chain_another_carries(released: sim.World) -> None:
    """The chains of all bundles read are one store: an attacker's bundle read first (junk,
    or only serial 2) does not stop the installer from reaching serial 3 from the other."""
    w = released
    honest = export(w, w.root / "z-honest.wotr")
    partial = rewrite(honest, only(real_store(w), 2), w.root / "a-partial.wotr")
    junk = rewrite(honest, {"format": "junk"}, w.root / "a-junk.wotr")
    art = w.root / "dist" / "app.tar.gz"
    res = installer(w, "--bundle", partial, "--bundle", junk, "--bundle", honest, art)
    doc = doc_of(res)
    assert doc["verified"] is True and doc["policy_serial"] == 3, res.stdout + res.stderr


def test_a_chain_file_and_a_bundle_are_one_store(released: sim.World) -> None:
    """serial 2 from a chain file in the bundles directory, serial 3 only in the bundle."""
    w = released
    bundles = w.root / "bundles"
    bundles.mkdir()
    (bundles / "p.wotr-policy").write_text(json.dumps(only(real_store(w), 2)))
    one = rewrite(export(w, w.root / "b.wotr"), only(real_store(w), 3))
    env = {**env_of(w), "WOTR_BUNDLES": str(bundles)}
    doc = doc_of(installer(w, "--bundle", one, w.root / "dist" / "app.tar.gz", env=env))
    assert doc["verified"] is True and doc["policy_serial"] == 3


def test_a_garbage_chain_member_adds_nothing_and_is_reported(released: sim.World) -> None:
    w = released
    art = w.root / "dist" / "app.tar.gz"
    honest = export(w, w.root / "b.wotr")
    junks: list[dict[str, Any]] = [
        {"format": policycmd.CHAIN_FORMAT, "proposals": "x"},
        {"format": policycmd.CHAIN_FORMAT, "proposals": [{"files": {"/etc/passwd": "AA=="}}]},
        {"format": policycmd.CHAIN_FORMAT, "proposals": [{"files": {}, "signatures": [1]}]},
        {"nested": [[[[[]]]]]},
    ]
    for i, junk in enumerate(junks):
        one = rewrite(honest, junk, w.root / f"j{i}.wotr")
        res = installer(w, "--bundle", one, art)
        doc = doc_of(res)
        assert res.returncode == 1 and doc["verified"] is False, res.stdout + res.stderr
        assert doc["policy_serial"] == 1
        assert any("ignored" in n for n in doc["policy_chain_notes"]), doc
        assert "Traceback" not in res.stderr
    # not an object at all: the bundle is malformed (skipped), never a crash or exit 2
    doc = json.loads(honest.read_bytes())
    doc[bundle.CHAIN_FIELD] = "junk"
    (w.root / "s.wotr").write_text(json.dumps(doc))
    res = installer(w, "--bundle", w.root / "s.wotr", art)
    assert res.returncode == 1 and "policy_chain is not an object" in res.stdout


def test_a_deeply_nested_proposal_is_no_crash(released: sim.World) -> None:
    """A proposal whose threshold.toml nests deeper than the parser recurses (in a bundle's
    chain, or pushed to refs/wotr/policy) is never a step, and never an internal error."""
    import base64

    w = released
    deep = ("a = " + "[" * 5000 + "]" * 5000 + "\n").encode()
    junk = {
        "format": policycmd.CHAIN_FORMAT,
        "proposals": [
            {"files": {"threshold.toml": base64.b64encode(deep).decode()}, "signatures": []}
        ],
    }
    one = rewrite(export(w, w.root / "b.wotr"), junk)
    res = installer(w, "--bundle", one, w.root / "dist" / "app.tar.gz")
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stdout + res.stderr
    assert doc_of(res)["policy_serial"] == 1
    # the same proposal in the project's own refs/wotr/policy
    from wotr import git

    chainstore.add(git.open_repo(w.repo), chainstore.proposal({"threshold.toml": deep}), "deep")
    res = w.run("policy", "show", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["in_effect"]["serial"] == 3


# --- bounds (in process: the limits made small) ------------------------------------------------


@pytest.fixture
def pinned(world: sim.World, short_tmp: Path) -> Iterator[tuple[policy_mod.Policy, Path]]:
    write_policy(short_tmp / "etc", [world.parties[n] for n in ("alice", "bob")], 2, 1)
    path = short_tmp / "etc" / "threshold.toml"
    state = short_tmp / "state"
    policycmd.pin_installer(path, state)
    yield policy_mod.load(path.absolute()), state


def junk_chain(n: int, tag: str) -> bytes:
    props = [chainstore.proposal({"threshold.toml": f"# {tag} {i}\n".encode()}) for i in range(n)]
    return policycmd._encode(policycmd.chain_doc(chainstore.Store(tuple(props))))


def test_many_proposals_over_all_bundles_fail_closed(
    pinned: tuple[policy_mod.Policy, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each bundle under the per-chain bound, their union over it: refuse (what was not
    checked may be the newer policy), never stay at the pin."""
    given, state = pinned
    monkeypatch.setattr(chainstore, "MAX_PROPOSALS", 4)
    carried = [(f"b{i}.wotr", junk_chain(3, f"b{i}")) for i in range(3)]
    with pytest.raises(chain.ChainError, match="proposals"):
        policycmd.installer_follow(given, [], state, carried)
    # the same chain in every bundle counts once
    same = [(f"b{i}.wotr", junk_chain(3, "same")) for i in range(50)]
    assert policycmd.installer_follow(given, [], state, same).policy.serial == 1


def test_chain_bytes_over_all_bundles_fail_closed(
    pinned: tuple[policy_mod.Policy, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    given, state = pinned
    one = junk_chain(1, "x")
    monkeypatch.setattr(policycmd, "MAX_CHAIN_BYTES", 3 * len(one))
    carried = [(f"b{i}.wotr", junk_chain(1, f"{i:x}")) for i in range(5)]
    with pytest.raises(chain.ChainError, match="too many bytes"):
        policycmd.installer_follow(given, [], state, carried)


def test_an_oversized_chain_member_is_ignored_not_followed(
    released: sim.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over MAX_CHAIN_FILE_BYTES (here: the real chain plus padding) the chain of one bundle
    is not parsed at all: it adds nothing, as an oversized chain file does."""
    w = released
    given = policy_mod.load(w.root / "etc" / "policy.toml")
    doc = only(real_store(w), 2, 3)
    real = policycmd._encode(doc)
    monkeypatch.setattr(policycmd, "MAX_CHAIN_FILE_BYTES", len(real) + 100)
    doc["padding"] = "x" * 200
    got = policycmd.installer_follow(
        given, [], w.root / "state", [("big.wotr", policycmd._encode(doc))]
    )
    assert got.policy.serial == 1
    assert any("big.wotr" in n and "over" in n for n in got.notes)
    got = policycmd.installer_follow(given, [], w.root / "state", [("ok.wotr", real)])
    assert got.policy.serial == 3


# --- the format ----------------------------------------------------------------------------------


def test_a_project_without_a_chain_exports_v1_bytes(world: sim.World) -> None:
    """Byte-identical to the bundles of before: no chain, no new field, format v1; once the
    project has a chain, the same bundle plus the member (format v2)."""
    w = world
    write_policy(w.repo, [w.parties[n] for n in ("alice", "bob", "carol")], 2, 1)
    assert w.run("init").returncode == 0
    art = w.root / "dist" / "app.tar.gz"
    w.sign("alice", art)
    before = export(w, w.root / "v1.wotr", "HEAD").read_bytes()
    doc = json.loads(before)
    assert doc["format"] == bundle.FORMAT and bundle.CHAIN_FIELD not in doc
    parsed = bundle.parse(before, "v1.wotr")
    assert parsed.chain is None
    rebuilt, _ = bundle.build(parsed.commit, parsed.commit_object, parsed.tag, parsed.note())
    assert bundle.to_bytes(rebuilt) == before
    write_policy(w.repo, [w.parties[n] for n in ("alice", "bob")], 2, 2)
    sim.git(w.repo, "reset", "-q", "--soft", "HEAD~1")  # the claims stay on the same commit
    sim.git(w.repo, "stash", "-q")
    assert w.run("policy", "propose", party="alice").returncode != 0  # needs the edited file
    sim.git(w.repo, "stash", "pop", "-q")
    assert w.run("policy", "propose", party="alice").returncode == 0
    after = export(w, w.root / "v2.wotr", parsed.commit).read_bytes()
    doc = json.loads(after)
    assert doc["format"] == bundle.FORMAT_CHAIN and doc[bundle.CHAIN_FIELD]["proposals"]
    got = bundle.parse(after, "v2.wotr")
    assert got.chain is not None and policycmd.parse_chain(got.chain, "x").proposals
    assert rewrite(w.root / "v2.wotr", None, w.root / "stripped.wotr")
    assert bundle.to_bytes(bundle.parse(after, "v2.wotr")) == after
    stripped = bundle.parse((w.root / "stripped.wotr").read_bytes(), "s")
    assert bundle.to_bytes(stripped) == before
    res = w.run("export", "--rev", parsed.commit, "--no-policy-chain", "-o", w.root / "old.wotr")
    assert res.returncode == 0, res.stderr
    assert (w.root / "old.wotr").read_bytes() == before  # for installers older than v2


def test_golden_v2_vector() -> None:
    """tests/vectors/bundle-v2.wotr is the v1 golden bundle plus a chain of one (unsigned)
    proposal: it parses, re-encodes to the same bytes, and without the chain it is v1's."""
    from wotr._record import replace

    vectors = Path(__file__).parent / "vectors"
    v2 = (vectors / "bundle-v2.wotr").read_bytes()
    parsed = bundle.parse(v2, "bundle-v2.wotr")
    assert parsed.chain is not None
    assert bundle.to_bytes(parsed) == v2
    store = policycmd.parse_chain(parsed.chain, "v2")
    assert len(store.proposals) == 1 and not store.problems
    assert policycmd._encode(policycmd.chain_doc(store)) == parsed.chain
    assert bundle.to_bytes(replace(parsed, chain=None)) == (vectors / "bundle-v1.wotr").read_bytes()


def test_the_format_and_the_member_go_together() -> None:
    golden = (Path(__file__).parent / "vectors" / "bundle-v1.wotr").read_bytes()
    doc = json.loads(golden)
    doc[bundle.CHAIN_FIELD] = {"format": policycmd.CHAIN_FORMAT, "proposals": []}
    with pytest.raises(bundle.BundleError, match="fields are"):
        bundle.parse(json.dumps(doc).encode(), "v1-with-chain")  # v1 has no such member
    doc["format"] = bundle.FORMAT_CHAIN
    assert bundle.parse(json.dumps(doc).encode(), "v2").chain is not None
    del doc[bundle.CHAIN_FIELD]
    with pytest.raises(bundle.BundleError, match="fields are"):
        bundle.parse(json.dumps(doc).encode(), "v2-without-chain")
    doc["format"] = "https://wotr.dev/bundle/v3"
    with pytest.raises(bundle.BundleError, match="format is not"):
        bundle.parse(json.dumps(doc).encode(), "v3")


# --- init never pins an unsigned successor ----------------------------------------------------


def test_init_refuses_a_higher_serial_no_signed_chain_reaches(world: sim.World) -> None:
    w = world
    write_policy(w.repo, [w.parties[n] for n in ("alice", "bob", "carol")], 2, 1)
    assert w.run("init").returncode == 0
    pin = (w.repo / ".git" / "wotr" / "policy.pin").read_bytes()
    # someone commits serial 2 with one signer, unsigned: init must not pin it
    write_policy(w.repo, [w.parties["carol"]], 1, 2)
    res = w.run("init")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "no validly signed policy chain leads to serial 2" in res.stderr
    assert (w.repo / ".git" / "wotr" / "policy.pin").read_bytes() == pin
    # proposed and signed by the quorum of serial 1: now it is what init (and verify) use
    assert w.run("policy", "propose", party="alice").returncode == 0
    assert w.run("policy", "sign", party="bob").returncode == 0
    res = w.run("init")
    assert res.returncode == 0, res.stderr
    shown = json.loads(w.run("policy", "show", "--json").stdout)
    assert shown["in_effect"]["serial"] == 2
    # a chain pin (serial 2) and an unsigned serial 3 in the working tree: refused as well
    write_policy(w.repo, [w.parties["alice"]], 1, 3)
    res = w.run("init")
    assert res.returncode == 2 and "serial 3" in res.stderr, res.stdout + res.stderr
    assert json.loads(w.run("policy", "show", "--json").stdout)["in_effect"]["serial"] == 2


def test_init_refuses_a_higher_serial_when_the_pinned_files_are_lost(world: sim.World) -> None:
    """A pin whose files are nowhere (an older wotr kept no copy; the working tree and HEAD
    moved on): its serial is unknown, so an unsigned higher serial is not pinned over it."""
    w = world
    write_policy(w.repo, [w.parties[n] for n in ("alice", "bob", "carol")], 2, 1)  # committed
    assert w.run("init").returncode == 0
    pin = (w.repo / ".git" / "wotr" / "policy.pin").read_bytes()
    shutil.rmtree(w.repo / ".git" / "wotr" / "pinned-files")
    write_policy(w.repo, [w.parties["carol"]], 1, 2)  # serial 2, unsigned, committed: HEAD moved
    res = w.run("init")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "nowhere to be found" in res.stderr
    assert (w.repo / ".git" / "wotr" / "policy.pin").read_bytes() == pin
    # serial 1 again (an edit reviewed by the user): pinned as before
    write_policy(w.repo, [w.parties[n] for n in ("alice", "bob")], 2, 1)
    assert w.run("init").returncode == 0


# --- OCI ----------------------------------------------------------------------------------------


def test_an_oci_attachment_carries_the_chain(released: sim.World) -> None:
    from testing import oci
    from wotr.oci import registry

    w = released
    with oci.fake_registry() as fake:
        image = oci.make_image("chain")
        oci.push(registry.Client(fake.address), "acme/app", "2.0", image)
        ref = f"{fake.address}/acme/app:2.0"
        for who in ("alice", "bob2"):
            res = w.run("oci", "sign", "--rev", "v2.0", ref, party=who)
            assert res.returncode == 0, res.stderr
        res = w.run("oci", "attach", "--rev", "v2.0", ref)
        assert res.returncode == 0, res.stderr
        away = w.root / "device"
        away.mkdir()
        args: list[str | Path] = ["verify", "--json", "--policy", w.root / "etc" / "policy.toml"]
        args += ["--oci", ref]
        bare = w.run(*args, cwd=away, env={"WOTR_POLICY_STATE": str(w.root / "none")})
        assert doc_of(bare)["verified"] is False  # no pin: serial 1, bob2 does not count
        res = w.run(*args, cwd=away, env=env_of(w))
        doc = doc_of(res)
        assert doc["verified"] is True and doc["policy_serial"] == 3, res.stdout + res.stderr


# --- concurrent verifies (review rev-chainbundle) ---------------------------------------------


def test_a_verify_racing_another_never_moves_the_pin_back(
    released: sim.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two installer verifies at once: B reads the pin (serial 1), A follows a bundle to serial
    3 and pins it, then B (whose bundle carries the chain to serial 2 only) must not write
    serial 2 over it, nor count with serial 2 (carol, removed by serial 3, would count again)."""
    w = released
    store = real_store(w)
    given = policy_mod.load((w.root / "etc" / "policy.toml").absolute())
    state = w.root / "state"
    to2 = [("old.wotr", policycmd._encode(only(store, 2)))]
    to3 = [("new.wotr", policycmd._encode(only(store, 2, 3)))]
    real = chainstore.follow

    def racing(start: policy_mod.Policy, merged: chainstore.Store) -> chainstore.Followed:
        monkeypatch.setattr(chainstore, "follow", real)
        assert policycmd.installer_follow(given, [], state, to3).policy.serial == 3  # A
        return real(start, merged)

    monkeypatch.setattr(chainstore, "follow", racing)
    got = policycmd.installer_follow(given, [], state, to2)  # B
    assert pinned_serial(w) == 3
    assert got.policy.serial == 3


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_a_pin_state_another_user_can_write_is_not_trusted(released: sim.World) -> None:
    """An installer (root) whose state directory belongs to another user: that user could
    write policy.pin (any policy) or plant policy.pin.tmp as a link to a file of root's, which
    the next verify would overwrite. Refused (exit 2), nothing written; the same for a state
    directory anyone may write, and for 'wotr policy pin' into such a directory."""
    w = released
    art = w.root / "dist" / "app.tar.gz"
    one = export(w, w.root / "app-2.0.wotr")
    state = w.root / "state"
    victim = w.root / "victim"
    victim.write_text("root's\n")
    (state / "policy.pin.tmp").symlink_to(victim)
    os.chown(state, 4242, 4242)
    res = installer(w, "--rev", "v2.0", "--bundle", one, art)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "another user" in res.stderr
    assert victim.read_text() == "root's\n" and pinned_serial(w) == 1
    res = w.run("policy", "pin", "--policy", w.root / "etc" / "policy.toml", env=env_of(w))
    assert res.returncode == 2 and "another user" in res.stderr, res.stdout + res.stderr
    assert victim.read_text() == "root's\n"
    os.chown(state, 0, 0)
    state.chmod(0o777)
    res = installer(w, "--rev", "v2.0", "--bundle", one, art)
    assert res.returncode == 2 and "may write" in res.stderr, res.stdout + res.stderr
    state.chmod(0o755)
    (state / "policy.pin.tmp").unlink()
    res = installer(w, "--rev", "v2.0", "--bundle", one, art)
    assert res.returncode == 0 and pinned_serial(w) == 3, res.stdout + res.stderr
