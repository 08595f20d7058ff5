"""The union merge of notes trees (DESIGN §3) and moving refs/notes/wotr to its result.

``fetch`` and ``push`` merge another side's notes commit into ours as a *union of lines* per
commit, never git's three-way notes merge (which would adopt a remote's deletion of a claim).
The trees are walked together with pygit2 and only subtrees whose ids differ are read, so the
work follows what is new, not the number of notes or the length of the notes history; and a
tree object met at two places of the other side's tree (a tree that names billions of paths
with a few objects) is refused before any of it is read twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import git
from ._record import record
from .errors import EnvironmentProblem
from .git import NOTES_REF, Repo
from .notes import MAX_NOTE_BYTES, NotesError, locked, too_large, union_bytes

_CAS_ATTEMPTS = 20
_HEX = frozenset("0123456789abcdef")


# --- pygit2 ---------------------------------------------------------------------------


def _pygit2() -> Any:
    try:
        import pygit2
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise EnvironmentProblem("pygit2 is not installed", "pip install pygit2") from exc
    return pygit2


def _open(repo: Repo) -> Any:
    return _pygit2().Repository(str(repo.git_dir))


def _signature(r: Any, repo: Repo) -> Any:
    name, email = git.identity(repo)
    return _pygit2().Signature(name, email)


# --- moving the ref -----------------------------------------------------------------------------


def _set_ref(r: Any, repo: Repo, ref: str, old: Any, new: Any, message: str) -> bool:
    """Compare-and-swap ``ref`` from ``old`` (None: absent) to ``new``; False if it moved."""
    pg = _pygit2()
    try:
        if old is None:
            r.references.create(ref, new, force=False)
            return True
        reference = r.references.get(ref)
        if reference is None or reference.target != old:
            return False
        reference.set_target(new, message)  # libgit2 checks the old value under the lock
        return True
    except (pg.AlreadyExistsError, pg.GitError, ValueError):
        return False
    except OSError as exc:  # libgit2 reports a held lock as OSError
        raise locked(repo, ref) or NotesError(f"cannot update {ref}: {exc}") from exc


def tip(repo: Repo, ref: str = NOTES_REF) -> str | None:
    """The commit ``ref`` points at, or None when it does not exist."""
    reference = _open(repo).references.get(ref)
    return None if reference is None else str(reference.target)


# --- union merge ----------------------------------------------------------------------------------
#
# A union never asks "what did the other side delete?": every line present on either side is in
# the result, so a remote whose history dropped or rewrote a claim cannot remove it here. Only the
# notes whose blobs differ are read: the two trees are walked together and every subtree with the
# same id on both sides is skipped, so merging a few new claims into 10,000 notes reads a few
# blobs. The result keeps our tree and changes only the notes that gained lines.


@record
class Merged:
    """The outcome of merging another notes commit into ours."""

    tip: str | None  # the commit refs/notes/wotr holds (or would hold) afterwards
    gained: int  # notes (one per annotated commit) that gained lines from the other side
    skipped: int  # notes of the other side larger than MAX_NOTE_BYTES, not merged (never counted)
    moved: bool  # whether refs/notes/wotr moved (or would move)


_REGULAR = (0o100644, 0o100755)  # filemodes of a note (see _NOTE_MODES)


def _is_note(entry: Any) -> bool:
    return entry is not None and entry.type_str == "blob" and entry.filemode in _REGULAR


def _real(r: Any, entry: Any, kind: str) -> Any:
    """The object ``entry`` names when it exists and really is a ``kind`` ("tree"/"blob"),
    else None: a hostile tree may list a blob under a tree's mode, or the other way round.
    For a blob only its header is read (a note may be 64 MiB); the entry stands in for it."""
    if kind == "blob":
        try:
            found = r.odb.read_header(entry.id)[0]
        except (KeyError, ValueError, _pygit2().GitError):
            return None
        return entry if int(found) == _pygit2().GIT_OBJECT_BLOB else None
    obj = r.get(entry.id)
    return obj if obj is not None and obj.type_str == kind else None


class _Walk:
    """One walk of two notes trees: what was found, and every object met on each side.

    A tree whose levels all point to one subtree names billions of paths with a few objects.
    A notes tree names each note once, so no honest tree holds one (non-empty) subtree at two
    paths: such a tree is refused the second time it is met, which bounds the walk's time and
    memory by the objects that exist, whatever the number of paths they spell. One note blob
    at several paths does occur (``git notes copy``, ``notes.rewriteRef`` on a rebase); those
    repeats are merged, up to ``MAX_NOTE_BYTES`` of repeated bytes per merge, then refused.
    """

    def __init__(self, r: Any, hexlen: int, other: str) -> None:
        self.r = r
        self.hexlen = hexlen
        self.other = other  # names the other side in messages
        self.strange: list[str] = []
        self.seen: tuple[dict[Any, str], dict[Any, str]] = ({}, {})  # ours, theirs: id -> path
        self.repeated = 0  # bytes of note blobs met again at another path

    def meet(self, side: int, entry: Any, path: str) -> None:
        """Note that ``entry`` was met at ``path`` on ``side`` (0 ours, 1 theirs)."""
        first = self.seen[side].setdefault(entry.id, path)
        if first == path:
            return
        if entry.type_str == "tree":
            if len(self.r[entry.id]) == 0:
                return  # an empty tree names nothing, wherever it is
            what = f"hold one tree at two paths ({first} and {path})"
        else:
            self.repeated += self.r.odb.read_header(entry.id)[1]
            if self.repeated <= MAX_NOTE_BYTES:
                return
            what = f"copy notes to many paths (over {MAX_NOTE_BYTES} bytes; {first} = {path})"
        where = f"the notes of {self.other}" if side else f"the local {NOTES_REF}"
        raise NotesError(
            f"{where} {what}: a tree built to spell far more notes than it holds; "
            "wotr will not merge it",
            "claims here are kept as they are; "
            + (
                "ask whoever runs that remote to reset its refs/notes/wotr to an earlier commit"
                if side
                else f"reset {NOTES_REF} to an earlier commit (see 'git reflog {NOTES_REF}')"
            ),
        )


def _differing(walk: _Walk, a: Any, b: Any, prefix: str = "") -> set[str]:
    """Names (full hex) of notes whose blob is not the same at the same path in trees a and b.

    ``walk.strange`` collects paths in b (the other side) that git might read differently
    from wotr: a note-like name in upper case, or something other than a regular file at a
    note's path. A tree with such entries is never adopted as it is (see :func:`_plan`)."""
    r, hexlen, strange = walk.r, walk.hexlen, walk.strange
    mine = {e.name: e for e in a} if a is not None else {}
    theirs = {e.name: e for e in b} if b is not None else {}
    if b is not None and r.TreeBuilder(b).write() != b.id:
        # a name twice, or entries out of git's order: git and libgit2 may each read another
        # of the copies (and lookups by name can miss one), so wotr cannot vouch for it
        strange.append(prefix or "/")
    out: set[str] = set()
    for name in mine.keys() | theirs.keys():
        ea, eb = mine.get(name), theirs.get(name)
        if ea is not None and eb is not None and ea.id == eb.id and ea.filemode == eb.filemode:
            continue
        full = prefix + name
        if not set(name) <= _HEX:
            if eb is not None and set(name.lower()) <= _HEX:
                strange.append(full)  # git reads upper-case hex names as notes too
            continue  # not a note (git keeps such entries; so do we, untouched)
        if len(full) == hexlen:
            na = ea if _is_note(ea) and _real(r, ea, "blob") is not None else None
            nb = eb if _is_note(eb) and _real(r, eb, "blob") is not None else None
            if eb is not None and nb is None:
                strange.append(full)
            for side, e in ((0, na), (1, nb)):
                if e is not None:
                    walk.meet(side, e, full)
            if na is not None or nb is not None:
                out.add(full)
        elif len(name) == 2 and len(full) < hexlen:
            sa = sb = None
            for side, e in ((0, ea), (1, eb)):
                if e is not None and e.type_str == "tree":
                    sub = _real(r, e, "tree")
                    if sub is None:
                        if side:
                            strange.append(full + "/")
                        continue
                    walk.meet(side, e, full + "/")
                    if side:
                        sb = sub
                    else:
                        sa = sub
            if sa is not None or sb is not None:
                out |= _differing(walk, sa, sb, full)
    return out


def _entry(tree: Any, name: str) -> Any:
    try:
        return tree[name]
    except KeyError:
        return None


def _find_all(r: Any, tree: Any, name: str) -> list[tuple[str, Any]]:
    """(path, blob id) of every layout of the note ``name`` in a notes tree (any fanout)."""
    found: list[tuple[str, Any]] = []
    path, rest = "", name
    while True:
        entry = _entry(tree, rest)
        if _is_note(entry) and _real(r, entry, "blob") is not None:
            found.append((path + rest, entry.id))
        head = rest[:2]
        sub = _entry(tree, head) if len(rest) > 2 else None
        tree = _real(r, sub, "tree") if sub is not None and sub.type_str == "tree" else None
        if tree is None:
            return found
        path, rest = f"{path}{head}/", rest[2:]


def _apply(r: Any, tree: Any, changes: Mapping[str, Any]) -> Any:
    """A copy of ``tree`` with each path set to a blob id, or removed where the id is None."""
    pg = _pygit2()
    tb = r.TreeBuilder(tree) if tree is not None else r.TreeBuilder()
    inner: dict[str, dict[str, Any]] = {}
    for path, oid in changes.items():
        head, _, rest = path.partition("/")
        if rest:
            inner.setdefault(head, {})[rest] = oid
        elif oid is None:
            if tb.get(head) is not None:
                tb.remove(head)
        else:
            tb.insert(head, oid, pg.GIT_FILEMODE_BLOB)
    for head, sub in inner.items():
        existing = tb.get(head)
        subtree = (
            _real(r, existing, "tree")
            if existing is not None and existing.type_str == "tree"
            else None
        )
        new = _apply(r, subtree, sub)
        if len(r[new]) == 0:
            if existing is not None:
                tb.remove(head)
        else:
            tb.insert(head, new, pg.GIT_FILEMODE_TREE)
    return tb.write()


def _note_blobs(r: Any, found: Iterable[tuple[str, Any]]) -> list[bytes] | None:
    """The blobs of the layouts ``found`` of one note; None when one is over MAX_NOTE_BYTES
    (such a note counts for nothing, and is not read into memory)."""
    found = list(found)
    if any(r.odb.read_header(oid)[1] > MAX_NOTE_BYTES for _, oid in found):
        return None
    return [r[oid].data for _, oid in found]


def _line_set(blobs: Iterable[bytes]) -> set[bytes]:
    return {ln for data in blobs for ln in data.split(b"\n") if ln.strip()}


def _resolve(r: Any, spec: str) -> Any:
    """The commit id ``spec`` (a ref name or a full hex id) names; None for a missing ref."""
    pg = _pygit2()
    if len(spec) in (40, 64) and set(spec) <= _HEX:
        oid = pg.Oid(hex=spec)
    else:
        reference = r.references.get(spec)
        if reference is None:
            return None
        oid = reference.resolve().target
    obj = r.get(oid)
    if obj is None or obj.type != pg.GIT_OBJECT_COMMIT:
        raise NotesError(
            f"{spec} does not point at a notes commit",
            f"delete it with 'git update-ref -d {spec}' and fetch again",
        )
    return oid


def _ancestor(repo: Repo, ancestor: Any, descendant: Any) -> bool:
    """Asked of git, not libgit2: ``descendant_of`` walks the whole notes history (a second
    at 150,000 notes commits), git answers from its commit graph in milliseconds."""
    try:
        return git.is_ancestor(repo, str(ancestor), str(descendant))
    except git.GitError as exc:
        raise NotesError(exc.message, "the notes history may be incomplete; fetch again") from exc


def _plan(r: Any, repo: Repo, base: Any, other: Any, message: str) -> Merged:
    """The notes commit holding every line of ``base`` and of ``other``; writes objects only."""
    if other is None:
        return Merged(None if base is None else str(base), 0, 0, False)
    hexlen = len(str(other))
    if base is None:
        walk = _Walk(r, hexlen, message.removeprefix("wotr: union with "))
        names = _differing(walk, None, r[other].tree)
        odd = walk.strange
        layouts = {name: _find_all(r, r[other].tree, name) for name in names}
        if not odd and all(len(found) == 1 for found in layouts.values()):
            return Merged(str(other), len(names), 0, True)  # git reads it as wotr does
        # Not adopted as it is: a tree of our own with their notes (each in one layout),
        # with theirs as parent so that the next push fast-forwards.
        fresh: dict[str, Any] = {}
        for found in layouts.values():
            blobs = _note_blobs(r, found)
            if blobs is None:
                continue
            union = union_bytes(*blobs)
            if not too_large(union):
                fresh[found[0][0]] = r.create_blob(union)
        sig = _signature(r, repo)
        new = r.create_commit(None, sig, sig, message, _apply(r, None, fresh), [other])
        return Merged(str(new), len(fresh), len(layouts) - len(fresh), True)
    if base == other or _ancestor(repo, other, base):
        return Merged(str(base), 0, 0, False)
    ours, theirs = r[base].tree, r[other].tree
    changes: dict[str, Any] = {}
    gained = skipped = 0
    walk = _Walk(r, hexlen, message.removeprefix("wotr: union with "))
    differing = _differing(walk, ours, theirs)
    strange = walk.strange
    # Adopting their tree as it is (a fast-forward) needs git to read it as wotr does: no
    # strange entries, one layout per note. Otherwise our own tree, plus what theirs adds.
    lost = bool(strange)  # or: some line of ours is missing from theirs
    for name in sorted(differing):
        mine, their = _find_all(r, ours, name), _find_all(r, theirs, name)
        lost = lost or len(their) > 1
        mine_blobs, their_blobs = _note_blobs(r, mine), _note_blobs(r, their)
        if mine_blobs is None or their_blobs is None:
            skipped += 1  # a note this large counts for nothing (verify says so); keep ours as is
            lost = True
            continue
        mine_lines, their_lines = _line_set(mine_blobs), _line_set(their_blobs)
        lost = lost or not mine_lines <= their_lines
        if their_lines <= mine_lines:
            continue
        union = union_bytes(*mine_blobs, *their_blobs)
        if too_large(union):
            skipped += 1  # the union would be a dead note: keep ours, as for a huge note above
            lost = True
            continue
        gained += 1
        keep = mine[0][0] if mine else their[0][0]  # our layout where we have the note
        for path, _ in mine[1:]:
            changes[path] = None  # one layout per note from now on
        changes[keep] = r.create_blob(union)
    fast_forward = _ancestor(repo, base, other)
    if fast_forward and not lost:
        return Merged(str(other), gained, skipped, True)  # theirs already holds every line of ours
    # A commit even when nothing was gained: with theirs as a parent, the next push fast-forwards.
    tree = _apply(r, ours, changes) if changes else ours.id
    parents = [other] if fast_forward else [base, other]
    sig = _signature(r, repo)
    new = r.create_commit(None, sig, sig, message, tree, parents)
    return Merged(str(new), gained, skipped, True)


def plan_union(repo: Repo, other: str, message: str) -> tuple[str | None, Merged]:
    """(current tip of refs/notes/wotr, the union with ``other``) without moving any ref."""
    r = _open(repo)
    theirs = _resolve(r, other)
    reference = r.references.get(NOTES_REF)
    base = None if reference is None else reference.target
    return (None if base is None else str(base)), _plan(r, repo, base, theirs, message)


def plan_onto(repo: Repo, base: str | None, other: str, message: str) -> Merged:
    """The union of the notes commit ``base`` (None: no notes) with ``other``; moves no ref.

    ``push`` retries by merging the remote's new tip into its previous union, so each retry
    reads only what arrived since (the walk skips every subtree the two share)."""
    r = _open(repo)
    theirs = _resolve(r, other)
    mine = None if base is None else _resolve(r, base)
    return _plan(r, repo, mine, theirs, message)


def merge_union(repo: Repo, other: str, message: str | None = None) -> Merged:
    """Union every note of ``other`` (a ref or commit id) into refs/notes/wotr, atomically.

    No line of ours is ever dropped, whatever the other side's history deleted or rewrote.
    Raises :class:`NotesError` (nothing changed) when the ref is locked or keeps moving.
    """
    problem = locked(repo)
    if problem is not None:
        raise problem
    message = message or f"wotr: union with {other}"
    r = _open(repo)
    theirs = _resolve(r, other)
    for _ in range(_CAS_ATTEMPTS):
        reference = r.references.get(NOTES_REF)
        base = None if reference is None else reference.target
        merged = _plan(r, repo, base, theirs, message)
        if not merged.moved:
            return merged
        assert merged.tip is not None
        if _set_ref(r, repo, NOTES_REF, base, _pygit2().Oid(hex=merged.tip), message):
            return merged
    raise NotesError(
        f"{NOTES_REF} kept changing while wotr tried to merge {other} into it",
        "another process is writing notes; try again",
    )


def advance(repo: Repo, old: str | None, new: str, message: str) -> Merged:
    """Move refs/notes/wotr from ``old`` to ``new``; if it moved meanwhile, union ``new`` in."""
    pg = _pygit2()
    r = _open(repo)
    if old == new:
        return Merged(new, 0, 0, False)
    old_oid = None if old is None else pg.Oid(hex=old)
    if _set_ref(r, repo, NOTES_REF, old_oid, pg.Oid(hex=new), message):
        return Merged(new, 0, 0, True)
    return merge_union(repo, new, message)
