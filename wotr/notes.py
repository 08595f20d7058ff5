"""The only module that reads and writes wotr notes (DESIGN §3).

- Reading one note (the installer's path) asks git: one short process, and no pygit2 import
  (~80 ms) on every package install.
- Appending one line (``sign``) uses git plumbing (cat-file, fast-import): blobs keep their
  exact bytes (a note may hold hostile non-UTF-8 lines that must survive untouched), and the
  ref moves only over what we read, so a concurrent writer makes us retry instead of losing
  its line.
- The union merge of ``fetch``/``push`` (pygit2) lives in :mod:`wotr.notes_merge`.
"""

from __future__ import annotations

import re

from . import git
from ._record import record
from .errors import WotrError
from .git import NOTES_REF, Repo

MAX_NOTE_BYTES = 64 * 1024 * 1024
_HEX = frozenset("0123456789abcdef")
_CAS_ATTEMPTS = 20


class NotesError(WotrError):
    """The notes ref could not be read or updated; nothing was changed."""


def read(repo: Repo, commit: str, ref: str = NOTES_REF) -> bytes:
    """The raw note of ``commit`` under ``ref`` (empty when there is none).

    At most ``MAX_NOTE_BYTES + 1`` bytes are read: a longer note (which counts for nothing,
    see :func:`too_large`) comes back cut there, so a note of gigabytes costs no more memory.
    """
    res = git.run(repo, "notes", f"--ref={ref}", "show", commit, max_stdout=MAX_NOTE_BYTES)
    if res.truncated:
        return res.stdout
    if res.returncode != 0:
        if b"no note found" in res.stderr or b"failed to resolve" in res.stderr:
            return b""
        raise NotesError(f"cannot read the note of {commit[:12]} from {ref}: {res.err_line}")
    return res.stdout


def too_large(data: bytes) -> bool:
    """Is this note over the limit? Such a note counts for nothing (DESIGN §6 rule 8)."""
    return len(data) > MAX_NOTE_BYTES


# No envelope line is shorter: the payload alone names a 40-hex commit, a 40-hex tree and a
# 64-hex digest among fixed in-toto/SLSA strings (over 400 bytes, over 530 in base64).
# Shorter lines are never claims, so they are counted, never stored (tests/test_notes.py).
MIN_ENVELOPE_BYTES = 256
# Short lines are listed by number up to this many; the rest are only counted.
MAX_LISTED_SHORT = 100

_LONG = re.compile(rb"^[^\n]{%d,}" % MIN_ENVELOPE_BYTES, re.M)
_BLANKS = b" \t\r\f\v"
_MARK = bytes(10 if i == 10 else 97 for i in range(256))
_SHORT = re.compile(rb"^(?=[^\n]{0,%d}$)[ \t\r\f\v]*[^\s]" % (MIN_ENVELOPE_BYTES - 1), re.M)


@record
class Split:
    """A note cut into lines at C speed, memory bounded by the note's size, whatever its shape."""

    candidates: list[tuple[int, bytes]]  # distinct lines that may be envelopes, with line numbers
    short: list[int]  # numbers of the first MAX_LISTED_SHORT short non-blank lines
    short_count: int  # every short non-blank line: never a claim

    @property
    def count(self) -> int:
        return len(self.candidates) + self.short_count


def split(data: bytes) -> Split:
    """Line order carries no meaning; blank lines are ignored; line numbers are 1-based."""
    seen: set[bytes] = set()
    candidates: list[tuple[int, bytes]] = []
    long_lines = 0
    number, pos = 1, 0
    for m in _LONG.finditer(data):
        number += data.count(b"\n", pos, m.start())
        pos = m.start()
        line = m.group().rstrip(b"\r")
        if not line.strip():
            continue
        long_lines += 1
        if line not in seen:
            seen.add(line)
            candidates.append((number, line))
    short: list[int] = []
    number, pos = 1, 0
    for m in _SHORT.finditer(data):
        if len(short) == MAX_LISTED_SHORT:
            break
        number += data.count(b"\n", pos, m.start())
        pos = m.start()
        short.append(number)
    if len(short) < MAX_LISTED_SHORT:
        return Split(candidates, short, len(short))
    # Count the non-blank lines in C, with one copy and no object per line: blanks dropped,
    # every other byte but the newline made "a"; each non-blank line then ends in "a\n".
    marked = data.translate(_MARK, _BLANKS)
    nonblank = marked.count(b"a\n") + marked.endswith(b"a")
    return Split(candidates, short, nonblank - long_lines)


def union_bytes(*notes: bytes) -> bytes:
    """cat_sort_uniq: every distinct non-empty line of every note, byte-sorted, \\n-ended."""
    merged = {ln for note in notes for ln in note.split(b"\n") if ln.strip()}
    return b"".join(ln + b"\n" for ln in sorted(merged))


# --- appending one line (git plumbing, no pygit2) -------------------------------------------------
#
# ``sign`` changes one note. One ``git cat-file --batch`` reads the notes tip and only the tree
# objects on the note's path; then ``hash-object`` writes the blob (exact bytes), ``mktree`` the
# trees on that path (every other entry kept as it was), ``commit-tree`` the commit, and
# ``update-ref REF NEW OLD`` moves the ref only if it still holds the tip we read — a
# compare-and-swap under the ref's lock, as with pygit2. That saves importing pygit2 (~80 ms) on
# every sign; the union merge (notes_merge.py) keeps pygit2 (it walks and rebuilds many trees).

_ENTRY = {n: re.compile(rb"([0-7]{1,6}) ([^\x00]+)\x00(.{%d})" % n, re.S) for n in (20, 32)}
_TYPE = {b"40000": "tree", b"160000": "commit"}
# Modes of a tree entry that is a note: regular files only (a symbolic link, a subtree or a
# gitlink at a note's path is no note to git, so none to wotr either).
_NOTE_MODES = (b"100644", b"100755")


def _entries(data: bytes, rawlen: int) -> dict[bytes, tuple[bytes, str]]:
    """name -> (mode, hex object id) of a raw tree object (a name listed twice is refused:
    rewriting such a tree would keep one copy and drop what git reads in the others)."""
    found = _ENTRY[rawlen].findall(data)
    entries = {name: (mode, oid.hex()) for mode, name, oid in found}
    if len(entries) != len(found):
        raise NotesError(
            f"the {NOTES_REF} tree lists a name twice (made by hand or by a hostile remote)",
            "look at it with 'git ls-tree -r refs/notes/wotr'; reset the ref to a commit "
            "before that change",
        )
    return entries


@record(frozen=False)
class _Level:
    prefix: str  # path of this tree inside the notes tree, "" or e.g. "ab/"
    entries: dict[bytes, tuple[bytes, str]]


@record(frozen=False)
class _Note:
    tip: str | None
    levels: list[_Level]  # the trees from the top down along the note's path
    found: list[str]  # paths of every layout of the note (two layouts of one note: keep both)
    data: bytes  # their bytes, joined
    fanout: bool


def _read_note(repo: Repo, commit: str) -> _Note:
    rawlen = len(commit) // 2
    with git.ObjectReader(repo) as reader:
        head = reader.get(NOTES_REF)
        if head is None:
            return _Note(None, [_Level("", {})], [], b"", False)
        tip, kind, data = head
        if kind != "commit" or not data.startswith(b"tree "):
            raise NotesError(
                f"{NOTES_REF} does not point at a notes commit",
                f"delete it with 'git update-ref -d {NOTES_REF}' and fetch again",
            )
        tree_id = data[5 : data.index(b"\n")].decode("ascii")
        levels: list[_Level] = []
        found: list[tuple[str, str]] = []
        prefix, rest = "", commit
        while True:
            got = reader.get(tree_id)
            if got is None or got[1] != "tree":
                raise NotesError(f"cannot read the notes tree {prefix or '/'} at {tip[:12]}")
            entries = _entries(got[2], rawlen)
            levels.append(_Level(prefix, entries))
            entry = entries.get(rest.encode())
            if entry is not None and entry[0] in _NOTE_MODES:
                found.append((prefix + rest, entry[1]))
            sub = entries.get(rest[:2].encode()) if len(rest) > 2 else None
            if sub is None or sub[0] != b"40000":
                break
            tree_id, prefix, rest = sub[1], f"{prefix}{rest[:2]}/", rest[2:]
        blobs = []
        for path, oid in found:
            try:
                blob = reader.get(oid, limit=MAX_NOTE_BYTES)
            except git.ObjectTooLarge:
                raise _flooded(commit) from None
            if blob is None or blob[1] != "blob":
                raise NotesError(f"cannot read the note {path} of {NOTES_REF} at {tip[:12]}")
            blobs.append(blob[2])
    fanout = any(
        mode == b"40000" and len(name) == 2 and set(name.decode("latin-1")) <= _HEX
        for name, (mode, _) in levels[0].entries.items()
    )
    # Two layouts of one note are read as git reads them, one after the other; a blob without
    # a final newline must not glue its last line to the next blob's first (that would break
    # an honest claim when sign rewrites the note).
    data = b"".join(b if not b or b.endswith(b"\n") else b + b"\n" for b in blobs)
    return _Note(tip, levels, [p for p, _ in found], data, fanout)


def _flooded(commit: str) -> NotesError:
    return NotesError(
        f"the note of {commit[:12]} would be over the {MAX_NOTE_BYTES}-byte limit (flooded?), "
        "and such a note counts for nothing: wotr will not add to it",
        f"look at it with 'git notes --ref=wotr show {commit[:12]} | head'; a note this large "
        "is hostile or broken: ask the repository's maintainers to remove it",
    )


def _write_tree(repo: Repo, entries: dict[bytes, tuple[bytes, str]]) -> str:
    listing = b"".join(
        mode + b" " + _TYPE.get(mode, "blob").encode() + b" " + oid.encode() + b"\t" + name + b"\0"
        for name, (mode, oid) in entries.items()
    )
    return git.check(repo, "mktree", "-z", input=listing)


def _new_tree(repo: Repo, note: _Note, path: str, blob: str) -> str:
    """The notes tree with ``path`` set to ``blob`` and the note's other layouts removed."""
    changes: dict[str, str | None] = {p: None for p in note.found if p != path}
    changes[path] = blob
    levels = list(note.levels)
    while len(levels) < path.count("/") + 1:  # a new fanout directory
        levels.append(_Level(levels[-1].prefix + path[len(levels[-1].prefix) :][:3], {}))
    new_id: str | None = None
    for level in reversed(levels):  # deepest first: each new subtree goes into its parent
        entries = dict(level.entries)
        for p, oid in changes.items():
            if p.startswith(level.prefix) and "/" not in p[len(level.prefix) :]:
                name = p[len(level.prefix) :].encode()
                if oid is None:
                    entries.pop(name, None)
                else:
                    entries[name] = (b"100644", oid)
        below = [lv for lv in levels if lv.prefix.startswith(level.prefix) and lv is not level]
        if below and new_id is not None:
            name = below[0].prefix[len(level.prefix) :].rstrip("/").encode()
            if new_id == "":
                entries.pop(name, None)  # the subtree became empty
            else:
                entries[name] = (b"40000", new_id)
        new_id = _write_tree(repo, entries) if entries or level.prefix == "" else ""
    assert new_id
    return new_id


def _ident(repo: Repo, config: git.Config | None) -> dict[str, str]:
    name, email = git.identity(repo, config)
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


def append(repo: Repo, commit: str, line: bytes, config: git.Config | None = None) -> bool:
    """Add one envelope line to the note of ``commit``; False if the line was already there.

    Only that note's path changes in the notes tree, whatever the number of other notes; the
    ref moves by compare-and-swap and the whole step is retried if another writer moved it.
    ``config``: git config already read by the caller (for the committer identity).
    """
    if b"\n" in line.rstrip(b"\n"):
        raise ValueError("an envelope line may not contain a newline")
    if not (len(commit) in (40, 64) and set(commit) <= _HEX):
        raise ValueError(f"not a full commit id: {commit!r}")
    line = line.rstrip(b"\n") + b"\n"
    env = _ident(repo, config)
    message = f"wotr: claim on {commit}"
    for _ in range(_CAS_ATTEMPTS):
        note = _read_note(repo, commit)
        if line in {ln + b"\n" for ln in note.data.split(b"\n")}:
            return False
        old = note.data
        data = old + (b"\n" if old and not old.endswith(b"\n") else b"") + line
        if too_large(data):
            raise _flooded(commit)
        path = note.found[0] if note.found else _new_path(commit, note.fanout)
        blob = git.check(repo, "hash-object", "-w", "--stdin", input=data)
        tree = _new_tree(repo, note, path, blob)
        parents = ["-p", note.tip] if note.tip is not None else []
        new = git.check(
            repo, "commit-tree", "--no-gpg-sign", *parents, "-m", message, tree, env=env
        )
        expected = note.tip or "0" * len(new)
        res = git.run(repo, "update-ref", "-m", message, NOTES_REF, new, expected)
        if res.returncode == 0:
            return True
        problem = locked(repo)
        if problem is not None:
            raise problem
        if b"but expected" not in res.stderr and b"already exists" not in res.stderr:
            raise NotesError(f"cannot update {NOTES_REF}: {res.err_line}")
        # someone else wrote the ref: re-read and try again
    raise NotesError(
        f"{NOTES_REF} kept changing while wotr tried to update it",
        "another process is writing notes; try again",
    )


def _new_path(commit: str, fanout: bool) -> str:
    """Where a new note goes: flat, or 2/38 fanout when the tree already fans out (as git does)."""
    return f"{commit[:2]}/{commit[2:]}" if fanout else commit


# --- moving the ref -----------------------------------------------------------------------------


def locked(repo: Repo, ref: str = NOTES_REF) -> NotesError | None:
    """The error to raise when another git process holds the lock of ``ref``, else None."""
    lock = repo.common_dir / (ref + ".lock")
    if lock.exists():
        return NotesError(
            f"{ref} is locked ({lock} exists)",
            "if no other git command is running, delete that file and try again",
        )
    return None
