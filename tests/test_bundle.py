"""Offline bundles: export, strict reading, verify outside a repository, sidecars, a directory
searched by digest, one-commit quorums, and the generic hooks/verify-file."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from testing import sim
from wotr import bundle, notes

ROOT = Path(__file__).resolve().parent.parent
VECTOR = ROOT / "tests" / "vectors" / "bundle-v1.wotr"
VERIFY_FILE = ROOT / "hooks" / "verify-file"


def one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("Error: "), res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


def export(world: sim.World, out: Path, rev: str = "HEAD") -> Path:
    res = world.run("export", "--rev", rev, "-o", out)
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture
def away(world: sim.World) -> Path:
    """A directory outside any git repository (world.root itself is not one)."""
    path = world.root / "installer"
    path.mkdir()
    return path


@pytest.fixture
def art(world: sim.World) -> Path:
    return world.root / "dist" / "app.tar.gz"


def signed_by(world: sim.World, art: Path, *names: str, rev: str = "HEAD") -> None:
    for name in names:
        world.sign(name, art, rev=rev)


# --- export ----------------------------------------------------------------------------------


def test_export_is_deterministic_and_carries_the_commit_object(world: sim.World, art: Path) -> None:
    signed_by(world, art, "alice", "bob")
    a = export(world, world.root / "a.wotr")
    res = world.run("export")  # stdout
    assert res.returncode == 0, res.stderr
    assert res.stdout.encode() == a.read_bytes()
    assert "exported 2 claim(s)" in res.stderr
    doc = json.loads(a.read_bytes())
    assert doc["commit"] == world.head() and doc["tag"] is None
    raw = base64.b64decode(doc["commit_object"])
    assert (
        raw
        == subprocess.run(
            ["git", "cat-file", "commit", "HEAD"], cwd=world.repo, capture_output=True, check=True
        ).stdout
    )
    b = bundle.read(a)
    assert b.tree == world.tree()
    assert b.note() == notes.union_bytes(sim.read_note(world.repo, world.head()))
    assert [s.name for s in b.subjects] == ["app.tar.gz"]
    assert not list(world.root.glob(".a.wotr.*"))  # the temporary file was renamed


def test_export_leaves_out_garbage_and_refuses_an_empty_note(world: sim.World, art: Path) -> None:
    res = world.run("export", "-o", world.root / "x.wotr")
    assert res.returncode == 2
    assert "no claims on" in one_line_error(res)
    assert not (world.root / "x.wotr").exists()
    world.sign("alice", art)
    note = sim.read_note(world.repo, world.head())
    sim.write_note(world.repo, world.head(), note + b"garbage\n\xff\xfe\n")
    res = world.run("export", "-o", world.root / "x.wotr")
    assert res.returncode == 0, res.stderr
    assert "left out 2 line(s)" in res.stderr
    assert len(bundle.read(world.root / "x.wotr").claims) == 1


# --- verify outside a repository ---------------------------------------------------------------


def test_verify_with_bundle_outside_a_repository(world: sim.World, art: Path, away: Path) -> None:
    signed_by(world, art, "alice", "bob")
    world.policy(2)
    b = export(world, world.root / "app.wotr")
    in_repo = world.verify("--json", art)
    res = world.verify("--json", "--bundle", b, art, cwd=away)
    assert res.returncode == 0, res.stderr
    doc, ref = json.loads(res.stdout), json.loads(in_repo.stdout)
    for k in ("verified", "commit", "tag", "threshold", "policy", "dissent", "rejected"):
        assert doc[k] == ref[k], k
    assert [a["signers"] for a in doc["artifacts"]] == [["alice", "bob"]]
    text = world.verify("--bundle", b, art, cwd=away)
    assert text.returncode == 0 and text.stdout.rstrip().endswith("VERIFIED")
    # the same counting rules: --threshold 3 fails, exit 1
    res = world.verify("--threshold", "3", "--bundle", b, art, cwd=away)
    assert res.returncode == 1 and "2 of 3 required signers" in res.stdout
    # no artifact named: every name claimed in the bundle must reach the quorum
    assert world.verify("--bundle", b, cwd=away).returncode == 0


def test_sidecar_is_found_without_flags(world: sim.World, art: Path, away: Path) -> None:
    signed_by(world, art, "alice", "bob")
    world.policy(2)
    copy = away / "app.tar.gz"
    shutil.copy(art, copy)
    res = world.verify(copy, cwd=away)
    assert res.returncode == 1 and "no bundle names this digest" in res.stdout
    export(world, bundle.sidecar(copy))
    res = world.verify(copy, cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr
    # a file that does not match what was signed fails, even with the sidecar
    copy.write_bytes(b"tampered\n")
    res = world.verify(copy, cwd=away)
    assert res.returncode == 1
    assert "no trusted signer claimed this digest" in res.stdout


def test_in_a_repository_notes_are_used_unless_bundles_are_asked_for(
    world: sim.World, art: Path
) -> None:
    signed_by(world, art, "alice", "bob")
    world.policy(2)
    export(world, bundle.sidecar(art))
    sim.commit(world.repo, "later")  # HEAD has no claims now
    res = world.verify(art)
    assert res.returncode == 1
    assert "pass --bundle" in res.stderr  # the sidecar is pointed out, not silently used
    res = world.verify("--bundle", bundle.sidecar(art), art)
    assert res.returncode == 0, res.stdout + res.stderr


def test_directory_is_searched_by_digest(world: sim.World, art: Path, away: Path) -> None:
    signed_by(world, art, "alice", "bob")
    world.policy(2)
    store = world.root / "bundles"
    store.mkdir()
    export(world, store / "app-1.0.wotr")
    (store / "junk.wotr").write_text("{not json")
    renamed = away / "mirror-copy.bin"
    shutil.copy(art, renamed)
    res = world.verify("--bundles", store, renamed, cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "skipped" in res.stdout and "junk.wotr" in res.stdout
    assert (store / bundle.INDEX_NAME).exists()
    # via the environment, as an installer would configure it
    res = world.run(
        "verify",
        "--policy",
        world.policy_dir / "threshold.toml",
        renamed,
        cwd=away,
        env={"WOTR_BUNDLES": str(store)},
    )
    assert res.returncode == 0, res.stdout + res.stderr
    # --digest works the same way
    digest = "sha256:" + bundle.read(store / "app-1.0.wotr").subjects[0].sha256
    assert world.verify("--bundles", store, "--digest", digest, cwd=away).returncode == 0
    # an explicit directory that does not exist is bad input
    res = world.verify("--bundles", world.root / "nope", renamed, cwd=away)
    assert res.returncode == 2
    assert "bundles directory" in one_line_error(res)


def test_index_follows_changes_and_survives_damage(world: sim.World, art: Path) -> None:
    signed_by(world, art, "alice")
    store = world.root / "bundles"
    store.mkdir()
    export(world, store / "a.wotr")
    first = bundle.scan(store)
    assert first.count == 1 and len(first.by_digest) == 1
    # replaced file (new inode) is re-read; a removed one disappears
    other = world.artifact("other.bin", b"other\n")
    world.sign("bob", other)
    export(world, store / "a.wotr")
    assert len(bundle.scan(store).by_digest) == 2
    (store / "a.wotr").unlink()
    assert bundle.scan(store).by_digest == {}
    # a damaged index is ignored and rebuilt
    export(world, store / "a.wotr")
    (store / bundle.INDEX_NAME).write_text('{"format": 1, "files": [')
    assert len(bundle.scan(store).by_digest) == 2
    doc = json.loads((store / bundle.INDEX_NAME).read_text())
    assert doc["format"] == bundle.INDEX_FORMAT
    # a read-only directory still works (no index written)
    os.chmod(store, 0o555)
    with contextlib.suppress(PermissionError):
        (store / "a.wotr").touch()  # root may still write; either way the scan must succeed
    try:
        assert len(bundle.scan(store).by_digest) == 2
    finally:
        os.chmod(store, 0o755)


def test_signers_never_add_up_across_commits(world: sim.World, art: Path, away: Path) -> None:
    world.policy(2)
    store = world.root / "bundles"
    store.mkdir()
    world.sign("alice", art)
    export(world, store / "one.wotr")
    sim.commit(world.repo, "two")
    world.sign("bob", art)
    export(world, store / "two.wotr")
    res = world.verify("--json", "--bundles", store, art, cwd=away)
    assert res.returncode == 1, res.stdout
    doc = json.loads(res.stdout)
    assert doc["artifacts"][0]["signers"] in (["alice"], ["bob"])
    # a second bundle of the same commit is merged with the first (union of lines)
    world.sign("carol", art)  # at commit two, exported separately
    export(world, store / "two-carol.wotr")
    res = world.verify("--json", "--bundles", store, art, cwd=away)
    assert res.returncode == 0, res.stdout
    doc = json.loads(res.stdout)
    assert doc["artifacts"][0]["signers"] == ["bob", "carol"]
    assert doc["commit"] == world.head()


def test_many_files_from_several_commits_in_one_run(world: sim.World, away: Path) -> None:
    world.policy(2)
    store = world.root / "bundles"
    store.mkdir()
    one = world.artifact("one.deb", b"one\n")
    signed_by(world, one, "alice", "bob")
    export(world, store / "one.wotr")
    sim.commit(world.repo, "next")
    two = world.artifact("two.deb", b"two\n")
    signed_by(world, two, "bob", "carol")
    export(world, store / "two.wotr")
    res = world.verify("--json", "--bundles", store, one, two, cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert len(doc["commits"]) == 2 and doc["commit"] is None
    assert all(a["verified"] for a in doc["artifacts"])
    text = world.verify("--bundles", store, one, two, cwd=away)
    assert text.stdout.rstrip().endswith("VERIFIED (2 commits)")
    stray = world.artifact("stray.deb", b"stray\n")
    res = world.verify("--bundles", store, one, two, stray, cwd=away)
    assert res.returncode == 1
    assert "no bundle names this digest" in res.stdout


def test_tag_rule_holds_offline(world: sim.World, art: Path, away: Path) -> None:
    world.policy(2)
    sim.git(world.repo, "tag", "v1.0")
    signed_by(world, art, "alice", "bob")  # made for the commit, not for v1.0
    untagged = export(world, world.root / "untagged.wotr")
    tagged = export(world, world.root / "tagged.wotr", rev="v1.0")
    assert bundle.read(tagged).tag == "refs/tags/v1.0"
    assert world.verify("--bundle", untagged, art, cwd=away).returncode == 0
    res = world.verify("--bundle", tagged, art, cwd=away)
    assert res.returncode == 1 and "not refs/tags/v1.0" in res.stdout
    # the installer can insist on a tag, whatever the bundle says
    res = world.verify("--rev", "v1.0", "--bundle", untagged, art, cwd=away)
    assert res.returncode == 1
    signed_by(world, art, "alice", "bob", rev="v1.0")
    both = export(world, world.root / "both.wotr", rev="v1.0")
    assert world.verify("--bundle", both, art, cwd=away).returncode == 0
    assert world.verify("--rev", "v1.0", "--bundle", both, art, cwd=away).returncode == 0
    assert world.verify("--rev", world.head(), "--bundle", both, art, cwd=away).returncode == 0
    res = world.verify("--rev", "0" * 40, "--bundle", both, art, cwd=away)
    assert res.returncode == 1
    res = world.verify("--rev", "HEAD~1", "--bundle", both, art, cwd=away)
    assert res.returncode == 2 and "without a repository" in one_line_error(res)


def _doc(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_bytes())
    return doc


def test_claims_moved_to_another_commit_count_for_nothing(
    world: sim.World, art: Path, away: Path
) -> None:
    world.policy(2)
    signed_by(world, art, "alice", "bob")
    good = export(world, world.root / "good.wotr")
    sim.commit(world.repo, "other")
    other = subprocess.run(
        ["git", "cat-file", "commit", "HEAD"], cwd=world.repo, capture_output=True, check=True
    ).stdout
    doc = _doc(good)
    doc.update(commit=world.head(), commit_object=base64.b64encode(other).decode(), subjects=[])
    moved = world.root / "moved.wotr"
    moved.write_text(json.dumps(doc))
    res = world.verify("--bundle", moved, art, cwd=away)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "not this commit (copied?)" in res.stdout
    # saying the claims' commit while carrying another commit object is caught by hashing
    doc = _doc(good)
    doc["commit_object"] = base64.b64encode(other).decode()
    moved.write_text(json.dumps(doc))
    res = world.verify("--bundle", moved, art, cwd=away)
    assert res.returncode == 2 and "does not hash to commit" in one_line_error(res)


@pytest.mark.parametrize(
    ("damage", "expect"),
    [
        (lambda d: b"\x00garbage", "not JSON"),
        (lambda d: b"[1, 2]", "not a JSON object"),
        (lambda d: json.dumps({**d, "format": "wotr/2"}).encode(), "format is not"),
        (lambda d: json.dumps({**d, "extra": 1}).encode(), "fields are"),
        (lambda d: json.dumps({**d, "commit": "abc"}).encode(), "bad commit id"),
        (lambda d: json.dumps({**d, "commit_object": "!!"}).encode(), "not base64"),
        (lambda d: json.dumps({**d, "tag": "v1.0"}).encode(), "tag is neither"),
        (lambda d: json.dumps({**d, "claims": []}).encode(), "claims is not a non-empty list"),
        (lambda d: json.dumps({**d, "claims": ["a\nb"]}).encode(), "claims[0] is not one"),
        (lambda d: json.dumps({**d, "subjects": []}).encode(), "subjects do not match"),
        (lambda d: b"[" * 100000, "not JSON"),
    ],
)
def test_malformed_bundles_fail_with_one_line(
    world: sim.World, art: Path, away: Path, damage: Any, expect: str
) -> None:
    world.policy(1)
    world.sign("alice", art)
    good = export(world, world.root / "good.wotr")
    bad = world.root / "bad.wotr"
    bad.write_bytes(damage(_doc(good)))
    res = world.verify("--bundle", bad, art, cwd=away)
    assert res.returncode == 2, res.stdout + res.stderr
    msg = one_line_error(res)
    assert expect in msg and str(bad) in msg


def test_oversized_bundle_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.wotr"
    with open(big, "wb") as f:
        f.truncate(bundle.MAX_BUNDLE_BYTES + 10)
    with pytest.raises(bundle.BundleError, match="over"):
        bundle.read(big)


def test_garbage_lines_inside_a_bundle_are_reported_not_fatal(
    world: sim.World, art: Path, away: Path
) -> None:
    world.policy(1)
    world.sign("alice", art)
    good = export(world, world.root / "good.wotr")
    doc = _doc(good)
    doc["claims"].append('{"payloadType": "x"}')
    good.write_text(json.dumps(doc))
    res = world.verify("--json", "--bundle", good, art, cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(json.loads(res.stdout)["rejected"]) == 1


def test_policy_outside_a_repository(world: sim.World, art: Path, away: Path) -> None:
    world.sign("alice", art)
    b = export(world, world.root / "b.wotr")
    res = world.run("verify", "--bundle", b, art, cwd=away)
    if not Path("/etc/wotr/policy.toml").exists():
        assert res.returncode == 2 and "no policy" in one_line_error(res)
    pol = world.policy(1)
    res = world.run("verify", "--bundle", b, art, cwd=away, env={"WOTR_POLICY": str(pol)})
    assert res.returncode == 0, res.stderr


# --- the golden example of docs/bundles.md ------------------------------------------------------


def test_golden_bundle_parses_and_round_trips() -> None:
    data = VECTOR.read_bytes()
    b = bundle.parse(data, str(VECTOR))
    assert bundle.to_bytes(b) == data
    assert b.commit == "87bd61af00bfbdeb419ff4b70d38751bd5176a08"
    assert b.tree == "7d4a466af82cd6857c85c0296d5c23fc68cba887"
    assert b.tag == "refs/tags/v1.0"
    docs = (ROOT / "docs" / "bundles.md").read_text()
    block = re.search(r"<!-- golden:bundle-v1 -->\n```json\n(.*?)```", docs, re.S)
    assert block is not None, "docs/bundles.md lost its golden example"
    assert block.group(1).encode() == data


# --- hooks/verify-file --------------------------------------------------------------------------


def run_hook(
    world: sim.World, *args: Path | str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full = sim.base_env()
    full["WOTR_POLICY"] = str(world.policy_dir / "threshold.toml")
    full.update(env or {})
    return subprocess.run(
        [str(VERIFY_FILE), *map(str, args)],
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_verify_file_hook(world: sim.World, art: Path, away: Path) -> None:
    world.policy(2)
    signed_by(world, art, "alice", "bob")
    store = world.root / "bundles"
    store.mkdir()
    export(world, store / "app.wotr")
    env = {"WOTR_BUNDLES": str(store)}
    res = run_hook(world, art, env=env, cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr
    bad = world.artifact("bad.bin", b"bad\n")
    res = run_hook(world, art, bad, env=env, cwd=away)
    assert res.returncode == 1
    assert "WOTR_HOOK_ALLOW_UNVERIFIED" not in res.stderr  # a rejection is never overridable
    assert "knowingly" in res.stderr
    # errors fail closed, with the way out named
    res = run_hook(world, away / "missing.deb", env=env, cwd=away)
    assert res.returncode == 2 and "WOTR_HOOK_ALLOW_UNVERIFIED=1" in res.stderr
    res = run_hook(world, art, env={**env, "WOTR_VERIFY_CMD": "/nonexistent/wotr"}, cwd=away)
    assert res.returncode == 3 and "WOTR_HOOK_ALLOW_UNVERIFIED=1" in res.stderr
    res = run_hook(
        world,
        art,
        env={**env, "WOTR_VERIFY_CMD": "/nonexistent/wotr", "WOTR_HOOK_ALLOW_UNVERIFIED": "1"},
        cwd=away,
    )
    assert res.returncode == 0 and "UNVERIFIED" in res.stderr
    res = run_hook(world, bad, env={**env, "WOTR_HOOK_ALLOW_UNVERIFIED": "1"}, cwd=away)
    assert res.returncode == 1  # the override lets errors through, never a rejection
    assert run_hook(world, env=env, cwd=away).returncode == 2  # no file named
