"""The policy chain (DESIGN §7) end to end: real git, real gpg, the real CLI."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from testing import gpgkeys, sim
from wotr import chain, chainstore
from wotr import claim as claim_mod
from wotr import policy as policy_mod


def write_policy(
    directory: Path,
    parties: list[sim.Party],
    threshold: int,
    serial: int,
    update: dict[str, Any] | None = None,
) -> Path:
    (directory / "keys").mkdir(parents=True, exist_ok=True)
    for old in (directory / "keys").iterdir():
        old.unlink()
    signers = []
    for p in parties:
        (directory / "keys" / f"{p.name}.asc").write_bytes(gpgkeys.public_armored(p.key))
        signers.append(
            {"name": p.name, "keys": [f"keys/{p.name}.asc"], "fingerprints": [p.fingerprint]}
        )
    doc: dict[str, Any] = {"version": 1, "serial": serial, "threshold": threshold}
    if update:
        doc["update"] = update
    doc["signers"] = signers
    path = directory / "threshold.toml"
    path.write_bytes(tomli_w.dumps(doc).encode())
    if (directory / ".git").exists():
        sim.commit(directory, f"policy {serial}")
    return path


@pytest.fixture
def project(world: sim.World, keys: Any) -> sim.World:
    """alice, bob, carol (threshold 2) as serial 1, committed and pinned; dave waits."""
    world.parties["dave"] = sim.Party("dave", keys.get("dave"), None)
    three = [world.parties[n] for n in ("alice", "bob", "carol")]
    write_policy(world.repo, three, 2, 1)
    res = world.run("init")
    assert res.returncode == 0, res.stderr
    return world


def serial2(world: sim.World) -> Path:
    """carol rotates to dave's key (here: carol leaves, dave joins)."""
    parties = [world.parties[n] for n in ("alice", "bob", "dave")]
    return write_policy(world.repo, parties, 2, 2)


def verify_repo(world: sim.World, *args: str) -> Any:
    return world.run("verify", "--json", *args)


def test_rotation_takes_effect_with_quorum(project: sim.World) -> None:
    w = project
    art = w.root / "dist" / "app.tar.gz"
    serial2(w)
    res = w.run("policy", "propose", party="alice")
    assert res.returncode == 0, res.stderr
    assert "pending" in res.stdout
    # one signature of two needed: serial 1 still in effect, dave does not count
    w.sign("alice", art)
    assert w.run("sign", "--allow-uncounted", art, party="dave").returncode == 0
    doc = json.loads(verify_repo(w, str(art)).stdout)
    assert doc["verified"] is False
    assert doc["policy_serial"] == 1
    res = w.run("policy", "sign", party="bob")
    assert res.returncode == 0, res.stderr
    assert "now in effect" in res.stdout
    out = verify_repo(w, str(art))
    doc = json.loads(out.stdout)
    assert doc["verified"] is True, out.stdout
    assert doc["policy_serial"] == 2
    shown = json.loads(w.run("policy", "show", "--json").stdout)
    assert shown["in_effect"]["serial"] == 2
    assert shown["steps"][0]["signed_by"] == ["alice", "bob"]


def test_update_signed_by_too_few(project: sim.World) -> None:
    w = project
    serial2(w)
    assert w.run("policy", "propose", party="alice").returncode == 0
    assert json.loads(w.run("policy", "show", "--json").stdout)["in_effect"]["serial"] == 1
    # signing twice with one key is one vote
    res = w.run("policy", "sign", party="alice")
    assert res.returncode == 0, res.stderr
    shown = json.loads(w.run("policy", "show", "--json").stdout)
    assert shown["in_effect"]["serial"] == 1
    assert shown["pending"][0]["signed_by"] == ["alice"]


def test_update_signed_by_key_the_update_adds_or_foreign(project: sim.World) -> None:
    """dave is only in policy 2: his signature on the step to 2 does not count (signers of
    another serial), nor does it count after he is added."""
    w = project
    serial2(w)
    assert w.run("policy", "propose", party="alice").returncode == 0
    res = w.run("policy", "sign", party="dave")
    assert res.returncode == 0, res.stderr
    shown = json.loads(w.run("policy", "show", "--json").stdout)
    assert shown["in_effect"]["serial"] == 1
    assert shown["pending"][0]["signed_by"] == ["alice"]


def test_update_signers_table_limits_who_counts(project: sim.World) -> None:
    w = project
    three = [w.parties[n] for n in ("alice", "bob", "carol")]
    # serial 2 says only alice and carol may sign updates, 2 of them
    write_policy(w.repo, three, 2, 2, {"threshold": 2, "signers": ["alice", "carol"]})
    assert w.run("policy", "propose", party="alice").returncode == 0
    assert w.run("policy", "sign", party="bob").returncode == 0
    assert json.loads(w.run("policy", "show", "--json").stdout)["in_effect"]["serial"] == 2
    # serial 3 (removing carol) signed by alice and bob: bob may not sign updates of 2
    write_policy(w.repo, three[:2], 2, 3)
    assert w.run("policy", "propose", party="alice").returncode == 0
    assert w.run("policy", "sign", party="bob").returncode == 0
    shown = json.loads(w.run("policy", "show", "--json").stdout)
    assert shown["in_effect"]["serial"] == 2
    assert any("may not sign updates" in r["reason"] for r in shown["pending"][0]["rejected"])
    assert w.run("policy", "sign", party="carol").returncode == 0
    assert json.loads(w.run("policy", "show", "--json").stdout)["in_effect"]["serial"] == 3


def test_removed_key_stops_counting_and_cannot_sign_next_step(project: sim.World) -> None:
    w = project
    art = w.root / "dist" / "app.tar.gz"
    two = [w.parties[n] for n in ("alice", "bob")]
    write_policy(w.repo, two, 2, 2)  # carol (compromised) removed
    assert w.run("policy", "propose", party="alice").returncode == 0
    assert w.run("policy", "sign", party="bob").returncode == 0
    w.sign("alice", art)
    assert w.run("sign", "--allow-uncounted", art, party="carol").returncode == 0
    doc = json.loads(verify_repo(w, str(art)).stdout)
    assert doc["verified"] is False and doc["policy_serial"] == 2
    # carol (removed by 2) and alice try to make serial 3 with carol back: carol's vote is void
    write_policy(w.repo, [w.parties[n] for n in ("alice", "carol")], 1, 3)
    assert w.run("policy", "propose", party="carol").returncode == 0
    assert w.run("policy", "sign", party="alice").returncode == 0
    shown = json.loads(w.run("policy", "show", "--json").stdout)
    assert shown["in_effect"]["serial"] == 2


def test_wrong_serial_refused_at_propose(project: sim.World) -> None:
    w = project
    parties = [w.parties[n] for n in ("alice", "bob", "dave")]
    write_policy(w.repo, parties, 2, 3)
    res = w.run("policy", "propose", party="alice")
    assert res.returncode == 2
    assert "serial = 2" in res.stderr


def _forge_step(
    w: sim.World,
    parties: list[str],
    serial: int,
    threshold: int,
    previous: str,
    signers: list[str],
    sign_serial: int | None = None,
) -> chainstore.Proposal:
    """Write a proposal straight into refs/wotr/policy, as anyone with push access could."""
    tmp = w.root / f"forge{serial}-{'-'.join(parties)}-{threshold}"
    path = write_policy(tmp, [w.parties[n] for n in parties], threshold, serial)
    pol = policy_mod.load(path)
    files = {n: (tmp / n).read_bytes() for n, _ in chain.chain_digests(pol)}
    p = chainstore.proposal(files)
    payload = chain.statement(p.digests(), sign_serial or serial, previous)
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


def _add(w: sim.World, p: chainstore.Proposal) -> None:
    from wotr import git

    chainstore.add(git.open_repo(w.repo), p, "forged")


def _digest1(w: sim.World) -> str:
    return chain.policy_digest(policy_mod.load(w.repo / "threshold.toml"))


def test_fork_fails_closed(project: sim.World) -> None:
    w = project
    d1 = _digest1(w)
    _add(w, _forge_step(w, ["alice", "bob"], 2, 2, d1, ["alice", "bob"]))
    _add(w, _forge_step(w, ["alice", "bob", "dave"], 2, 2, d1, ["alice", "bob"]))
    res = w.run("verify", "--digest", "sha256:" + "0" * 64)
    assert res.returncode == 2
    assert "fork" in res.stderr


def test_a_fork_below_the_serial_held_is_ignored(project: sim.World) -> None:
    """Once an installer moved to serial 2, a second serial 2 signed later by serial 1's keys
    (keys serial 2 may have removed as compromised) neither refuses nor moves it."""
    w = project
    art = w.root / "dist" / "app.tar.gz"
    d1 = _digest1(w)
    _add(w, _forge_step(w, ["alice", "bob"], 2, 2, d1, ["alice", "bob"]))
    doc = json.loads(verify_repo(w, str(art)).stdout)
    assert doc["policy_serial"] == 2  # moved: serial 2 is alice + bob
    # carol (removed by serial 2) and alice sign another serial 2 that keeps carol
    _add(w, _forge_step(w, ["alice", "carol"], 2, 1, d1, ["alice", "carol"]))
    assert w.run("sign", "--allow-uncounted", art, party="carol").returncode == 0
    res = verify_repo(w, str(art))
    assert res.returncode == 1, res.stderr  # not a refusal (2): carol's claim does not count
    doc = json.loads(res.stdout)
    assert doc["policy_serial"] == 2 and doc["verified"] is False
    assert "carol" not in doc["artifacts"][0]["signers"]


def test_wrong_previous_and_replayed_serial(project: sim.World) -> None:
    w = project
    d1 = _digest1(w)
    # signed by enough, but naming another previous policy
    _add(w, _forge_step(w, ["alice", "bob"], 2, 2, "ab" * 32, ["alice", "bob", "carol"]))
    # a statement for serial 5 over a policy whose TOML says 2
    _add(w, _forge_step(w, ["alice"], 2, 1, d1, ["alice", "bob"], sign_serial=5))
    # a replayed old policy: serial 1 again, signed
    _add(w, _forge_step(w, ["carol"], 1, 1, d1, ["alice", "bob"]))
    shown = json.loads(w.run("policy", "show", "--json").stdout)
    assert shown["in_effect"]["serial"] == 1
    assert len(shown["pending"]) == 2
    assert all(not p["valid"] for p in shown["pending"])


def test_flood_of_fake_updates_fails_closed(project: sim.World, monkeypatch: Any) -> None:
    w = project
    d1 = _digest1(w)
    p = _forge_step(w, ["alice", "bob"], 2, 2, d1, ["alice"])
    good = p.lines[0]
    env = claim_mod.parse_line(good)
    junk = []
    for i in range(chainstore.MAX_CHECKED_PER_STEP + 5):
        bad = bytearray(env.sig)
        bad[-3] ^= (i % 255) + 1
        bad[-4] ^= i // 255
        junk.append(claim_mod.Envelope(env.payload, bytes(bad), env.keyid).line().rstrip())
    _add(w, chainstore.proposal(dict(p.files), [*junk, good]))
    res = w.run("verify", "--digest", "sha256:" + "0" * 64)
    assert res.returncode == 2, res.stderr
    assert "flooded" in res.stderr


def test_chain_travels_with_fetch_and_push(project: sim.World, short_tmp: Path) -> None:
    w = project
    remote = short_tmp / "remote.git"
    sim.git(short_tmp, "init", "-q", "--bare", str(remote))
    sim.git(w.repo, "remote", "add", "origin", str(remote))
    sim.git(w.repo, "push", "-q", "origin", "HEAD:refs/heads/main")
    # an installer clones now and pins serial 1
    clone = short_tmp / "installer"
    sim.git(short_tmp, "clone", "-q", "-b", "main", str(remote), str(clone))
    assert w.run("init", cwd=clone).returncode == 0
    serial2(w)
    assert w.run("policy", "propose", party="alice").returncode == 0
    assert w.run("policy", "sign", party="bob").returncode == 0
    art = w.root / "dist" / "app.tar.gz"
    w.sign("alice", art)
    w.sign("dave", art)
    sim.git(w.repo, "push", "-q", "origin", "HEAD:refs/heads/main")
    assert w.run("push").returncode == 0
    sim.git(clone, "fetch", "-q", "origin")  # the release's commit, as any git user gets it
    res = w.run("fetch", cwd=clone)
    assert res.returncode == 0, res.stderr
    out = w.run("verify", "--json", "--rev", w.head(), str(art), cwd=clone)
    assert out.stdout, out.stderr
    doc = json.loads(out.stdout)
    assert doc["verified"] is True, out.stdout + out.stderr
    assert doc["policy_serial"] == 2
    # the pin moved forward: a re-init with the (old) working-tree file does not move it back
    assert w.run("init", cwd=clone).returncode == 0
    assert (
        json.loads(w.run("verify", "--json", "--rev", w.head(), str(art), cwd=clone).stdout)[
            "policy_serial"
        ]
        == 2
    )


def strip_chain(path: Path) -> None:
    """The bundle at ``path`` without the policy chain it carries (a v1 bundle)."""
    doc = json.loads(path.read_bytes())
    doc.pop("policy_chain")
    doc["format"] = "https://wotr.dev/bundle/v1"
    path.write_text(json.dumps(doc))


def test_installer_without_repository_follows_chain_file(
    project: sim.World, short_tmp: Path
) -> None:
    w = project
    etc = short_tmp / "etc"
    etc.mkdir()
    shutil.copy(w.repo / "threshold.toml", etc / "policy.toml")
    shutil.copytree(w.repo / "keys", etc / "keys")
    state = short_tmp / "state"
    env = {"WOTR_POLICY_STATE": str(state)}
    res = w.run("policy", "pin", "--policy", etc / "policy.toml", cwd=short_tmp, env=env)
    assert res.returncode == 0, res.stderr
    serial2(w)
    assert w.run("policy", "propose", party="alice").returncode == 0
    assert w.run("policy", "sign", party="bob").returncode == 0
    art = w.root / "dist" / "app.tar.gz"
    w.sign("alice", art)
    w.sign("dave", art)
    bundles = short_tmp / "bundles"
    bundles.mkdir()
    assert w.run("export", "-o", bundles / "app.wotr").returncode == 0
    strip_chain(bundles / "app.wotr")  # this test is about chain files
    args: list[str | Path] = ["verify", "--json", "--policy", etc / "policy.toml"]
    args += ["--bundles", bundles, art]
    doc = json.loads(w.run(*args, cwd=short_tmp, env=env).stdout)
    assert doc["verified"] is False  # dave does not count under serial 1
    assert w.run("policy", "export", "-o", bundles / "p.wotr-policy").returncode == 0
    out = w.run(*args, cwd=short_tmp, env=env)
    doc = json.loads(out.stdout)
    assert doc["verified"] is True, out.stdout + out.stderr
    # remembered: without the chain file it stays at serial 2
    (bundles / "p.wotr-policy").unlink()
    assert json.loads(w.run(*args, cwd=short_tmp, env=env).stdout)["verified"] is True


def test_policy_digest_golden_vector() -> None:
    files = [("threshold.toml", "a" * 64), ("keys/alice.asc", "b" * 64)]
    assert chain.listing(files) == (
        b"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb  keys/alice.asc\n"
        b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa  threshold.toml\n"
    )
    assert chain.digest_of(files) == (
        "eab97b6d08a181dcbf259a567fd2209d56568eb0fc82fa891e578233aaf4b8d3"
    )
    assert chain.statement(files, 2, "c" * 64) == (
        b'{"_type":"https://in-toto.io/Statement/v1","predicate":{"previous":"'
        + b"c" * 64
        + b'","serial":2},"predicateType":"https://wotr.dev/policy-update/v1","subject":'
        b'[{"digest":{"sha256":"' + b"b" * 64 + b'"},"name":"keys/alice.asc"},'
        b'{"digest":{"sha256":"' + b"a" * 64 + b'"},"name":"threshold.toml"}]}'
    )


def test_proposal_cannot_make_wotr_read_local_files(project: sim.World) -> None:
    """keys = ["/dev/zero"] (or any path outside the proposal) is refused before reading."""
    w = project
    d1 = _digest1(w)
    p = _forge_step(w, ["alice", "bob"], 2, 2, d1, ["alice", "bob"])
    files = dict(p.files)
    files["threshold.toml"] = files["threshold.toml"].replace(
        b'"keys/alice.asc"', b'"' + str(w.root).encode() + b'"'
    )
    _add(w, chainstore.proposal(files, p.lines))
    shown = json.loads(w.run("policy", "show", "--json").stdout)
    assert shown["in_effect"]["serial"] == 1
    assert any("which it does not carry" in x for x in shown["problems"]), shown["problems"]


def test_hostile_tree_entries_are_skipped(project: sim.World) -> None:
    """Paths outside the layout, a symbolic link, a wrong digest name: skipped and reported."""
    w = project
    blob = sim.git(w.repo, "hash-object", "-w", "--stdin", input=b"x")
    d = "ab" * 32
    tree = sim.git(
        w.repo,
        "mktree",
        input=f"100644 blob {blob}\tjunk\n".encode(),
    )
    inner = sim.git(
        w.repo,
        "mktree",
        input=(f"120000 blob {blob}\tsignatures\n").encode(),
    )
    mid = sim.git(w.repo, "mktree", input=f"040000 tree {inner}\t{d}\n".encode())
    top = sim.git(
        w.repo,
        "mktree",
        input=f"040000 tree {mid}\t2\n100644 blob {blob}\tREADME\n".encode(),
    )
    del tree
    commit = sim.git(w.repo, "commit-tree", top, "-m", "hostile")
    sim.git(w.repo, "update-ref", "refs/wotr/policy", commit)
    res = w.run("policy", "show", "--json")
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)
    assert shown["in_effect"]["serial"] == 1
    assert any("not part of a proposal" in x for x in shown["problems"])


def test_proposal_flood_over_the_bound_fails_closed(project: sim.World) -> None:
    """A valid serial 2 (removing carol) sits in refs/wotr/policy among more junk proposals than
    MAX_PROPOSALS: the store is not read, and verify must refuse, not stay at serial 1 where the
    removed key still counts (a bound may turn a yes into a no, never hide a newer policy)."""
    from wotr import git

    w = project
    art = w.root / "dist" / "app.tar.gz"
    d1 = _digest1(w)
    step = _forge_step(w, ["alice", "bob"], 2, 2, d1, ["alice", "bob"])
    junk = [
        chainstore.proposal({"threshold.toml": f"serial = 9\n# {i}\n".encode()})
        for i in range(chainstore.MAX_PROPOSALS + 1)
    ]
    repo = git.open_repo(w.repo)
    chainstore.write(repo, chainstore.Store((step, *junk)), chainstore.tip(repo), [], "flood")
    w.sign("alice", art)
    w.sign("carol", art)
    res = verify_repo(w, str(art))
    assert res.returncode == 2, res.stdout
    assert "flooded" in res.stderr


def test_truncated_listing_is_not_read_as_complete(project: sim.World, monkeypatch: Any) -> None:
    """git may finish writing a listing just over the cap before it is killed (exit 0, output
    cut): the cut-off entries (a valid step's files) must leave the store incomplete, not vanish."""
    from wotr import _proc, git

    w = project
    step = _forge_step(w, ["alice", "bob"], 2, 2, _digest1(w), ["alice", "bob"])
    _add(w, step)
    real = git.run

    def cut(repo: Any, *args: str, **kw: Any) -> Any:
        res = real(repo, *args, **{k: v for k, v in kw.items() if k != "max_stdout"})
        if args[:1] == ("ls-tree",):
            return _proc.Result(0, res.stdout[: len(res.stdout) // 2], b"", True)
        return res

    monkeypatch.setattr(git, "run", cut)
    store = chainstore.read(git.open_repo(w.repo))
    assert not store.complete


def test_installer_chain_files_beyond_the_cap_fail_closed(
    project: sim.World, short_tmp: Path
) -> None:
    """64 junk .wotr-policy files sorting first must not hide the real chain file (serial 2,
    which removes carol): verify refuses instead of staying at serial 1 where carol counts."""
    w = project
    etc = short_tmp / "etc"
    etc.mkdir()
    shutil.copy(w.repo / "threshold.toml", etc / "policy.toml")
    shutil.copytree(w.repo / "keys", etc / "keys")
    state = short_tmp / "state"
    env = {"WOTR_POLICY_STATE": str(state)}
    assert w.run("policy", "pin", "--policy", etc / "policy.toml", cwd=short_tmp, env=env)
    write_policy(w.repo, [w.parties[n] for n in ("alice", "bob")], 2, 2)
    assert w.run("policy", "propose", party="alice").returncode == 0
    assert w.run("policy", "sign", party="bob").returncode == 0
    art = w.root / "dist" / "app.tar.gz"
    w.sign("alice", art)
    assert w.run("sign", "--allow-uncounted", art, party="carol").returncode == 0
    bundles = short_tmp / "bundles"
    bundles.mkdir()
    assert w.run("export", "-o", bundles / "app.wotr").returncode == 0
    strip_chain(bundles / "app.wotr")  # this test is about chain files
    assert w.run("policy", "export", "-o", bundles / "zz.wotr-policy").returncode == 0
    for i in range(64):
        (bundles / f"{i:04}.wotr-policy").write_text("{}")
    args: list[str | Path] = ["verify", "--json", "--policy", etc / "policy.toml"]
    out = w.run(*args, "--bundles", bundles, art, cwd=short_tmp, env=env)
    assert out.returncode != 0, out.stdout


def test_ssh_signer_votes_on_a_step(project: sim.World) -> None:
    """DESIGN §9: SSH signers work everywhere, so also for policy updates. erin (SSH only) and
    alice sign serial 3 of a policy whose update threshold is 2: it takes effect; erin's
    signature alone, or a copy of it, does not make it; an SSH key outside the policy counts
    for nothing."""
    from testing import sshkeys

    w = project
    erin = sshkeys.make_key("erin")
    mallory = sshkeys.make_key("mallory")
    try:
        parties = [w.parties[n] for n in ("alice", "bob")]
        path = write_policy(w.repo, parties, 2, 1)
        doc = tomllib.loads(path.read_text())
        doc["signers"].append({"name": "erin", "ssh": [erin.public_line]})
        path.write_bytes(tomli_w.dumps(doc).encode())
        sim.commit(w.repo, "erin joins")
        assert w.run("init").returncode == 0
        d1 = _digest1(w)
        step = _forge_step(w, ["alice", "bob"], 2, 2, d1, ["alice"])
        payload = chain.statement(step.digests(), 2, d1)

        def ssh_line(key: Any) -> bytes:
            sig = sshkeys.sign_binary(key, claim_mod.pae(payload))
            env = claim_mod.Envelope(payload=payload, sig=sig, keyid=key.fingerprint)
            return env.line().rstrip(b"\n")

        _add(w, chainstore.proposal(dict(step.files), [ssh_line(mallory)]))
        assert json.loads(w.run("policy", "show", "--json").stdout)["in_effect"]["serial"] == 1
        _add(w, chainstore.proposal(dict(step.files), [*step.lines, ssh_line(erin)]))
        shown = json.loads(w.run("policy", "show", "--json").stdout)
        assert shown["in_effect"]["serial"] == 2, shown
        assert shown["steps"][-1]["signed_by"] == ["alice", "erin"]
    finally:
        sshkeys.remove(erin)
        sshkeys.remove(mallory)


def test_policy_sign_with_an_ssh_key(project: sim.World) -> None:
    """`git wotr policy sign --key <ssh key>` makes an SSH vote (DESIGN §9), and it counts."""
    from testing import sshkeys

    w = project
    erin = sshkeys.make_key("erin")
    try:
        path = write_policy(w.repo, [w.parties[n] for n in ("alice", "bob")], 2, 1)
        doc = tomllib.loads(path.read_text())
        doc["signers"].append({"name": "erin", "ssh": [erin.public_line]})
        path.write_bytes(tomli_w.dumps(doc).encode())
        sim.commit(w.repo, "erin joins")
        assert w.run("init").returncode == 0
        write_policy(w.repo, [w.parties[n] for n in ("alice", "bob")], 2, 2)
        assert w.run("policy", "propose", party="alice").returncode == 0
        res = w.run("policy", "sign", "--key", str(erin.public), env={"HOME": str(erin.home)})
        assert res.returncode == 0, res.stderr
        assert "now in effect" in res.stdout, res.stdout
    finally:
        sshkeys.remove(erin)


def test_push_after_remote_chain_commit_with_same_content(
    project: sim.World, short_tmp: Path
) -> None:
    """The remote's refs/wotr/policy holds the same proposals under another commit (two clones
    added the same signature, or anyone re-committed it): fetch gains nothing, but push must
    still succeed (merge the histories), or claims can never be pushed (lost for others)."""
    w = project
    remote = short_tmp / "remote.git"
    sim.git(short_tmp, "init", "-q", "--bare", str(remote))
    sim.git(w.repo, "remote", "add", "origin", str(remote))
    sim.git(w.repo, "push", "-q", "origin", "HEAD:refs/heads/main")
    serial2(w)
    assert w.run("policy", "propose", party="alice").returncode == 0
    assert w.run("push").returncode == 0
    tree = sim.git(remote, "rev-parse", "refs/wotr/policy^{tree}")
    other = sim.git(remote, "commit-tree", tree, "-m", "same content, another commit")
    sim.git(remote, "update-ref", "refs/wotr/policy", other)
    w.sign("alice", w.root / "dist" / "app.tar.gz")
    res = w.run("push")
    assert res.returncode == 0, res.stderr
    assert sim.git(remote, "notes", "--ref=refs/notes/wotr", "list").strip()
    # the same proposals one commit on: fetch follows it, no merge commit of its own
    tip = sim.git(remote, "rev-parse", "refs/wotr/policy")
    tree = sim.git(remote, "rev-parse", "refs/wotr/policy^{tree}")
    on = sim.git(remote, "commit-tree", tree, "-p", tip, "-m", "one on")
    sim.git(remote, "update-ref", "refs/wotr/policy", on)
    assert w.run("fetch").returncode == 0
    assert sim.git(w.repo, "rev-parse", "refs/wotr/policy") == on


def test_securing_a_worktree_pin_never_reads_a_fifo(project: sim.World) -> None:
    """The pin names the working-tree threshold.toml (init before any chain existed). A chain
    then arrives and the project's threshold.toml is now a FIFO (attacker content): following
    the chain must not hang (nor read /dev/zero into memory) while copying the pinned files."""
    import os
    import subprocess
    import sys

    w = project
    _add(w, chainstore.proposal({"threshold.toml": b"serial = 9\n"}))
    (w.repo / "threshold.toml").unlink()
    os.mkfifo(w.repo / "threshold.toml")
    try:
        res = subprocess.run(
            [sys.executable, "-m", "wotr", "verify", "--digest", "sha256:" + "0" * 64],
            cwd=w.repo,
            env=sim.base_env(None),
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("verify hung reading a FIFO at threshold.toml")
    assert res.returncode == 1, res.stderr  # the pinned copy kept by init is used: no claims


def test_a_fifo_chain_file_does_not_hang(tmp_path: Path) -> None:
    """A FIFO named *.wotr-policy in a bundles directory others can write: ignored, no hang."""
    import os
    import threading

    from wotr import policycmd

    fifo = tmp_path / "x.wotr-policy"
    os.mkfifo(fifo)
    got: list[Any] = []
    t = threading.Thread(target=lambda: got.append(policycmd.read_chain_file(fifo)), daemon=True)
    t.start()
    t.join(20)
    if not got:
        with open(fifo, "wb"):  # release the reader
            pass
        pytest.fail("reading a FIFO chain file hung")
    assert got[0].proposals == () and got[0].problems


def test_a_file_and_a_directory_of_one_name_is_skipped_not_a_crash(project: sim.World) -> None:
    """git mktree accepts a tree naming `keys` twice (a blob and a tree): the proposal built
    from it held both `keys` and `keys/a.asc`, and writing the union (fetch, sign) crashed."""
    import hashlib

    from wotr import git

    w = project
    files = {"threshold.toml": b"serial = 2\n", "keys": b"k", "keys/a.asc": b"a"}
    dig = chain.digest_of((n, hashlib.sha256(v).hexdigest()) for n, v in files.items())
    b = {n: sim.git(w.repo, "hash-object", "-w", "--stdin", input=v) for n, v in files.items()}
    keysdir = sim.git(w.repo, "mktree", input=f"100644 blob {b['keys/a.asc']}\ta.asc\n".encode())
    listing = (
        f"100644 blob {b['keys']}\tkeys\n040000 tree {keysdir}\tkeys\n"
        f"100644 blob {b['threshold.toml']}\tthreshold.toml\n"
    )
    tree = sim.git(w.repo, "mktree", input=listing.encode())
    for name in ("files", dig, "2"):
        tree = sim.git(w.repo, "mktree", input=f"040000 tree {tree}\t{name}\n".encode())
    sim.git(
        w.repo, "update-ref", "refs/wotr/policy", sim.git(w.repo, "commit-tree", tree, "-m", "x")
    )
    repo = git.open_repo(w.repo)
    store = chainstore.read(repo)
    assert store.proposals == () and any("also a directory" in x for x in store.problems)
    chainstore.write(repo, store, chainstore.tip(repo), [], "rewrite")  # no crash
    assert w.run("policy", "show").returncode == 0


def test_a_verify_racing_another_in_the_repository_never_moves_the_pin_back(
    project: sim.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two verifies in one clone while a fetch brings serial 3: B read the pin (serial 1) and
    the chain as it was (up to serial 2); A follows to serial 3 and pins it; B must not write
    serial 2 over it (carol, whom serial 3 removes, would count again)."""
    from wotr import git, policycmd

    w = project
    d1 = _digest1(w)
    p2 = _forge_step(w, ["alice", "bob"], 2, 2, d1, ["alice", "bob"])
    d2 = chain.policy_digest(policy_mod.load(w.root / "forge2-alice-bob-2" / "threshold.toml"))
    p3 = _forge_step(w, ["alice", "bob"], 3, 1, d2, ["alice", "bob"])
    for p in (p2, p3):
        _add(w, p)
    repo = git.open_repo(w.repo)
    real_read, real_follow = chainstore.read, chainstore.follow
    older = chainstore.Store((p2,))

    def racing(start: policy_mod.Policy, store: chainstore.Store) -> chainstore.Followed:
        monkeypatch.setattr(chainstore, "read", real_read)
        monkeypatch.setattr(chainstore, "follow", real_follow)
        followed_a = policycmd.refresh(repo)  # A
        assert followed_a is not None and followed_a.current.serial == 3
        return real_follow(start, store)  # B, from serial 1 over the older chain: serial 2

    monkeypatch.setattr(chainstore, "read", lambda _repo: older)
    monkeypatch.setattr(chainstore, "follow", racing)
    followed_b = policycmd.refresh(repo)
    assert followed_b is not None and followed_b.current.serial == 3
    assert policycmd.pinned(repo).serial == 3
