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
import sys
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


def skipped_line(res: subprocess.CompletedProcess[str], path: Path) -> str:
    """The one line of the text output that reports ``path`` as skipped."""
    assert "Traceback" not in res.stderr, res.stderr
    found = [ln for ln in res.stdout.splitlines() if ln.startswith(f"  skipped {path}: ")]
    assert len(found) == 1, res.stdout + res.stderr
    return found[0]


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
    assert res.returncode == 1, res.stdout + res.stderr
    assert "does not hash to commit" in skipped_line(res, moved)


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
        (lambda d: json.dumps({**d, "commit_object": "\u00e9"}).encode(), "not base64"),
        (lambda d: json.dumps({**d, "claims": ["\ud800"]}).encode(), "subjects do not match"),
        (lambda d: json.dumps({**d, "commit": float("inf")}).encode(), "not JSON"),
        (lambda d: json.dumps({**d, "x" * 5000: 1}).encode(), "fields are"),
        (lambda d: b"\xff\xfe", "not JSON"),
    ],
)
def test_malformed_bundles_are_skipped_and_reported(
    world: sim.World, art: Path, away: Path, damage: Any, expect: str
) -> None:
    """Bundles are attacker data: a malformed one, given with --bundle, as a sidecar or in the
    directory, hides its own claims (exit 1) and is reported; never bad input (exit 2)."""
    world.policy(1)
    world.sign("alice", art)
    good = export(world, world.root / "good.wotr")
    bad = world.root / "bad.wotr"
    bad.write_bytes(damage(_doc(good)))
    res = world.verify("--bundle", bad, art, cwd=away)
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stderr == ""
    line = skipped_line(res, bad)
    assert expect in line and len(line) < 600
    res = world.verify("--json", "--bundle", bad, "--bundle", good, art, cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr
    [skipped] = json.loads(res.stdout)["skipped_bundles"]
    assert skipped["path"] == str(bad) and expect in skipped["reason"]
    # the same file as a sidecar
    copy = away / art.name
    shutil.copy(art, copy)
    shutil.copy(bad, bundle.sidecar(copy))
    res = world.verify(copy, cwd=away)
    assert res.returncode == 1, res.stdout + res.stderr
    assert expect in skipped_line(res, bundle.sidecar(copy))


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
    # a rejection is never overridable: the override is named only to say it does not apply
    assert "WOTR_HOOK_ALLOW_UNVERIFIED=1 does not apply" in res.stderr
    forced = run_hook(world, art, bad, env={**env, "WOTR_HOOK_ALLOW_UNVERIFIED": "1"}, cwd=away)
    assert forced.returncode == 1, forced.stdout + forced.stderr
    assert "knowingly" in res.stderr
    # errors fail closed, with the way out named
    # a missing file is refused (bad input); the override covers only a verifier that cannot run
    res = run_hook(world, away / "missing.deb", env=env, cwd=away)
    assert res.returncode == 2 and "no such file" in res.stderr
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


# --- hostile files: sidecars, --bundle, the bundles directory and its index ---------------------


def verify_within(
    world: sim.World, *args: str | Path, cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``world.verify`` that fails the test instead of hanging (a FIFO must never block)."""
    env = sim.base_env()
    pol = world.policy_dir / "threshold.toml"
    cmd = [sys.executable, "-m", "wotr", "verify", "--policy", str(pol), *map(str, args)]
    try:
        return subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"wotr verify hung: {' '.join(map(str, args))}")


def test_bad_sidecar_or_bundle_file_is_never_bad_input(
    world: sim.World, art: Path, away: Path
) -> None:
    """C1: the attacker writes sidecars; they can hide claims (exit 1), never make exit 2/3."""
    world.policy(2)
    signed_by(world, art, "alice", "bob")
    store = world.root / "bundles"
    store.mkdir()
    export(world, store / "app.wotr")
    copy = away / "app.tar.gz"
    shutil.copy(art, copy)
    car = bundle.sidecar(copy)
    car.write_bytes(b"\x00garbage")
    res = world.verify(copy, cwd=away)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "not JSON" in skipped_line(res, car)
    # a good bundle elsewhere still verifies it; the bad sidecar is reported, not fatal
    res = world.verify("--bundles", store, copy, cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr
    skipped_line(res, car)
    res = world.verify("--json", "--bundles", store, copy, cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr
    assert [s["path"] for s in json.loads(res.stdout)["skipped_bundles"]] == [str(car)]
    # a sidecar that is a directory, or a dangling link, or a --bundle that is not there
    car.unlink()
    car.mkdir()
    assert world.verify(copy, cwd=away).returncode == 1
    car.rmdir()
    car.symlink_to(away / "nowhere")
    assert world.verify("--bundles", store, copy, cwd=away).returncode == 0
    res = world.verify("--bundle", away / "missing.wotr", "--bundles", store, copy, cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "No such file" in skipped_line(res, away / "missing.wotr")
    # through the generic hook too: a garbage sidecar is a refusal (1), not "bad input" (2)
    car.unlink()
    car.write_text("{}")
    res = run_hook(world, copy, cwd=away)
    assert res.returncode == 1, res.stdout + res.stderr
    res = run_hook(world, copy, env={"WOTR_BUNDLES": str(store)}, cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr
    # what stays bad input is the installer's own: a named directory that does not exist
    res = world.verify("--bundles", away / "nope", copy, cwd=away)
    assert res.returncode == 2


def test_hostile_names_in_the_directory_are_escaped(world: sim.World, art: Path) -> None:
    world.policy(1)
    world.sign("alice", art)
    store = world.root / "bundles"
    store.mkdir()
    export(world, store / "app.wotr")
    os.close(os.open(os.fsencode(store) + b"/\xff\nVERIFIED\x1b[0m.wotr", os.O_CREAT | os.O_WRONLY))
    escaped = "\\udcff\\x0aVERIFIED\\x1b[0m.wotr"
    res = verify_within(world, "--bundles", store, art, cwd=world.root)
    assert res.returncode == 0, res.stdout + res.stderr
    assert escaped in res.stdout and "\x1b" not in res.stdout
    res = verify_within(world, "--json", "--bundles", store, art, cwd=world.root)
    assert res.returncode == 0, res.stdout + res.stderr
    [skipped] = json.loads(res.stdout)["skipped_bundles"]
    assert skipped["path"].endswith(escaped)


def _hostile_lines() -> list[bytes]:
    ptype = "application/vnd.in-toto+json"
    sig = [{"keyid": "ABCD", "sig": "AAAA"}]

    def line(payload: Any, signatures: Any = sig) -> bytes:
        doc = {"payloadType": ptype, "payload": payload, "signatures": signatures}
        return json.dumps(doc, separators=(",", ":")).encode("ascii")

    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://wotr.dev/build/v1",
                "externalParameters": {"ref": "refs/tags/\ud800", "role": "author"},
                "resolvedDependencies": [{"digest": {"gitCommit": "0" * 40, "gitTree": "0" * 40}}],
            },
            "runDetails": {"builder": {"id": "https://wotr.dev/builder/v1"}},
        },
        "predicateType": "https://slsa.dev/provenance/v1",
        "subject": [{"digest": {"sha256": "0" * 64}, "name": "x"}],
    }
    surrogate = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode("ascii")
    return [
        line("\u00e9"),  # non-ASCII text in a base64 field
        line("AAAA", [{"keyid": "\udc80", "sig": "AAAA"}]),  # lone surrogate in a keyid
        line(base64.b64encode(surrogate).decode()),  # lone surrogate in the claimed ref
        line(base64.b64encode(b"[" * 100000).decode()),  # deep nesting
        line(base64.b64encode(b'{"_type": 1e999999}').decode()),
        b'{"payloadType":"' + b"9" * 5000 + b'"}',
    ]


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("non-ASCII base64"),
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
        RecursionError(),
        OverflowError(),
    ],
)
def test_claim_errors_of_any_kind_skip_one_line(
    monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    """H1: whatever parsing one line raises, _subjects and build skip that line only."""
    from wotr import claim as claim_mod

    golden = bundle.parse(VECTOR.read_bytes(), "golden")
    real_line, real_payload = claim_mod.parse_line, claim_mod.parse_payload
    hostile = b"hostile line"

    def parse_line(raw: bytes) -> claim_mod.Envelope:
        return claim_mod.Envelope(b"boom", b"", "k") if raw == hostile else real_line(raw)

    def parse_payload(payload: bytes) -> claim_mod.Claim:
        if payload == b"boom":
            raise exc
        return real_payload(payload)

    monkeypatch.setattr(claim_mod, "parse_line", parse_line)
    monkeypatch.setattr(claim_mod, "parse_payload", parse_payload)
    lines = [*golden.claims, hostile]
    assert bundle._subjects(golden.commit, lines) == golden.subjects
    built, skipped = bundle.build(
        golden.commit, golden.commit_object, golden.tag, b"\n".join(lines)
    )
    assert skipped == 1 and built.claims == golden.claims


def test_hostile_note_lines_are_left_out_of_exports_and_bundles(
    world: sim.World, art: Path, away: Path
) -> None:
    """H1 end to end: hostile lines cost a report, never the export or the verify."""
    world.policy(1)
    world.sign("alice", art)
    hostile = _hostile_lines()
    note = sim.read_note(world.repo, world.head())
    sim.write_note(world.repo, world.head(), note + b"\n".join(hostile) + b"\n")
    out = world.root / "x.wotr"
    res = world.run("export", "-o", out)
    assert res.returncode == 0, res.stderr
    assert f"left out {len(hostile)} line(s)" in res.stderr
    assert len(bundle.read(out).claims) == 1
    # a bundle carrying them anyway (an attacker wrote it) is read; they are rejected one by one
    doc = _doc(out)
    doc["claims"] += [ln.decode("ascii") for ln in hostile]
    out.write_text(json.dumps(doc))
    assert bundle.read(out).subjects == bundle.read(out).subjects
    res = world.verify("--json", "--bundle", out, art, cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(json.loads(res.stdout)["rejected"]) == len(hostile)


@pytest.mark.parametrize(
    "size",
    [
        float("inf"),
        float("nan"),
        10**30,
        -1,
        True,
        "12",
        1.0,
        None,
        [1],
    ],
)
def test_poisoned_index_is_ignored(world: sim.World, art: Path, away: Path, size: Any) -> None:
    """H2: whatever the index holds, the directory is scanned as if it were not there."""
    world.policy(1)
    world.sign("alice", art)
    store = world.root / "bundles"
    store.mkdir()
    export(world, store / "a.wotr")
    st = (store / "a.wotr").stat()
    entry = {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ino": st.st_ino,
        "commit": world.head(),
        "digests": [],  # would hide the bundle if believed
        "error": "",
    }
    for field in ("size", "mtime_ns", "ino"):
        poisoned = {**entry, field: size}
        index = {"format": bundle.INDEX_FORMAT, "files": {"a.wotr": poisoned}}
        (store / bundle.INDEX_NAME).write_text(json.dumps(index))
        assert len(bundle.scan(store, update_index=False).by_digest) == 1, field
        res = world.verify("--bundles", store, art, cwd=away)
        assert res.returncode == 0, res.stdout + res.stderr
    for bad in ({**entry, "digests": "x"}, {**entry, "error": 5}, {**entry, "commit": []}, 7):
        index = {"format": bundle.INDEX_FORMAT, "files": {"a.wotr": bad}}
        (store / bundle.INDEX_NAME).write_text(json.dumps(index))
        assert len(bundle.scan(store).by_digest) == 1, bad
    (store / bundle.INDEX_NAME).write_text('{"format": ' + "9" * 5000 + "}")
    assert len(bundle.scan(store).by_digest) == 1


def test_fifos_never_block(
    world: sim.World, art: Path, away: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """H3: a FIFO as the index, a sidecar, a --bundle or a directory entry is refused at once."""
    world.policy(1)
    world.sign("alice", art)
    store = world.root / "bundles"
    store.mkdir()
    export(world, store / "a.wotr")
    os.mkfifo(store / bundle.INDEX_NAME)
    os.mkfifo(store / "fifo.wotr")
    (store / "link.wotr").symlink_to(store / "fifo.wotr")
    res = verify_within(world, "--bundles", store, art, cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr
    copy = away / art.name
    shutil.copy(art, copy)
    car = bundle.sidecar(copy)
    os.mkfifo(car)
    res = verify_within(world, copy, cwd=away)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "not a regular file" in skipped_line(res, car)
    res = verify_within(world, "--bundles", store, copy, cwd=away)
    assert res.returncode == 0, res.stdout + res.stderr
    fifo = away / "given.wotr"
    os.mkfifo(fifo)
    res = verify_within(world, "--bundle", fifo, art, cwd=away)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "not a regular file" in skipped_line(res, fifo)
    # a FIFO swapped in after the stat: the open does not block, fstat refuses it
    real_stat = os.stat
    with monkeypatch.context() as m, pytest.raises(OSError, match="not a regular file"):
        m.setattr(os, "stat", lambda p, **kw: real_stat(store / "a.wotr"))
        bundle.read_regular(fifo, 100)
    with pytest.raises(OSError):
        bundle.read_regular(store / "link.wotr", 100, follow=False)


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o777, 0o1777])
def test_no_index_in_a_directory_others_can_write(world: sim.World, art: Path, mode: int) -> None:
    """H5: the index is persisted only where no one but the effective user can write."""
    world.sign("alice", art)
    store = world.root / "bundles"
    store.mkdir()
    export(world, store / "a.wotr")
    os.chmod(store, mode)
    assert len(bundle.scan(store).by_digest) == 1
    assert not (store / bundle.INDEX_NAME).exists()
    assert not list(store.glob(".*.tmp"))
    # nor is an index planted there believed: it could hide the bundles of others
    st = (store / "a.wotr").stat()
    entry: dict[str, Any] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}
    entry.update(commit=world.head(), digests=[], error="")
    planted = json.dumps({"format": bundle.INDEX_FORMAT, "files": {"a.wotr": entry}})
    (store / bundle.INDEX_NAME).write_text(planted)
    assert len(bundle.scan(store).by_digest) == 1
    assert (store / bundle.INDEX_NAME).read_text() == planted
    (store / bundle.INDEX_NAME).unlink()
    os.chmod(store, 0o755)
    assert len(bundle.scan(store).by_digest) == 1
    assert (store / bundle.INDEX_NAME).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the directory away")
def test_no_index_in_a_directory_of_another_user(world: sim.World, art: Path) -> None:
    world.sign("alice", art)
    store = world.root / "bundles"
    store.mkdir()
    export(world, store / "a.wotr")
    os.chown(store, 65534, -1)
    try:
        assert len(bundle.scan(store).by_digest) == 1
        assert not (store / bundle.INDEX_NAME).exists()
    finally:
        os.chown(store, 0, -1)


def test_writing_never_follows_a_symlink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """H5: swapping the temporary file for a link (here: at fsync) cannot chmod the target."""
    victim = tmp_path / "victim"
    victim.write_text("secret\n")
    os.chmod(victim, 0o600)
    store = tmp_path / "bundles"
    store.mkdir()
    real_fsync = os.fsync

    def swap(fd: int) -> None:
        real_fsync(fd)
        for tmp in store.glob(".*.tmp"):
            tmp.unlink()
            tmp.symlink_to(victim)

    monkeypatch.setattr(os, "fsync", swap)
    bundle.write(b"data\n", store / "out.wotr")
    monkeypatch.undo()
    assert victim.stat().st_mode & 0o777 == 0o600
    assert victim.read_text() == "secret\n"
    # a link already at the target is replaced, not written through
    target = store / "x.wotr"
    target.unlink(missing_ok=True)
    target.symlink_to(victim)
    bundle.write(b"data\n", target)
    assert not target.is_symlink() and target.read_bytes() == b"data\n"
    assert victim.read_text() == "secret\n" and victim.stat().st_mode & 0o777 == 0o600
    assert (store / "out.wotr").exists() or (store / "out.wotr").is_symlink()


@pytest.mark.parametrize("limit", [5, None])
def test_bundles_of_made_up_commits_cost_bounded_gpg_work(
    world: sim.World, art: Path, monkeypatch: pytest.MonkeyPatch, limit: int | None
) -> None:
    """Rule 8 offline: a directory full of bundles for made-up commits, each naming the
    artifact's digest and carrying signatures whose issuer is a policy key, is checked first
    (their commits sort first). All commits of one verify share one signature budget; past
    it, verify fails closed (exit 1) instead of running gpg without end."""
    import hashlib

    from wotr import claim as claim_mod
    from wotr import gpg, hashing, offline
    from wotr import verify as verify_mod
    from wotr.policy import load

    world.policy(2)
    signed_by(world, art, "alice", "bob")
    store = world.root / "bundles"
    store.mkdir()
    export(world, store / "real.wotr")
    real = subprocess.run(
        ["git", "cat-file", "commit", "HEAD"], cwd=world.repo, capture_output=True, check=True
    ).stdout
    good = notes.split(sim.read_note(world.repo, world.head())).candidates
    sigs = [claim_mod.parse_line(line).sig for _, line in good]  # alice's and bob's
    digest = hashing.sha256_file(art)
    made, i = 0, 0
    while made < 8:
        obj = real + b"made up %d\n" % i
        i += 1
        cid = hashlib.sha1(b"commit %d\x00" % len(obj) + obj).hexdigest()
        if cid > world.head():
            continue
        fake = claim_mod.Claim.build(
            commit=cid, tree=world.tree(), role="author", artifacts={art.name: digest}, ref=None
        )
        lines = b"".join(claim_mod.Envelope(fake.payload(), s, "k").line() for s in sigs)
        made_up, _ = bundle.build(cid, obj, None, lines)
        (store / f"made-up-{made}.wotr").write_bytes(bundle.to_bytes(made_up))
        made += 1
    sent: list[int] = []
    real_check = gpg.Verifier.check

    def counting_many(self: Any, jobs: list[tuple[bytes, list[bytes]]]) -> Any:
        sent.extend(len(sigs) for _, sigs in jobs)
        return [real_check(self, data, sigs) for data, sigs in jobs]

    monkeypatch.setattr(gpg.Verifier, "check_many", counting_many)
    if limit is not None:
        monkeypatch.setattr(verify_mod, "MAX_CHECKED_SIGNATURES_PER_RUN", limit)
        monkeypatch.setattr(offline, "PER_TARGET_SIGNATURES", 0)
    policy = load(world.policy_dir / "threshold.toml")
    sources = offline.Sources(directory=store)
    outcome = offline.verify(policy, artifacts=[art], sources=sources)
    if limit is None:
        assert outcome.verified  # the made-up commits are merely rejected
        assert sum(sent) == 2 * 8 + 2
        return
    assert not outcome.verified
    assert sum(sent) <= limit
    assert "limit of 5 signatures" in outcome.reason


def test_bundles_read_per_verify_are_capped(
    world: sim.World, art: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 8, memory: the candidate bundles one verify reads are kept until the end; past a
    total size the rest are reported and not read. What an unread bundle holds (bob's second
    claim, a dissent) could change the answer, so at its worst it does: the artifact fails
    (issue 10 §3: a cap turns a yes into a no, never a no into a yes)."""
    from wotr import offline
    from wotr.policy import load

    world.policy(2)
    signed_by(world, art, "alice", "bob")
    store = world.root / "bundles"
    store.mkdir()
    export(world, store / "one.wotr")
    whole, _ = bundle.build(
        world.head(),
        subprocess.run(
            ["git", "cat-file", "commit", "HEAD"], cwd=world.repo, capture_output=True, check=True
        ).stdout,
        None,
        sim.read_note(world.repo, world.head()).splitlines(keepends=True)[0],
    )
    (store / "two.wotr").write_bytes(bundle.to_bytes(whole))  # other bytes, same commit
    policy = load(world.policy_dir / "threshold.toml")
    sources = offline.Sources(directory=store)
    assert offline.verify(policy, artifacts=[art], sources=sources).verified
    size = (store / "one.wotr").stat().st_size
    monkeypatch.setattr(offline, "MAX_BUNDLE_BYTES_PER_RUN", size)
    outcome = offline.verify(policy, artifacts=[art], sources=sources)
    assert not outcome.verified  # the first bundle carries the quorum; the second is unknown
    assert sum("not read" in why for _, why in outcome.broken) == 1
    assert outcome.capped and "was not read" in offline.text(outcome)
    assert json.loads(offline.to_json(outcome))["artifacts"][-1]["verified"] is False
    monkeypatch.setattr(offline, "MAX_BUNDLE_BYTES_PER_RUN", 1)
    outcome = offline.verify(policy, artifacts=[art], sources=sources)
    assert not outcome.verified
    assert sum("not read" in why for _, why in outcome.broken) == 2


def test_identical_bundles_are_read_and_counted_once(
    world: sim.World, art: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: copies of one bundle (sidecars, mirrors, hard links) count once against the
    byte cap, so 50 copies fit where one fits."""
    from wotr import offline
    from wotr.policy import load

    world.policy(2)
    signed_by(world, art, "alice", "bob")
    store = world.root / "bundles"
    store.mkdir()
    export(world, store / "copy-000.wotr")
    data = (store / "copy-000.wotr").read_bytes()
    for i in range(1, 40):
        (store / f"copy-{i:03d}.wotr").write_bytes(data)
    for i in range(40, 50):
        os.link(store / "copy-000.wotr", store / f"copy-{i:03d}.wotr")
    monkeypatch.setattr(offline, "MAX_BUNDLE_BYTES_PER_RUN", len(data))
    policy = load(world.policy_dir / "threshold.toml")
    outcome = offline.verify(policy, artifacts=[art], sources=offline.Sources(directory=store))
    assert outcome.verified, offline.text(outcome)
    assert not outcome.broken and not outcome.capped
