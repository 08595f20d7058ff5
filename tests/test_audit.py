"""``git wotr audit`` (DESIGN §8): real git, real gpg, the real CLI."""

from __future__ import annotations

import json
from typing import Any

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


def _oracle(pol: policy.Policy, repo: git.Repo, name: str) -> set[audit.Entry]:
    """What audit must say, question by question through verify.check (no batching)."""
    from wotr import verify

    tags = audit._tags(repo)
    out = set()
    for blob, commit in audit._noted(repo):
        note = git.check(repo, "cat-file", "blob", blob).encode() + b"\n"
        tree = git.check(repo, "rev-parse", f"{commit}^{{tree}}")
        for tag in (None, *sorted(tags.get(commit, ()))):
            checked = verify.check(pol, note, verify.Context(commit, tree, tag))
            mine = [c for c in checked.counted if c.signer == name]
            if mine:
                out.add(audit._entry(pol, checked, mine, name, commit, tag))
    return out


def test_many_tags_on_one_commit_check_its_note_once(
    world: sim.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every tag on a noted commit is a question, but the note's signatures do not depend on
    the tag: they go to gpg once per commit, not once per tag (a remote that serves thousands
    of tags on a commit with a flooded note would multiply audit's gpg work by them). The
    answers are still those of verify asked about each tag."""
    from wotr import verify

    art = world.root / "dist" / "app.tar.gz"
    pol = policy.load(world.policy(2))
    tags = [f"v{i}" for i in range(6)]
    for t in tags:
        sim.git(world.repo, "tag", t)
    world.sign("alice", art)
    world.sign("bob", art)
    for t in tags[:3]:
        world.sign("alice", art, rev=t)
    world.sign("bob", art, rev=tags[0])
    world.sign("carol", art, rev=tags[1])
    lines = len(sim.read_note(world.repo, world.head()).splitlines())
    sent: list[int] = []
    real = verify._check_jobs

    def counting(p: policy.Policy, jobs: list[tuple[bytes, list[bytes]]]) -> Any:
        sent.append(sum(len(sigs) for _, sigs in jobs))
        return real(p, jobs)

    monkeypatch.setattr(verify, "_check_jobs", counting)
    repo = git.open_repo(world.repo)
    got = audit.audit(repo, pol, signer="alice")
    assert sum(sent) == lines, sent
    monkeypatch.setattr(verify, "_check_jobs", real)
    assert set(got.entries) == _oracle(pol, repo, "alice")
    assert {e.tag for e in got.entries} == {None, *(f"refs/tags/{t}" for t in tags[:3])}
    verified = {e.tag: (e.verified, e.verified_without) for e in got.entries}
    assert verified["refs/tags/v0"] == (True, False)  # alice + bob on v0
    assert verified["refs/tags/v1"] == (True, False)  # alice + carol on v1
    assert verified["refs/tags/v2"] == (False, False)  # alice alone on v2


def test_audit_holds_a_bounded_amount_of_note_bytes(
    world: sim.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notes that name their commit and the signer's key (forgeable: no key needed) are not all
    kept in memory until gpg sees them: each batch reads its own notes again, and a batch holds
    a bounded number of note bytes (a note may be 64 MiB; 30,000 such notes would not fit)."""
    import base64
    import tracemalloc

    pol_path = world.policy(2)
    pol = policy.load(pol_path)
    pad = b"#" * (2 << 20) + b"\n"  # a line that counts for nothing
    for i in range(12):
        sim.commit(world.repo, f"c{i}", {"f": str(i).encode()})
        line = sim.envelope_line(world.parties["alice"].key, world.claim({"a": b"x"}))
        doc = json.loads(line)
        sig = base64.b64decode(doc["signatures"][0]["sig"])
        bad = {**doc["signatures"][0], "sig": base64.b64encode(sig[:-1] + b"?").decode()}
        forged = json.dumps({**doc, "signatures": [bad]}).encode() + b"\n"  # BADSIG, no key
        sim.write_note(world.repo, world.head(), forged + pad)
    repo = git.open_repo(world.repo)
    monkeypatch.setattr(audit, "_BATCH_BYTES", 5 << 20, raising=False)
    tracemalloc.start()
    try:
        got = audit.audit(repo, pol, signer="alice")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got.checked == 12 and got.entries == ()
    assert peak < 16 << 20, peak  # 12 notes of 2 MiB held at once would be 24 MiB and more


def test_a_tag_of_a_tag_is_audited_as_verify_counts_it(world: sim.World) -> None:
    """A release tag that points at another annotated tag (git tag -a outer inner): verify
    --rev outer counts claims built for refs/tags/outer on the commit; audit lists them too."""
    art = world.root / "dist" / "app.tar.gz"
    pol = policy.load(world.policy(2))
    sim.git(world.repo, "tag", "-a", "-m", "inner", "inner")
    sim.git(world.repo, "tag", "-a", "-m", "outer", "outer", "inner")
    for p in ("alice", "bob"):
        world.sign(p, art, rev="outer")
    assert world.verify("--rev", "outer", art, policy=None).returncode == 0
    repo = git.open_repo(world.repo)
    got = audit.audit(repo, pol, signer="alice")
    assert {e.tag for e in got.entries} == {None, "refs/tags/outer"}
    assert set(got.entries) == _oracle(pol, repo, "alice")
