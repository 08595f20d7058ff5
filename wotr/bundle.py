"""Offline bundles: every claim on one commit in one file, checkable without the repository.

A bundle (``docs/bundles.md``) is a JSON object holding the commit id, the raw bytes of the
commit object, the tag it was exported from (if any) and the note lines verbatim. The reader
recomputes the commit id from the commit object and takes the tree id from it, so rule 4 of
DESIGN §6 (a claim's commit and tree must be the commit's) holds offline without trusting the
bundle's word. The bundle itself is never trusted: it only carries claims, and the claims are
checked exactly as notes are (:func:`wotr.verify.check`).

A directory of bundles is searched by artifact digest through a small cache of who-names-what
(``.wotr-index.json``), refreshed from ``stat`` results on every search; the cache only says which
bundles to read, and every bundle read is parsed and checked in full.

Imports stay light (no git, no gpg): this module is on the installer's path.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from . import claim as claim_mod
from ._record import record
from .errors import BadInput

FORMAT = "https://wotr.dev/bundle/v1"
# v1 plus the project's policy chain (DESIGN §7), written only when the project has one, so
# that a wotr that does not know the member refuses the bundle by its format, in one line.
FORMAT_CHAIN = "https://wotr.dev/bundle/v2"
INDEX_FORMAT = "https://wotr.dev/bundle-index/v1"
SUFFIX = ".wotr"
INDEX_NAME = ".wotr-index.json"
DEFAULT_DIR = Path("/var/lib/wotr/bundles")

MAX_BUNDLE_BYTES = 80 * 1024 * 1024  # a note at its 64 MiB limit, plus JSON quoting
MAX_COMMIT_OBJECT_BYTES = 4 * 1024 * 1024
MAX_INDEX_BYTES = 64 * 1024 * 1024

_FIELDS = {"format", "commit", "commit_object", "tag", "claims", "subjects"}
CHAIN_FIELD = "policy_chain"
_FIELDS_CHAIN = _FIELDS | {CHAIN_FIELD}
_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TREE_LINE = re.compile(rb"tree ([0-9a-f]{40}|[0-9a-f]{64})\n")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
MAX_REASON_CHARS = 300

# What the standard library can raise on hostile claim data besides ClaimError (which is a
# ValueError, as are binascii.Error and UnicodeError): one bad line must never stop a reader.
HOSTILE = (ValueError, UnicodeError, RecursionError, OverflowError, TypeError, KeyError)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: str) -> str:
    """``text`` safe to print on one line: control characters, line separators and lone
    surrogates (undecodable bytes of a file name) are escaped, never written raw."""
    return _UNPRINTABLE.sub(_escape, text)


def _clip(text: str, limit: int = MAX_REASON_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class BundleError(BadInput):
    """A bundle file is unreadable or malformed (exit 2); the message names the file."""


@record
class Bundle:
    commit: str
    tree: str
    tag: str | None  # full ref, e.g. refs/tags/v1.0, when exported from a tag
    commit_object: bytes
    claims: tuple[bytes, ...]  # note lines, verbatim, without their newline
    subjects: tuple[claim_mod.Subject, ...]  # of the well-formed claims for this commit
    source: str = ""  # where it was read from, for messages
    # The project's policy chain (a chain file's document, compact JSON: wotr.policycmd), as
    # carried; attacker data, checked only by an installer that pinned a policy.
    chain: bytes | None = None

    def note(self) -> bytes:
        """The claims as note bytes, ready for :func:`wotr.verify.check`."""
        return b"".join(line + b"\n" for line in self.claims)

    def digests(self) -> frozenset[str]:
        return frozenset(s.sha256 for s in self.subjects)


# --- building and writing -------------------------------------------------------------------


def commit_id(commit_object: bytes, hex_length: int) -> str:
    """The git object id of a commit object's bytes (sha1, or sha256 for 64-hex repos)."""
    header = b"commit %d\0" % len(commit_object)
    algo = hashlib.sha256 if hex_length == 64 else hashlib.sha1
    return algo(header + commit_object, usedforsecurity=True).hexdigest()


def tree_of(commit_object: bytes, hex_length: int) -> str | None:
    match = _TREE_LINE.match(commit_object)
    if match is None or len(match.group(1)) != hex_length:
        return None
    return match.group(1).decode("ascii")


def _subjects(commit: str, lines: Iterable[bytes]) -> tuple[claim_mod.Subject, ...]:
    """Subjects of every well-formed claim that names ``commit``; malformed lines add nothing."""
    found: set[claim_mod.Subject] = set()
    for line in lines:
        try:
            parsed = claim_mod.parse_payload(claim_mod.parse_line(line).payload)
        except HOSTILE:  # ClaimError, or anything odd data makes the standard library raise
            continue
        if parsed.commit == commit:
            found.update(parsed.subjects)
    return tuple(sorted(found))


def _parse_any(payload: bytes) -> object:
    from .withdraw import parse_any

    return parse_any(payload)


def build(
    commit: str, commit_object: bytes, tag: str | None, note: bytes, chain: bytes | None = None
) -> tuple[Bundle, int]:
    """A bundle of the well-formed envelopes in ``note`` (and the policy chain ``chain``, a
    chain file's bytes, when given); also how many lines were left out."""
    tree = tree_of(commit_object, len(commit))
    if tree is None or commit_id(commit_object, len(commit)) != commit:
        raise BundleError(f"the commit object given for {commit[:12]} does not hash to it")
    from . import notes

    kept: list[bytes] = []
    split = notes.split(note)  # distinct lines, memory bounded whatever the note's shape
    skipped = split.short_count
    for _, line in split.candidates:
        try:
            line.decode("ascii")  # envelopes are ASCII JSON; anything else is not one
            _parse_any(claim_mod.parse_line(line).payload)  # a claim or a withdrawal (§8)
        except HOSTILE:  # ClaimError, or anything odd data makes the standard library raise
            skipped += 1
            continue
        kept.append(line)
    kept.sort()
    bundle = Bundle(
        commit, tree, tag, commit_object, tuple(kept), _subjects(commit, kept), chain=chain
    )
    return bundle, skipped


def to_bytes(bundle: Bundle) -> bytes:
    """Deterministic bytes: the same commit, tag and claims give the same file anywhere."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "commit": bundle.commit,
        "tag": bundle.tag,
        "commit_object": base64.b64encode(bundle.commit_object).decode("ascii"),
        "subjects": [{"name": s.name, "sha256": s.sha256} for s in bundle.subjects],
        "claims": [line.decode("ascii") for line in bundle.claims],
    }
    if bundle.chain is not None:  # without a chain: the bytes of a v1 bundle, as always
        doc["format"] = FORMAT_CHAIN
        doc[CHAIN_FIELD] = json.loads(bundle.chain)
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=True).encode("ascii") + b"\n"


def write(data: bytes, target: Path) -> None:
    """Write ``data`` to ``target`` atomically: a temporary file in the same directory, renamed."""
    directory = target.parent if str(target.parent) else Path(".")
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise BadInput(f"cannot write {shown(str(target))}: {exc.strerror}") from exc
    try:
        _write_at(dfd, target.name, data, str(target))
    finally:
        os.close(dfd)


def _write_at(dfd: int, name: str, data: bytes, label: str) -> None:
    """Write ``data`` to ``name`` in the directory open as ``dfd``, atomically, mode 0644.

    Nothing here follows a symbolic link or acts on a path twice: the temporary file is created
    with O_EXCL|O_NOFOLLOW, its mode set with fchmod on the open descriptor, and the rename is
    relative to ``dfd``. Whoever else can write the directory may swap or delete the temporary
    file; that can spoil this write, never make it touch another file.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(32):
        tmp = f".{name}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o600, dir_fd=dfd)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise BadInput(f"cannot write {shown(label)}: {exc.strerror}") from exc
    else:
        raise BadInput(f"cannot write {shown(label)}: no free temporary name")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), 0o644)
            os.fsync(f.fileno())
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dfd)
        raise BadInput(f"cannot write {shown(label)}: {exc.strerror}") from exc


@record
class Exported:
    bundle: Bundle
    data: bytes
    skipped: int  # note lines left out: not a well-formed wotr envelope
    chain_problem: str = ""  # why the project's policy chain was left out ('' when it was not)


def export(repo: Any, rev: str, *, policy_chain: bool = True) -> Exported:
    """The bundle of every claim on the commit ``rev`` names (with its tag, when it is one),
    and the project's policy chain when it has one (``refs/wotr/policy``, DESIGN §7) unless
    ``policy_chain`` is False."""
    from . import git, notes

    revision = git.resolve(repo, rev)
    res = git.run(repo, "cat-file", "commit", revision.commit)
    if res.returncode != 0:
        raise git.GitError(f"git cat-file failed: {res.err_line}")
    if len(res.stdout) > MAX_COMMIT_OBJECT_BYTES:
        raise BundleError(
            f"commit {revision.commit[:12]} is over {MAX_COMMIT_OBJECT_BYTES} bytes",
            "a bundle cannot carry it; verify in the repository instead",
        )
    note = notes.read(repo, revision.commit)
    if notes.too_large(note):
        raise BundleError(
            f"the note of {revision.commit[:12]} is over the {notes.MAX_NOTE_BYTES}-byte limit "
            "(flooded?): nothing in it counts, so there is nothing to export"
        )
    chain, chain_problem = None, ""
    from . import chainstore

    if policy_chain and chainstore.present(repo.common_dir):  # no chain: the bytes of v1
        from . import policycmd

        chain, chain_problem = policycmd.chain_for_bundle(repo)
    bundle, skipped = build(revision.commit, res.stdout, revision.tag, note, chain)
    if not bundle.claims:
        where = revision.tag or revision.commit[:12]
        raise BadInput(
            f"no claims on {where} to export",
            "sign first, or run 'git wotr fetch' to get the claims of others",
        )
    data = to_bytes(bundle)
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"the bundle of {revision.commit[:12]} would be over the size limit")
    return Exported(bundle, data, skipped, chain_problem)


# --- reading ----------------------------------------------------------------------------------


def _need(cond: bool, source: str, what: str) -> None:
    if not cond:
        raise BundleError(f"{shown(source)} is not a valid wotr bundle: {_clip(shown(what))}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse(data: bytes, source: str) -> Bundle:
    """A bundle from its bytes; :class:`BundleError` (one line, naming ``source``) if malformed.

    Nothing else is raised, whatever the bytes: the bundle is attacker data.
    """
    try:
        return _parse(data, source)
    except BundleError:
        raise
    except (*HOSTILE, MemoryError) as exc:
        raise BundleError(
            f"{shown(source)} is not a valid wotr bundle: {type(exc).__name__}"
        ) from exc


def _parse(data: bytes, source: str) -> Bundle:
    _need(len(data) <= MAX_BUNDLE_BYTES, source, f"over {MAX_BUNDLE_BYTES} bytes")
    try:
        doc = json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise BundleError(
            f"{shown(source)} is not a valid wotr bundle: not JSON ({_clip(shown(str(exc)))})"
        ) from exc
    _need(isinstance(doc, dict), source, "not a JSON object")
    form = doc.get("format")
    _need(form in (FORMAT, FORMAT_CHAIN), source, f"format is not {FORMAT!r} or {FORMAT_CHAIN!r}")
    fields = _FIELDS_CHAIN if form == FORMAT_CHAIN else _FIELDS
    _need(set(doc) == fields, source, f"fields are {sorted(doc)}, expected {sorted(fields)}")
    chain = None
    if form == FORMAT_CHAIN:
        # Only the container is checked here (an object); its content is checked, bounded, by
        # an installer that pinned a policy (wotr.policycmd), and costs nothing to the others.
        _need(isinstance(doc[CHAIN_FIELD], dict), source, f"{CHAIN_FIELD} is not an object")
        chain = json.dumps(doc[CHAIN_FIELD], sort_keys=True, separators=(",", ":")).encode()
        chain += b"\n"
    commit = doc["commit"]
    _need(isinstance(commit, str) and bool(_OID.fullmatch(commit)), source, "bad commit id")
    raw = doc["commit_object"]
    _need(
        isinstance(raw, str) and len(raw) <= MAX_COMMIT_OBJECT_BYTES * 4 // 3 + 4,
        source,
        "commit_object is not a string of plausible size",
    )
    try:
        if not raw.isascii():  # b64decode raises a plain ValueError on non-ASCII text
            raise ValueError("not ASCII")
        commit_object = base64.b64decode(raw, validate=True)
    except ValueError as exc:  # binascii.Error is one
        raise BundleError(
            f"{shown(source)} is not a valid wotr bundle: commit_object not base64"
        ) from exc
    _need(
        commit_id(commit_object, len(commit)) == commit,
        source,
        f"commit_object does not hash to commit {commit[:12]} (altered?)",
    )
    tree = tree_of(commit_object, len(commit))
    _need(tree is not None, source, "commit_object has no tree line")
    assert tree is not None
    tag = doc["tag"]
    _need(
        tag is None or (isinstance(tag, str) and bool(claim_mod._REF.fullmatch(tag))),
        source,
        "tag is neither null nor refs/tags/NAME",
    )
    claims = doc["claims"]
    _need(isinstance(claims, list) and bool(claims), source, "claims is not a non-empty list")
    lines: list[bytes] = []
    for i, item in enumerate(claims):
        ok = isinstance(item, str) and item.strip() != "" and not any(c in item for c in "\r\n")
        _need(ok, source, f"claims[{i}] is not one non-empty line")
        lines.append(item.encode("utf-8", "surrogatepass"))
    subjects: list[claim_mod.Subject] = []
    _need(isinstance(doc["subjects"], list), source, "subjects is not a list")
    for i, item in enumerate(doc["subjects"]):
        ok = (
            isinstance(item, dict)
            and set(item) == {"name", "sha256"}
            and isinstance(item["name"], str)
            and isinstance(item["sha256"], str)
        )
        _need(ok, source, f"subjects[{i}] is not {{name, sha256}}")
        try:
            subjects.append(claim_mod.Subject(item["name"], item["sha256"]))
        except claim_mod.ClaimError as exc:
            _need(False, source, f"subjects[{i}]: {exc}")
    derived = _subjects(commit, lines)
    _need(
        tuple(subjects) == derived,
        source,
        "subjects do not match the claims (the list is derived from them, sorted)",
    )
    return Bundle(commit, tree, tag, commit_object, tuple(lines), derived, source, chain)


def read_regular(path: Path, limit: int, *, follow: bool = True) -> bytes:
    """At most ``limit + 1`` bytes of the regular file ``path``, read through one descriptor.

    A FIFO, socket or device is refused without blocking and without being opened when the
    ``stat`` before the ``open`` already shows it; the ``open`` is non-blocking (a FIFO swapped
    in after the ``stat`` opens at once) and ``fstat`` on the descriptor decides. With
    ``follow=False`` a symbolic link is refused too. OSError (``strerror`` says why) otherwise.
    """
    if not stat.S_ISREG(os.stat(path, follow_symlinks=follow).st_mode):
        raise OSError(errno.EINVAL, "not a regular file")
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    fd = os.open(path, flags | (0 if follow else os.O_NOFOLLOW))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if st.st_size > limit:
            raise OSError(errno.EFBIG, f"over {limit} bytes")
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 4 * 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_data(path: Path) -> bytes:
    """The bytes of one bundle file (at most MAX_BUNDLE_BYTES + 1); :class:`BundleError`."""
    try:
        return read_regular(path, MAX_BUNDLE_BYTES)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise BundleError(f"cannot read bundle {shown(str(path))}: {why}") from exc
    except ValueError as exc:  # e.g. a NUL byte in the path
        raise BundleError(f"cannot read bundle {shown(str(path))}: {exc}") from exc


def read(path: Path) -> Bundle:
    """Read and check one bundle file; :class:`BundleError` whatever is wrong with it."""
    return parse(read_data(path), str(path))


def sidecar(artifact: Path) -> Path:
    """Where the bundle of ``artifact`` lives when shipped next to it (``chart.tgz.wotr``)."""
    return artifact.with_name(artifact.name + SUFFIX)


# --- a directory of bundles, searched by digest ---------------------------------------------


@record
class Entry:
    """What the index remembers of one bundle file, keyed by its stat result."""

    size: int
    mtime_ns: int
    ino: int
    commit: str = ""
    digests: tuple[str, ...] = ()
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "ino": self.ino,
            "commit": self.commit,
            "digests": list(self.digests),
            "error": self.error,
        }


def _int_in(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value < high


def _entry_from_json(doc: Any) -> Entry | None:
    """One index entry, or None when anything about it is off (the file is then read again)."""
    if not isinstance(doc, dict) or set(doc) != {
        "size",
        "mtime_ns",
        "ino",
        "commit",
        "digests",
        "error",
    }:
        return None
    size, mtime_ns, ino = doc["size"], doc["mtime_ns"], doc["ino"]
    commit, digests, error = doc["commit"], doc["digests"], doc["error"]
    if not (
        _int_in(size, 0, 2**63)
        and _int_in(mtime_ns, -(2**63), 2**63)
        and _int_in(ino, 0, 2**64)
        and isinstance(commit, str)
        and (commit == "" or _OID.fullmatch(commit))
        and isinstance(digests, list)
        and all(isinstance(d, str) and _SHA256.fullmatch(d) for d in digests)
        and isinstance(error, str)
        and len(error) <= 4 * MAX_REASON_CHARS
        and (error == "") != (commit == "")  # a bundle that parsed, or why it did not
    ):
        return None
    return Entry(size, mtime_ns, ino, commit, tuple(digests), shown(error))


def _load_index(directory: Path) -> dict[str, Entry]:
    """The cached index, or nothing: whatever is wrong with it only means files are re-read."""
    try:
        data = read_regular(directory / INDEX_NAME, MAX_INDEX_BYTES, follow=False)
        doc = json.loads(data, parse_constant=_no_constant)
    except (OSError, *HOSTILE, MemoryError):
        return {}
    if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT:
        return {}
    files = doc.get("files")
    if not isinstance(files, dict):
        return {}
    out: dict[str, Entry] = {}
    for name, raw in files.items():
        entry = _entry_from_json(raw)
        if isinstance(name, str) and entry is not None:
            out[name] = entry
    return out


def index_readable(st: os.stat_result) -> bool:
    """Whether an index found in a directory with this ``stat`` is used at all: only in one
    that no one but its owner can write, the owner being the effective user or root. Elsewhere
    (say a sticky, world-writable directory) anyone could plant an index that hides the bundles
    of others, so every bundle is read each time."""
    owner_ok = st.st_uid in (os.geteuid(), 0)
    return owner_ok and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def index_writable(st: os.stat_result) -> bool:
    """Whether wotr persists an index in a directory with this ``stat``: only one that no one
    but the effective user can write (owned by it, not group- or world-writable)."""
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _save_index(directory: Path, entries: Mapping[str, Entry]) -> bool:
    """Best effort, and only in a directory of our own; False when nothing was written."""
    doc = {
        "format": INDEX_FORMAT,
        "files": {name: entries[name].to_json() for name in sorted(entries)},
    }
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if not index_writable(os.fstat(dfd)):
            return False
        data = json.dumps(doc, separators=(",", ":")).encode("ascii")
        _write_at(dfd, INDEX_NAME, data, str(directory / INDEX_NAME))
        return True
    except (BadInput, OSError):
        return False
    finally:
        os.close(dfd)


@record
class Directory:
    """The bundles of one directory: digest -> bundle files, and the files that did not parse."""

    path: Path
    by_digest: Mapping[str, tuple[Path, ...]]
    broken: tuple[tuple[Path, str], ...]
    count: int


def scan(directory: Path, *, update_index: bool = True) -> Directory:
    """Index ``directory/*.wotr``; bundles changed since the cached index are re-read."""
    try:
        listing = [
            e
            for e in os.scandir(directory)
            if e.name.endswith(SUFFIX) and not e.name.startswith(".")
        ]
    except OSError as exc:
        raise BadInput(
            f"cannot read the bundles directory {shown(str(directory))}: {exc.strerror}",
            "pass --bundles DIR with a readable directory",
        ) from exc
    try:
        trusted = index_readable(os.stat(directory))
    except OSError:
        trusted = False
    cached = _load_index(directory) if trusted else {}
    entries: dict[str, Entry] = {}
    changed = False
    for item in listing:
        try:
            st = item.stat()
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        old = cached.get(item.name)
        if old is not None and (old.size, old.mtime_ns, old.ino) == (
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
        ):
            entries[item.name] = old
            continue
        changed = True
        try:
            found = read(Path(item.path))
            entries[item.name] = Entry(
                st.st_size, st.st_mtime_ns, st.st_ino, found.commit, tuple(sorted(found.digests()))
            )
        except BundleError as exc:
            why = _clip(str(exc), 4 * MAX_REASON_CHARS) or "not a valid wotr bundle"
            entries[item.name] = Entry(st.st_size, st.st_mtime_ns, st.st_ino, error=why)
    if update_index and trusted and (changed or set(cached) != set(entries)):
        _save_index(directory, entries)
    by_digest: dict[str, list[Path]] = {}
    broken: list[tuple[Path, str]] = []
    for name in sorted(entries):
        entry = entries[name]
        if entry.error:
            broken.append((directory / name, entry.error))
        for digest in entry.digests:
            by_digest.setdefault(digest, []).append(directory / name)
    return Directory(
        directory, {d: tuple(p) for d, p in by_digest.items()}, tuple(broken), len(entries)
    )
