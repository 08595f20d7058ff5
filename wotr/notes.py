"""The only module that reads and writes wotr notes (DESIGN §3).

- Reading one note (the installer's path) asks git: one short process, and no pygit2 import
  (~80 ms) on every package install.
- Writing rebuilds the notes tree in-process with pygit2: blobs keep their exact bytes
  (a note may hold hostile non-UTF-8 lines that must survive untouched), and the ref moves
  by compare-and-swap, so a concurrent writer makes us retry instead of losing its line.
- Merging is a *union of lines* per commit, never git's three-way notes merge, which
  would adopt a remote's deletion of a claim.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from . import git
from .errors import EnvironmentProblem, WotrError
from .git import NOTES_REF, Repo

MAX_NOTE_BYTES = 64 * 1024 * 1024
_CAS_ATTEMPTS = 20


class NotesError(WotrError):
    """The notes ref could not be read or updated; nothing was changed."""


def read(repo: Repo, commit: str, ref: str = NOTES_REF) -> bytes:
    """The raw note of ``commit`` under ``ref`` (empty when there is none)."""
    res = git.run(repo, "notes", f"--ref={ref}", "show", commit)
    if res.returncode != 0:
        if b"no note found" in res.stderr or b"failed to resolve" in res.stderr:
            return b""
        raise NotesError(f"cannot read the note of {commit[:12]} from {ref}: {res.err_line}")
    return res.stdout


def lines(data: bytes) -> list[tuple[int, bytes]]:
    """(1-based line number, line) for each distinct non-empty line; order carries no meaning."""
    seen: set[bytes] = set()
    out: list[tuple[int, bytes]] = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if line.strip() and line not in seen:
            seen.add(line)
            out.append((number, line))
    return out


def union_bytes(*notes: bytes) -> bytes:
    """cat_sort_uniq: every distinct non-empty line of every note, byte-sorted, \\n-ended."""
    merged = {ln for note in notes for ln in note.split(b"\n") if ln.strip()}
    return b"".join(ln + b"\n" for ln in sorted(merged))


# --- writing (pygit2) ---------------------------------------------------------------------------


def _pygit2() -> Any:
    try:
        import pygit2
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise EnvironmentProblem("pygit2 is not installed", "pip install pygit2") from exc
    return pygit2


def _open(repo: Repo) -> Any:
    return _pygit2().Repository(str(repo.git_dir))


def _signature(r: Any, repo: Repo) -> Any:
    pg = _pygit2()
    env = git.identity_env(repo)
    name = os.environ.get("GIT_COMMITTER_NAME") or git.config_get(repo, "user.name")
    email = os.environ.get("GIT_COMMITTER_EMAIL") or git.config_get(repo, "user.email")
    return pg.Signature(name or env["GIT_COMMITTER_NAME"], email or env["GIT_COMMITTER_EMAIL"])


def _note_map(r: Any, tip: Any) -> dict[str, bytes]:
    """commit hex -> note bytes for every note in the notes tree of commit ``tip``."""
    out: dict[str, bytes] = {}
    if tip is None:
        return out

    def walk(tree: Any, prefix: str) -> None:
        for entry in tree:
            name = prefix + entry.name
            if entry.type_str == "tree":
                walk(r[entry.id], name)
            elif entry.type_str == "blob" and len(name) in (40, 64):
                data = r[entry.id].data
                out[name] = out.get(name, b"") + data  # two layouts of one note: keep both

    walk(r[tip].tree, "")
    return out


def _write_tree(r: Any, notes: Mapping[str, bytes]) -> Any:
    """A notes tree with git's 2/38 fanout once it holds more than 256 notes."""
    pg = _pygit2()
    if len(notes) <= 256:
        tb = r.TreeBuilder()
        for name, data in notes.items():
            tb.insert(name, r.create_blob(data), pg.GIT_FILEMODE_BLOB)
        return tb.write()
    buckets: dict[str, dict[str, bytes]] = {}
    for name, data in notes.items():
        buckets.setdefault(name[:2], {})[name[2:]] = data
    top = r.TreeBuilder()
    for head, sub in buckets.items():
        tb = r.TreeBuilder()
        for name, data in sub.items():
            tb.insert(name, r.create_blob(data), pg.GIT_FILEMODE_BLOB)
        top.insert(head, tb.write(), pg.GIT_FILEMODE_TREE)
    return top.write()


def _update(
    repo: Repo, change: Any, message: str, ref: str = NOTES_REF, extra_parents: Iterable[str] = ()
) -> bool:
    """Apply ``change(notes_dict) -> bool`` to the notes tree at ``ref`` atomically.

    Retries when another writer moved the ref in between; returns whether anything changed.
    """
    pg = _pygit2()
    r = _open(repo)
    sig = _signature(r, repo)
    for _ in range(_CAS_ATTEMPTS):
        try:
            reference = r.references[ref]
            tip = reference.target
        except KeyError:
            reference, tip = None, None
        notes = _note_map(r, tip)
        if not change(notes):
            return False
        tree = _write_tree(r, notes)
        parents = [tip] if tip is not None else []
        parents += [pg.Oid(hex=p) for p in extra_parents if tip is None or str(tip) != p]
        new = r.create_commit(None, sig, sig, message, tree, parents)
        try:
            if reference is None:
                r.references.create(ref, new, force=False)
            else:
                reference.set_target(new, message)
            return True
        except (pg.GitError, pg.AlreadyExistsError, ValueError):
            continue  # someone else wrote the ref: re-read and try again
    raise NotesError(
        f"{ref} kept changing while wotr tried to update it",
        "another process is writing notes; try again",
    )


def append(repo: Repo, commit: str, line: bytes) -> bool:
    """Add one envelope line to the note of ``commit``; False if the line was already there."""
    if b"\n" in line.rstrip(b"\n"):
        raise ValueError("an envelope line may not contain a newline")
    line = line.rstrip(b"\n") + b"\n"

    def change(notes: dict[str, bytes]) -> bool:
        old = notes.get(commit, b"")
        if line in {ln + b"\n" for ln in old.split(b"\n")}:
            return False
        notes[commit] = old + (b"\n" if old and not old.endswith(b"\n") else b"") + line
        return True

    return _update(repo, change, f"wotr: claim on {commit}")


def merge_union(repo: Repo, other_ref: str) -> int:
    """Union every note of ``other_ref`` into refs/notes/wotr; returns how many notes changed."""
    r = _open(repo)
    try:
        other_tip = r.references[other_ref].target
    except KeyError:
        return 0
    theirs = _note_map(r, other_tip)
    changed = 0

    def change(notes: dict[str, bytes]) -> bool:
        nonlocal changed
        changed = 0
        for commit, data in theirs.items():
            mine = notes.get(commit, b"")
            mine_lines = {ln for ln in mine.split(b"\n") if ln.strip()}
            if {ln for ln in data.split(b"\n") if ln.strip()} <= mine_lines:
                continue
            notes[commit] = union_bytes(mine, data)
            changed += 1
        return changed > 0

    def is_ancestor() -> bool:
        try:
            local = r.references[NOTES_REF].target
        except KeyError:
            return False
        return bool(local == other_tip or r.descendant_of(local, other_tip))

    if is_ancestor():
        return 0
    updated = _update(repo, change, f"wotr: union with {other_ref}", extra_parents=[str(other_tip)])
    if not updated:
        # nothing new in theirs, but record the merge so later pushes fast-forward
        _update(
            repo,
            lambda notes: True,
            f"wotr: union with {other_ref}",
            extra_parents=[str(other_tip)],
        )
    return changed
