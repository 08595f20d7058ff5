"""notes_merge.merge_union: a union of lines per commit that never drops a line of ours (DESIGN §3).

Notes are made with real git (and pygit2 for large trees); what they hold afterwards is read
back with git's own ``git notes list`` / ``cat-file``, so the trees we write are the ones git reads.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pygit2
import pytest

from testing import sim
from wotr import git, notes, notes_merge

OTHER = "refs/notes/other"


@pytest.fixture(autouse=True)
def _git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("GIT_")]:
        monkeypatch.delenv(key)
    for key, value in sim.GIT_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return sim.init_repo(tmp_path / "repo")


def add(path: Path, ref: str, commit: str, data: bytes) -> None:
    blob = sim.git(path, "hash-object", "-w", "--stdin", input=data)
    sim.git(path, "notes", f"--ref={ref}", "add", "-f", "-C", blob, commit)


def remove(path: Path, ref: str, commit: str) -> None:
    sim.git(path, "notes", f"--ref={ref}", "remove", commit)


def all_notes(path: Path, ref: str = git.NOTES_REF) -> dict[str, set[bytes]]:
    """annotated id -> set of lines, as git itself reads the notes tree."""
    rows = [row.split() for row in sim.git(path, "notes", f"--ref={ref}", "list").splitlines()]
    batch = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=path,
        input="".join(f"{blob}\n" for blob, _ in rows).encode(),
        capture_output=True,
        check=True,
    ).stdout
    out: dict[str, set[bytes]] = {}
    for _, annotated in rows:
        header, batch = batch.split(b"\n", 1)
        size = int(header.split()[2])
        data, batch = batch[:size], batch[size + 1 :]
        out[annotated] = {ln for ln in data.split(b"\n") if ln}
    return out


def rev(path: Path, ref: str) -> str:
    return sim.notes_tip(path) if ref == git.NOTES_REF else sim.git(path, "rev-parse", ref)


def parents(path: Path, commit: str) -> list[str]:
    return sim.git(path, "rev-list", "--parents", "-n1", commit).split()[1:]


def commits(path: Path, n: int) -> list[str]:
    return [sim.commit(path, f"c{i}") for i in range(n)]


def test_diverged_histories_union_both_sides(repo: Path) -> None:
    c, d = commits(repo, 2)
    add(repo, "wotr", c, b"a\nb\n")
    add(repo, "other", c, b"c\nb\n")
    add(repo, "other", d, b"x\n")
    ours, theirs = rev(repo, git.NOTES_REF), rev(repo, OTHER)
    merged = notes_merge.merge_union(git.open_repo(repo), OTHER)
    assert merged.moved and merged.gained == 2
    assert all_notes(repo) == {c: {b"a", b"b", b"c"}, d: {b"x"}}
    assert parents(repo, rev(repo, git.NOTES_REF)) == [ours, theirs]


def test_remote_deleting_a_claim_is_not_adopted(repo: Path) -> None:
    """git's own notes merge would take this deletion (we did not change the note since)."""
    c, d = commits(repo, 2)
    add(repo, "wotr", c, b"a\nb\n")
    ours = rev(repo, git.NOTES_REF)
    sim.git(repo, "update-ref", OTHER, ours)
    add(repo, "other", c, b"a\n")  # their history drops b ...
    add(repo, "other", d, b"x\n")  # ... and adds something
    theirs = rev(repo, OTHER)
    merged = notes_merge.merge_union(git.open_repo(repo), OTHER)
    assert merged.moved
    assert all_notes(repo) == {c: {b"a", b"b"}, d: {b"x"}}
    assert parents(repo, rev(repo, git.NOTES_REF)) == [theirs]  # still a fast-forward for push


def test_remote_removing_a_whole_note_is_not_adopted(repo: Path) -> None:
    c, d = commits(repo, 2)
    add(repo, "wotr", c, b"a\n")
    sim.git(repo, "update-ref", OTHER, rev(repo, git.NOTES_REF))
    remove(repo, "other", c)
    add(repo, "other", d, b"x\n")
    notes_merge.merge_union(git.open_repo(repo), OTHER)
    assert all_notes(repo) == {c: {b"a"}, d: {b"x"}}


def test_rewritten_remote_history_loses_nothing(repo: Path) -> None:
    c, d = commits(repo, 2)
    add(repo, "wotr", c, b"a\nb\n")
    add(repo, "wotr", d, b"y\n")
    add(repo, "other", c, b"z\n")  # an unrelated history, as after a force-push elsewhere
    notes_merge.merge_union(git.open_repo(repo), OTHER)
    assert all_notes(repo) == {c: {b"a", b"b", b"z"}, d: {b"y"}}


def test_fast_forward_when_theirs_has_every_line(repo: Path) -> None:
    (c,) = commits(repo, 1)
    add(repo, "wotr", c, b"a\n")
    sim.git(repo, "update-ref", OTHER, rev(repo, git.NOTES_REF))
    add(repo, "other", c, b"b\na\n")
    merged = notes_merge.merge_union(git.open_repo(repo), OTHER)
    assert merged.moved and merged.gained == 1
    assert rev(repo, git.NOTES_REF) == rev(repo, OTHER)


def test_nothing_to_do_when_ours_contains_theirs(repo: Path) -> None:
    (c,) = commits(repo, 1)
    add(repo, "wotr", c, b"a\n")
    sim.git(repo, "update-ref", OTHER, rev(repo, git.NOTES_REF))
    add(repo, "wotr", c, b"a\nb\n")
    before = rev(repo, git.NOTES_REF)
    merged = notes_merge.merge_union(git.open_repo(repo), OTHER)
    assert not merged.moved and rev(repo, git.NOTES_REF) == before


def test_diverged_subset_records_a_merge_so_push_fast_forwards(repo: Path) -> None:
    (c,) = commits(repo, 1)
    add(repo, "other", c, b"a\n")
    add(repo, "wotr", c, b"a\nb\n")  # unrelated history that already holds every line
    ours, theirs = rev(repo, git.NOTES_REF), rev(repo, OTHER)
    merged = notes_merge.merge_union(git.open_repo(repo), OTHER)
    assert merged.moved and merged.gained == 0
    tip = rev(repo, git.NOTES_REF)
    assert parents(repo, tip) == [ours, theirs]
    assert sim.git(repo, "rev-parse", f"{tip}^{{tree}}") == sim.git(
        repo, "rev-parse", f"{ours}^{{tree}}"
    )
    # merging again is a no-op
    assert not notes_merge.merge_union(git.open_repo(repo), OTHER).moved


def test_no_local_notes_takes_theirs_as_is(repo: Path) -> None:
    (c,) = commits(repo, 1)
    add(repo, "other", c, b"a\n")
    merged = notes_merge.merge_union(git.open_repo(repo), OTHER)
    assert merged.gained == 1 and rev(repo, git.NOTES_REF) == rev(repo, OTHER)
    assert not notes_merge.merge_union(git.open_repo(repo), "refs/notes/missing").moved


def test_exact_bytes_survive(repo: Path) -> None:
    (c,) = commits(repo, 1)
    add(repo, "wotr", c, b"\xff\xfehostile\r\n")
    add(repo, "other", c, b"ok\n\n   \n")
    notes_merge.merge_union(git.open_repo(repo), OTHER)
    assert all_notes(repo) == {c: {b"\xff\xfehostile\r", b"ok"}}


# --- trees built in-process: layouts, size, hostile entries, speed --------------------------------


def fake_ids(n: int, salt: str = "") -> list[str]:
    return [hashlib.sha1(f"{salt}{i}".encode()).hexdigest() for i in range(n)]


def put_tree(path: Path, ref: str, tree: Any, parents_: list[str] | None = None) -> str:
    r = pygit2.Repository(str(path / ".git"))
    sig = pygit2.Signature("t", "t@example.invalid")
    ps = [pygit2.Oid(hex=p) for p in parents_ or []]
    new = r.create_commit(None, sig, sig, "t", tree, ps)
    r.references.create(ref, new, force=True)
    return str(new)


def flat_tree(path: Path, entries: dict[str, bytes]) -> Any:
    r = pygit2.Repository(str(path / ".git"))
    tb = r.TreeBuilder()
    for name, data in entries.items():
        tb.insert(name, r.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
    return tb.write()


def fanout_tree(path: Path, entries: dict[str, bytes]) -> Any:
    """A notes tree in git's 2/38 fanout layout."""
    r = pygit2.Repository(str(path / ".git"))
    buckets: dict[str, dict[str, bytes]] = {}
    for name, data in entries.items():
        buckets.setdefault(name[:2], {})[name[2:]] = data
    top = r.TreeBuilder()
    for head, sub in buckets.items():
        tb = r.TreeBuilder()
        for name, data in sub.items():
            tb.insert(name, r.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
        top.insert(head, tb.write(), pygit2.GIT_FILEMODE_TREE)
    return top.write()


def test_flat_and_fanout_layouts_merge(repo: Path) -> None:
    ids = fake_ids(300)
    mine = {i: f"mine {i}\n".encode() for i in ids[:150]}
    theirs = {i: f"theirs {i}\n".encode() for i in ids[100:]}
    put_tree(repo, git.NOTES_REF, flat_tree(repo, mine))
    theirs_all = {**theirs, **{i: b"extra\n" for i in fake_ids(100, "x")}}
    put_tree(repo, OTHER, fanout_tree(repo, theirs_all))
    merged = notes_merge.merge_union(git.open_repo(repo), OTHER)
    assert merged.gained == 300
    got = all_notes(repo)
    assert len(got) == 400
    for i in ids[:100]:
        assert got[i] == {f"mine {i}".encode()}
    for i in ids[100:150]:
        assert got[i] == {f"mine {i}".encode(), f"theirs {i}".encode()}
    for i in ids[150:]:
        assert got[i] == {f"theirs {i}".encode()}


def test_two_layouts_of_one_note_are_both_kept(repo: Path) -> None:
    (c,) = fake_ids(1)
    r = pygit2.Repository(str(repo / ".git"))
    sub = r.TreeBuilder()
    sub.insert(c[2:], r.create_blob(b"deep\n"), pygit2.GIT_FILEMODE_BLOB)
    top = r.TreeBuilder()
    top.insert(c, r.create_blob(b"flat\n"), pygit2.GIT_FILEMODE_BLOB)
    top.insert(c[:2], sub.write(), pygit2.GIT_FILEMODE_TREE)
    put_tree(repo, git.NOTES_REF, top.write())
    put_tree(repo, OTHER, flat_tree(repo, {c: b"new\n"}))
    notes_merge.merge_union(git.open_repo(repo), OTHER)
    assert all_notes(repo) == {c: {b"deep", b"flat", b"new"}}


def test_oversized_note_of_theirs_is_not_merged(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = fake_ids(2)
    put_tree(repo, git.NOTES_REF, flat_tree(repo, {a: b"mine\n"}))
    put_tree(repo, OTHER, flat_tree(repo, {a: b"x" * 200 + b"\n", b: b"fine\n"}))
    monkeypatch.setattr(notes, "MAX_NOTE_BYTES", 100)
    merged = notes_merge.merge_union(git.open_repo(repo), OTHER)
    assert (merged.gained, merged.skipped) == (1, 1)
    assert all_notes(repo) == {a: {b"mine"}, b: {b"fine"}}


def test_entries_that_are_not_notes_are_ignored(repo: Path) -> None:
    (a,) = fake_ids(1)
    r = pygit2.Repository(str(repo / ".git"))
    junk = r.TreeBuilder()
    junk.insert("README", r.create_blob(b"not a note\n"), pygit2.GIT_FILEMODE_BLOB)
    top = r.TreeBuilder()
    top.insert(a, r.create_blob(b"fine\n"), pygit2.GIT_FILEMODE_BLOB)
    top.insert("zz", junk.write(), pygit2.GIT_FILEMODE_TREE)
    top.insert("ab", r.create_blob(b"short\n"), pygit2.GIT_FILEMODE_BLOB)
    top.insert("A" * 40, r.create_blob(b"upper\n"), pygit2.GIT_FILEMODE_BLOB)
    top.insert("0" * 40, junk.write(), pygit2.GIT_FILEMODE_TREE)
    put_tree(repo, OTHER, top.write())
    put_tree(repo, git.NOTES_REF, flat_tree(repo, {fake_ids(1, "m")[0]: b"mine\n"}))
    merged = notes_merge.merge_union(git.open_repo(repo), OTHER)
    assert merged.gained == 1
    assert all_notes(repo)[a] == {b"fine"}


def test_other_ref_not_a_commit_is_an_error(repo: Path) -> None:
    blob = sim.git(repo, "hash-object", "-w", "--stdin", input=b"x")
    sim.git(repo, "update-ref", OTHER, blob)
    with pytest.raises(notes.NotesError, match="does not point at a notes commit"):
        notes_merge.merge_union(git.open_repo(repo), OTHER)


def test_locked_ref_changes_nothing(repo: Path) -> None:
    (c,) = commits(repo, 1)
    add(repo, "wotr", c, b"a\n")
    add(repo, "other", c, b"b\n")
    before = rev(repo, git.NOTES_REF)
    lock = repo / ".git" / "refs" / "notes" / "wotr.lock"
    lock.write_text("")
    with pytest.raises(notes.NotesError, match="is locked"):
        notes_merge.merge_union(git.open_repo(repo), OTHER)
    assert rev(repo, git.NOTES_REF) == before


def test_append_reports_a_lock_too(repo: Path) -> None:
    (c,) = commits(repo, 1)
    add(repo, "wotr", c, b"a\n")
    (repo / ".git" / "refs" / "notes" / "wotr.lock").write_text("")
    with pytest.raises(notes.NotesError, match="is locked"):
        notes.append(git.open_repo(repo), c, b"b")


def test_a_concurrent_writer_is_not_lost(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c, d = commits(repo, 2)
    add(repo, "wotr", c, b"a\n")
    add(repo, "other", c, b"b\n")
    real = notes_merge._plan
    calls = 0

    def racing(*args: Any) -> notes_merge.Merged:
        nonlocal calls
        calls += 1
        if calls == 1:  # another process signs between our read and our compare-and-swap
            add(repo, "wotr", d, b"signed meanwhile\n")
        return real(*args)

    monkeypatch.setattr(notes_merge, "_plan", racing)
    notes_merge.merge_union(git.open_repo(repo), OTHER)
    assert calls == 2
    assert all_notes(repo) == {c: {b"a", b"b"}, d: {b"signed meanwhile"}}


def fast_import(path: Path, commits_: list[tuple[str, str | None, dict[str, bytes]]]) -> None:
    """Write notes commits (ref, parent ref, path -> data) with git fast-import: one pack, fast."""
    out = bytearray()
    for ref, parent, files in commits_:
        out += f"commit {ref}\ncommitter t <t@example.invalid> 0 +0000\ndata 0\n".encode()
        if parent:
            out += f"from {parent}\n".encode()
        for name, data in files.items():
            out += f"M 100644 inline {name[:2]}/{name[2:]}\ndata {len(data)}\n".encode() + data
            out += b"\n"
        out += b"\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=bytes(out), check=True)


def test_merge_reads_only_what_differs(repo: Path) -> None:
    """10,000 shared notes and one new claim: the merge reads one fanout subtree, not 10,000."""
    ids = fake_ids(10_000)
    local = fake_ids(1, "local")[0]
    fast_import(
        repo,
        [
            (OTHER, None, {i: f"claim {i}\n".encode() for i in ids}),
            (git.NOTES_REF, OTHER, {local: b"local only\n"}),  # ours moved on ...
            (OTHER, None, {ids[7]: f"claim {ids[7]}\nnew claim\n".encode()}),  # ... theirs too
        ],
    )
    start = time.perf_counter()
    merged = notes_merge.merge_union(git.open_repo(repo), OTHER)
    elapsed = time.perf_counter() - start
    assert merged.gained == 1
    got = all_notes(repo)
    assert got[ids[7]] == {f"claim {ids[7]}".encode(), b"new claim"}
    assert got[local] == {b"local only"}
    assert len(got) == 10_001
    print(f"merge of 1 changed note into 10,001: {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0


def test_append_changes_only_its_own_note_and_keeps_the_layout(repo: Path) -> None:
    ids = fake_ids(300)
    put_tree(repo, git.NOTES_REF, fanout_tree(repo, {i: f"n {i}\n".encode() for i in ids}))
    r = pygit2.Repository(str(repo / ".git"))
    before = r.references[git.NOTES_REF].target
    new_commit = ids[0]
    assert notes.append(git.open_repo(repo), new_commit, b"claim")
    assert not notes.append(git.open_repo(repo), new_commit, b"claim")  # already there
    r = pygit2.Repository(str(repo / ".git"))
    tip: Any = r[r.references[git.NOTES_REF].target]
    assert tip.parents[0].id == before
    got = all_notes(repo)
    assert got[new_commit] == {f"n {new_commit}".encode(), b"claim"}
    assert all(got[i] == {f"n {i}".encode()} for i in ids[1:])
    # the note stayed in its fanout place; unchanged subtrees are shared with the parent
    assert tip.tree[new_commit[:2]].type_str == "tree"
    diff = r.diff(tip.parents[0].tree, tip.tree)
    assert [d.delta.new_file.path for d in diff] == [f"{new_commit[:2]}/{new_commit[2:]}"]


# --- append: git plumbing, every layout, exact bytes, compare-and-swap ----------------------------


def tree_paths(repo: Path) -> dict[str, str]:
    """path -> blob id of every file in the notes tree."""
    out = sim.git(repo, "ls-tree", "-r", "-z", git.NOTES_REF)
    rows = [row.split("\t", 1) for row in out.split("\0") if row]
    return {path: meta.split()[2] for meta, path in rows}


def blob(repo: Path, oid: str) -> bytes:
    return subprocess.run(
        ["git", "cat-file", "blob", oid], cwd=repo, capture_output=True, check=True
    ).stdout


def test_append_to_no_ref_writes_a_flat_note(repo: Path) -> None:
    (c,) = commits(repo, 1)
    assert notes.append(git.open_repo(repo), c, b"claim")
    assert sim.read_note(repo, c) == b"claim\n"
    assert list(tree_paths(repo)) == [c]
    assert parents(repo, rev(repo, git.NOTES_REF)) == []


def test_append_in_a_fanout_tree_makes_a_new_fanout_directory(repo: Path) -> None:
    ids = fake_ids(300)
    put_tree(repo, git.NOTES_REF, fanout_tree(repo, {i: b"n\n" for i in ids}))
    before = tree_paths(repo)
    new = next(i for i in fake_ids(2000, "new") if i[:2] not in {j[:2] for j in ids})
    assert notes.append(git.open_repo(repo), new, b"claim")
    after = tree_paths(repo)
    assert after == {**before, f"{new[:2]}/{new[2:]}": after[f"{new[:2]}/{new[2:]}"]}
    assert all_notes(repo)[new] == {b"claim"}


def test_append_keeps_hostile_bytes_and_other_entries_exactly(repo: Path) -> None:
    a, b = fake_ids(2)
    hostile = b"\xff\xfe not utf-8 \x00\r\n  trailing spaces   \n\n# not a comment\nno newline"
    r = pygit2.Repository(str(repo / ".git"))
    junk = r.TreeBuilder()
    junk.insert("README", r.create_blob(b"not a note\n"), pygit2.GIT_FILEMODE_BLOB)
    top = r.TreeBuilder()
    top.insert(a, r.create_blob(hostile), pygit2.GIT_FILEMODE_BLOB)
    top.insert(b, r.create_blob(b"other\n"), pygit2.GIT_FILEMODE_BLOB)
    top.insert("zz", junk.write(), pygit2.GIT_FILEMODE_TREE)
    top.insert("caf\xe9 name", r.create_blob(b"x"), pygit2.GIT_FILEMODE_BLOB)
    put_tree(repo, git.NOTES_REF, top.write())
    before = tree_paths(repo)
    assert notes.append(git.open_repo(repo), a, b"claim")
    after = tree_paths(repo)
    assert blob(repo, after[a]) == hostile + b"\nclaim\n"
    assert {p: o for p, o in after.items() if p != a} == {p: o for p, o in before.items() if p != a}
    assert not notes.append(git.open_repo(repo), a, b"claim")


def test_append_folds_two_layouts_of_one_note_into_the_first(repo: Path) -> None:
    c, other = fake_ids(2)
    r = pygit2.Repository(str(repo / ".git"))
    sub = r.TreeBuilder()
    sub.insert(c[2:], r.create_blob(b"deep\n"), pygit2.GIT_FILEMODE_BLOB)
    top = r.TreeBuilder()
    top.insert(c, r.create_blob(b"flat\n"), pygit2.GIT_FILEMODE_BLOB)
    top.insert(c[:2], sub.write(), pygit2.GIT_FILEMODE_TREE)
    top.insert(other, r.create_blob(b"o\n"), pygit2.GIT_FILEMODE_BLOB)
    put_tree(repo, git.NOTES_REF, top.write())
    assert notes.append(git.open_repo(repo), c, b"new")
    paths = tree_paths(repo)
    assert set(paths) == {c, other}  # the emptied fanout directory is gone
    assert blob(repo, paths[c]) == b"flat\ndeep\nnew\n"


def test_append_retries_when_another_writer_moves_the_ref(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, d = commits(repo, 2)
    add(repo, "wotr", c, b"a\n")
    real = notes._read_note
    calls = 0

    def racing(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        got = real(*args)
        if calls == 1:  # another process signs between our read and our compare-and-swap
            add(repo, "wotr", d, b"signed meanwhile\n")
        return got

    monkeypatch.setattr(notes, "_read_note", racing)
    assert notes.append(git.open_repo(repo), c, b"mine")
    assert calls == 2
    assert all_notes(repo) == {c: {b"a", b"mine"}, d: {b"signed meanwhile"}}


def test_append_uses_the_fallback_identity_and_never_signs_the_commit(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (c,) = commits(repo, 1)
    for key in ("GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"):
        monkeypatch.delenv(key, raising=False)
    sim.git(repo, "config", "commit.gpgSign", "true")
    sim.git(repo, "config", "user.signingkey", "0" * 40)
    assert notes.append(git.open_repo(repo), c, b"claim")
    who = sim.git(repo, "log", "-1", "--format=%cn <%ce>", git.NOTES_REF)
    assert who == "wotr <wotr@localhost>"


# --- bounded reading (DESIGN §6 rule 8) -----------------------------------------------------------


def test_read_stops_at_the_limit(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A note of any size costs at most MAX_NOTE_BYTES + 1 bytes of memory to read."""
    (c,) = commits(repo, 1)
    add(repo, git.NOTES_REF, c, b"y" * 3_000_000)
    monkeypatch.setattr(notes, "MAX_NOTE_BYTES", 1000)
    data = notes.read(git.open_repo(repo), c)
    assert len(data) == 1001 and notes.too_large(data)
    monkeypatch.setattr(notes, "MAX_NOTE_BYTES", 3_000_000)
    assert len(notes.read(git.open_repo(repo), c)) == 3_000_000


def test_split_counts_short_lines_without_keeping_them() -> None:
    long_a, long_b = b"a" * notes.MIN_ENVELOPE_BYTES, b"b" * (notes.MIN_ENVELOPE_BYTES + 5)
    data = b"\n".join([b"short", b"", long_a, b"  \t", long_b + b"\r", long_a, b"x", b"   y"])
    split = notes.split(data + b"\n")
    assert split.candidates == [(3, long_a), (5, long_b)]
    assert (split.short, split.short_count, split.count) == ([1, 7, 8], 3, 5)


def test_split_lists_only_the_first_short_lines() -> None:
    data = b"".join(b"%d\n" % i for i in range(5000))
    split = notes.split(data)
    assert split.short == list(range(1, notes.MAX_LISTED_SHORT + 1))
    assert split.short_count == 5000 and split.candidates == []


def test_no_envelope_is_shorter_than_the_minimum() -> None:
    """Short lines are never parsed: that is only safe if no valid envelope is that short."""
    from wotr import claim as claim_mod

    tiny = claim_mod.Claim.build(
        commit="0" * 40, tree="0" * 40, role="a", artifacts={"a": "0" * 64}, ref=None
    )
    line = claim_mod.Envelope(payload=tiny.payload(), sig=b"\x00", keyid="").line()
    assert len(line.rstrip(b"\n")) > notes.MIN_ENVELOPE_BYTES


def test_append_refuses_to_grow_a_note_past_the_limit(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A note over the limit counts for nothing: sign says so and writes nothing."""
    (c,) = commits(repo, 1)
    add(repo, git.NOTES_REF, c, b"z" * 900 + b"\n")
    before = rev(repo, git.NOTES_REF)
    monkeypatch.setattr(notes, "MAX_NOTE_BYTES", 950)
    with pytest.raises(notes.NotesError, match="limit"):
        notes.append(git.open_repo(repo), c, b"w" * 100)
    monkeypatch.setattr(notes, "MAX_NOTE_BYTES", 800)  # already over: refused before reading it
    with pytest.raises(notes.NotesError, match="limit"):
        notes.append(git.open_repo(repo), c, b"w")
    assert rev(repo, git.NOTES_REF) == before


def test_union_over_the_limit_keeps_ours(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each side fits, their union would not: a dead note must not be made; ours stays."""
    a, b = fake_ids(2)
    put_tree(repo, git.NOTES_REF, flat_tree(repo, {a: b"m" * 60 + b"\n"}))
    put_tree(repo, OTHER, flat_tree(repo, {a: b"t" * 60 + b"\n", b: b"fine\n"}))
    monkeypatch.setattr(notes, "MAX_NOTE_BYTES", 100)
    merged = notes_merge.merge_union(git.open_repo(repo), OTHER)
    assert (merged.gained, merged.skipped) == (1, 1)
    assert all_notes(repo) == {a: {b"m" * 60}, b: {b"fine"}}
