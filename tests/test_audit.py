"""``git wotr audit`` (DESIGN §8): real git, real gpg, the real CLI."""

from __future__ import annotations

import json

import pytest

from testing import sim
from wotr import audit, git, policy


def test_audit_lists_releases_that_depend_on_a_signer(world: sim.World) -> None:
    art = world.root / "dist" / "app.tar.gz"
    pol = world.policy(2)
    first = world.head()
    for p in ("alice", "bob"):
        world.sign(p, art)  # first: alice + bob, depends on each
    sim.commit(world.repo, "two", {"f": b"2"})
    sim.git(world.repo, "tag", "v2")
    for p in ("alice", "bob", "carol"):
        world.sign(p, art, rev="v2")  # v2: three signers, survives losing one
    sim.commit(world.repo, "three", {"f": b"3"})
    world.sign("bob", art)
    world.sign("carol", art)  # no claim by alice here
    res = world.run("audit", "--signer", "alice", "--policy", pol, "--json")
    assert res.returncode == 1, res.stderr
    doc = json.loads(res.stdout)
    got = {(r["commit"], r["tag"]): r for r in doc["releases"]}
    v2c = sim.git(world.repo, "rev-parse", "v2")
    assert set(got) == {(first, None), (v2c, None), (v2c, "refs/tags/v2")}
    assert got[(first, None)]["verified"] and not got[(first, None)]["verified_without"]
    v2 = got[(sim.git(world.repo, "rev-parse", "v2"), "refs/tags/v2")]
    assert v2["verified"] and v2["verified_without"]
    # by key, and the human table
    text = world.run("audit", "--key", world.parties["alice"].fingerprint, "--policy", pol)
    assert "NO LONGER VERIFIES" in text.stdout
    # a forged line naming alice's key on a commit gives no entry
    assert world.run("audit", "--signer", "nobody", "--policy", pol).returncode == 2
    assert world.run("audit", "--policy", pol).returncode == 2


def test_audit_ignores_forged_and_copied_lines(world: sim.World) -> None:
    art = world.root / "dist" / "app.tar.gz"
    pol = world.policy(2)
    for p in ("alice", "bob"):
        world.sign(p, art)
    note = sim.read_note(world.repo, world.head())
    sim.commit(world.repo, "two", {"f": b"2"})
    sim.write_note(world.repo, world.head(), note)  # copied to another commit: counts nothing
    res = world.run("audit", "--signer", "alice", "--policy", pol, "--json")
    doc = json.loads(res.stdout)
    assert len(doc["releases"]) == 1
    assert doc["checked_commits"] == 1


def test_base64_needles_find_every_alignment() -> None:
    import base64
    import os

    from wotr.audit import b64_needles

    needle = b"0123456789abcdef0123456789abcdef01234567"
    for pre in range(0, 7):
        for post in range(0, 4):
            data = os.urandom(pre) + needle + os.urandom(post)
            enc = base64.b64encode(data)
            assert any(n in enc for n in b64_needles(needle)), (pre, post)


def test_batches_give_the_same_answers(world: sim.World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Questions go to verify.check_many in batches; where a batch ends changes nothing."""

    art = world.root / "dist" / "app.tar.gz"
    pol = policy.load(world.policy(2))
    for i in range(3):
        for p in ("alice", "bob", "carol")[: 2 + i % 2]:
            world.sign(p, art)
        sim.git(world.repo, "tag", f"v{i}")
        for p in ("alice", "bob"):
            world.sign(p, art, rev=f"v{i}")
        sim.commit(world.repo, f"c{i}", {"f": str(i).encode()})
    repo = git.open_repo(world.repo)
    whole = audit.audit(repo, pol, signer="alice")
    assert len(whole.entries) == 6
    for size in (1, 2, 5):
        monkeypatch.setattr(audit, "_BATCH", size)
        assert audit.audit(repo, pol, signer="alice") == whole
