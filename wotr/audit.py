"""``git wotr audit``: after a key is lost, which releases lean on that signer (DESIGN §8).

For every noted commit (and every tag on one) where the signer's claims count, say whether it
verifies now and whether it would still verify without them. Work is bounded: every note is
read once through one ``git cat-file --batch``; a cheap pass keeps only notes holding a line
for that commit whose signature names one of the signer's keys (lines that could never count
for it); only those go to gpg, on every core, each note bounded as in ``verify``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from . import _fs, _openpgp, _record, _sshsig, consensus, git, notes, verify
from . import claim as claim_mod
from ._record import record
from .errors import BadInput
from .policy import Policy

# Notes checked together, and the note bytes one batch may hold (a note may hold 64 MiB):
# bound the memory of a batch (each note is bounded as in verify).
_BATCH = 500
_BATCH_BYTES = 64 * 1024 * 1024


@record
class Entry:
    commit: str
    tag: str | None
    verified: bool  # as the policy stands
    verified_without: bool  # with that signer's claims left out
    artifacts: tuple[str, ...]  # names the signer's counting claims cover


@record
class Audit:
    signer: str
    fingerprints: tuple[str, ...]
    entries: tuple[Entry, ...]
    noted: int  # noted commits read
    checked: int  # of them, sent to gpg


def _signer(policy: Policy, signer: str | None, key: str | None) -> str:
    if signer is not None:
        if not any(s.name == signer for s in policy.signers):
            raise BadInput(
                f"{signer!r} is not a signer of the policy ({policy.path})",
                "name one of: " + ", ".join(s.name for s in policy.signers),
            )
        return signer
    fpr = (key or "").upper().removeprefix("0X")
    found = policy.signer_for(fpr)
    if found is None:
        raise BadInput(
            f"key {key} is not in the policy ({policy.path})",
            "give a full primary fingerprint listed in the policy",
        )
    return found.name


def _noted(repo: git.Repo) -> list[tuple[str, str]]:
    """(note blob, commit) of every note on refs/notes/wotr."""
    res = git.run(repo, "notes", "--ref=wotr", "list")
    if res.returncode != 0:
        return []
    out = []
    for line in res.stdout.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) == 2:
            out.append((parts[0], parts[1]))
    return out


def _tags(repo: git.Repo) -> dict[str, list[str]]:
    """Commit -> the tags on it, as ``verify --rev <tag>`` resolves them (``<tag>^{commit}``):
    a tag of a tag (``git tag -a outer inner``) is peeled to its commit too."""
    res = git.run(
        repo,
        "for-each-ref",
        "--format=%(objectname) %(*objectname) %(*objecttype) %(refname)",
        "refs/tags",
    )
    by: dict[str, list[str]] = {}
    nested: list[str] = []  # tags whose target is another tag
    for line in res.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4:
            if parts[2] == "tag":
                nested.append(parts[3])
                continue
            target = parts[1] or parts[0]
            by.setdefault(target, []).append(parts[3])
    if nested:
        res = git.run(
            repo,
            "cat-file",
            "--batch-check=%(objectname) %(objecttype)",
            input="".join(f"{ref}^{{commit}}\n" for ref in nested).encode(),
        )
        out = res.stdout.decode("utf-8", "replace").splitlines()
        for ref, answer in zip(nested, out, strict=False):
            parts = answer.split(" ")
            if len(parts) == 2 and parts[1] == "commit":
                by.setdefault(parts[0], []).append(ref)
    return by


def _stream(repo: git.Repo, blobs: Sequence[str]) -> Iterator[bytes | None]:
    """Each blob's bytes in order (None: missing, not a blob or over the note limit), from one
    ``git cat-file --batch`` reading the ids from a file: no round trip per note, and memory
    bounded by one note."""
    import subprocess

    argv, env = git.command(repo, "cat-file", "--batch")  # no replace refs, no lazy fetch
    with _fs.anonymous_file() as ids:
        ids.write(b"".join(b.encode("ascii") + b"\n" for b in blobs))
        ids.seek(0)
        proc = subprocess.Popen(
            argv,
            cwd=repo.cwd,
            stdin=ids,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            bufsize=1 << 20,
        )
    stdout = proc.stdout
    assert stdout is not None
    try:
        for _ in blobs:
            header = stdout.readline().split()
            if len(header) != 3 or not header[2].isdigit():
                yield None
                continue
            size = int(header[2]) + 1  # and the newline after the object
            if size > notes.MAX_NOTE_BYTES or header[1] != b"blob":
                while size > 0:  # discarded in bounded pieces
                    piece = stdout.read(min(size, 1 << 20))
                    if not piece:
                        break
                    size -= len(piece)
                yield None
                continue
            yield stdout.read(size)[:-1]
    finally:
        stdout.close()
        proc.kill()
        proc.wait()


def b64_needles(needle: bytes) -> tuple[bytes, ...]:
    """Byte strings of which one occurs in base64(x) whenever ``needle`` occurs in x: the
    encoding of ``needle`` at each of the three alignments, without the characters that
    depend on the bytes around it."""
    import base64

    out = []
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + needle)
        out.append(enc[-(-8 * k // 6) : (k + len(needle)) * 8 // 6])
    return tuple(out)


def _mentions(note: bytes, commit: str, ids: frozenset[str]) -> bool:
    """Could a line of ``note`` be a counting claim of the signer on ``commit``? (no gpg)"""
    if notes.too_large(note) or not any(n in note for n in b64_needles(commit.encode())):
        return False  # no payload in the note names this commit (rule 4): nothing can count
    needle = commit.encode()
    for _, raw in notes.split(note).candidates:
        try:
            env = claim_mod.parse_line(raw)
        except claim_mod.ClaimError:
            continue
        if needle not in env.payload:
            continue
        try:
            if _sshsig.is_sshsig(env.sig):  # DESIGN §9: the key inside the blob names it
                if _sshsig.parse_signature(env.sig).key.fingerprint in ids:
                    return True
            elif _openpgp.issuers(env.sig) & ids:
                return True
        except (_openpgp.PacketError, _sshsig.SshFormatError):
            continue
    return False


def audit(
    repo: git.Repo, policy: Policy, *, signer: str | None = None, key: str | None = None
) -> Audit:
    name = _signer(policy, signer, key)
    ids = frozenset(i for i, owners in policy.issuers if name in owners)
    fprs = tuple(sorted(next(s for s in policy.signers if s.name == name).fingerprints))
    noted = _noted(repo)
    tags = _tags(repo)
    found: list[tuple[str, str, int]] = []  # commit, note blob, its size
    for (blob, commit), data in zip(noted, _stream(repo, [b for b, _ in noted]), strict=True):
        if data is not None and _mentions(data, commit, ids):
            found.append((commit, blob, len(data)))  # the bytes are read again per batch
    todo: list[tuple[str, str, str, int]] = []  # commit, tree, note blob, size
    with git.ObjectReader(repo) as reader:
        for commit, blob, size in found:
            obj = reader.get(commit, 4 * 1024 * 1024)
            if obj is None or obj[1] != "commit" or not obj[2].startswith(b"tree "):
                continue
            tree = obj[2][5 : obj[2].index(b"\n")].decode("ascii")
            todo.append((commit, tree, blob, size))

    # Noted commits go to verify.check_many in batches: one isolated gpg home and few gpg
    # processes per batch instead of one home and process per commit, so a signer with claims
    # on every one of 30,000 commits costs minutes, not hours. A batch holds at most _BATCH
    # notes and _BATCH_BYTES of them (or one note): the notes are never all in memory. Each
    # note is checked once, whatever the number of tags on its commit (see _for_tag).
    entries: list[Entry] = []
    for batch in _batches(todo):
        notes_read = list(_stream(repo, [blob for _, _, blob, _ in batch]))
        items = [
            (note, verify.Context(commit, tree, None))
            for (commit, tree, _, _), note in zip(batch, notes_read, strict=True)
            if note is not None
        ]
        del notes_read
        for (_, ctx), checked in zip(items, verify.check_many(policy, items), strict=True):
            for tag in (None, *sorted(tags.get(ctx.commit, ()))):
                asked = _for_tag(checked, tag)
                mine = [c for c in asked.counted if c.signer == name]
                if mine:
                    entries.append(_entry(policy, asked, mine, name, ctx.commit, tag))
    return Audit(name, fprs, tuple(entries), len(noted), len(todo))


def _batches(
    todo: Sequence[tuple[str, str, str, int]],
) -> Iterator[Sequence[tuple[str, str, str, int]]]:
    start = 0
    while start < len(todo):
        end, size = start + 1, todo[start][3]
        while end < len(todo) and end - start < _BATCH and size + todo[end][3] <= _BATCH_BYTES:
            size += todo[end][3]
            end += 1
        yield todo[start:end]
        start = end


def _for_tag(checked: verify.CheckedNote, tag: str | None) -> verify.CheckedNote:
    """``checked`` (asked with no tag) as :func:`verify.check` asked about ``tag`` would give
    it, for what audit uses (counted and unchecked claims): nothing before the admission rules
    depends on the tag, and with a tag only claims built for it count (rule 5), withdrawals
    cancelling claim by claim either way."""
    if tag is None:
        return checked
    return _record.replace(
        checked,
        ctx=_record.replace(checked.ctx, tag=tag),
        counted=tuple(c for c in checked.counted if consensus.built_for_tag(c.claim, tag)),
        unchecked=tuple(u for u in checked.unchecked if consensus.built_for_tag(u.claim, tag)),
    )


def _entry(
    policy: Policy,
    checked: verify.CheckedNote,
    mine: Sequence[consensus.Counted],
    name: str,
    commit: str,
    tag: str | None,
) -> Entry:
    # As verify decides: unchecked lines (a limit) taken at their worst (rule 8).
    unchecked = checked.unchecked
    now = consensus.decide(policy, checked.counted, checked.rejected, None, unchecked=unchecked)
    others = [c for c in checked.counted if c.signer != name]
    theirs = [
        _record.replace(u, signers=tuple(s for s in u.signers if s != name)) for u in unchecked
    ]
    without = consensus.decide(
        policy, others, checked.rejected, None, unchecked=[u for u in theirs if u.signers]
    )
    names = sorted({s.name for c in mine for s in c.claim.subjects})
    return Entry(commit, tag, now.verified, without.verified, tuple(names))


def text(result: Audit) -> str:
    out = [
        f"audit of {result.signer} ({', '.join(result.fingerprints)}): "
        f"{len(result.entries)} release(s) where its claims count "
        f"({result.noted} noted commits read, {result.checked} checked)"
    ]
    for e in result.entries:
        where = e.tag.removeprefix("refs/tags/") if e.tag else "-"
        now = "verifies" if e.verified else "does not verify"
        after = "still verifies" if e.verified_without else "NO LONGER VERIFIES"
        if not e.verified:
            after = "-"
        out.append(
            f"  {e.commit[:12]}  {where:<16} {now:<16} without {result.signer}: {after}  "
            f"({', '.join(e.artifacts[:3])}{' …' if len(e.artifacts) > 3 else ''})"
        )
    at_risk = sum(1 for e in result.entries if e.verified and not e.verified_without)
    out.append(f"{at_risk} release(s) depend on {result.signer}")
    return "\n".join(out)


def to_json(result: Audit) -> str:
    import json

    return json.dumps(
        {
            "signer": result.signer,
            "fingerprints": list(result.fingerprints),
            "noted_commits": result.noted,
            "checked_commits": result.checked,
            "releases": [
                {
                    "commit": e.commit,
                    "tag": e.tag,
                    "verified": e.verified,
                    "verified_without": e.verified_without,
                    "artifacts": list(e.artifacts),
                }
                for e in result.entries
            ],
        },
        indent=2,
    )
