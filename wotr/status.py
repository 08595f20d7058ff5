"""The state of a project's releases: which signer agrees, dissents or is missing on each tag.

This is what the status page (:mod:`wotr.site`) draws and what a rebuilder service watches. It
reads tags and notes through :mod:`wotr.git` and :mod:`wotr.verify`, so every rule of DESIGN §6
applies to each release exactly as ``git wotr verify --rev TAG`` would apply it; nothing here
trusts a note line that verify would not count.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from . import git, verify
from ._record import field, record
from .errors import BadInput
from .policy import Policy

# Cell states, in the order a reader meets them. Every state has a word and a symbol, so the
# page never relies on colour alone.
AGREE = "agree"
DISSENT = "dissent"
WITHDRAWN = "withdrawn"
REJECTED = "rejected"
MISSING = "missing"

# The newest releases that get a full check (a gpg pass each) unless the caller asks for more;
# older ones are counted, not checked. Bounds a status page of a project with 30,000 tags.
DEFAULT_LIMIT = 200


@record
class Cell:
    signer: str
    state: str
    detail: str = ""


@record
class Artifact:
    name: str
    sha256: str
    signers: tuple[str, ...]
    verified: bool
    reason: str
    others: tuple[tuple[str, tuple[str, ...]], ...]  # (digest, signers) that differ


@record
class Claim:
    """One note line as the page shows it: who (or which key), whether it counts, why not."""

    line: int
    signer: str
    role: str
    counts: bool
    reason: str
    artifacts: tuple[tuple[str, str], ...]  # (name, sha256)


@record
class Release:
    tag: str  # short tag name, as the project spelled it (attacker-controlled text)
    commit: str
    date: int  # commit time, seconds since the epoch
    verified: bool
    reason: str
    cells: tuple[Cell, ...]
    artifacts: tuple[Artifact, ...]
    claims: tuple[Claim, ...]
    note_lines: int = 0


@record
class Status:
    policy: str
    threshold: int
    signers: tuple[str, ...]
    releases: tuple[Release, ...]
    not_checked: int = 0  # older releases beyond the limit
    pattern: str = "*"
    notes: tuple[str, ...] = field(default=())


def _tags(repo: git.Repo, pattern: str) -> list[tuple[str, str, int]]:
    """(tag name, commit, commit time) of every tag pointing at a commit, newest first."""
    out = git.check(
        repo,
        "for-each-ref",
        "--sort=-committerdate",
        "--sort=-*committerdate",
        "--format=%(refname)%00%(objecttype)%00%(objectname)%00%(*objectname)%00"
        "%(committerdate:unix)%00%(*committerdate:unix)%00%(*objecttype)",
        "refs/tags/",
    )
    found: list[tuple[str, str, int]] = []
    for row in out.splitlines():
        parts = row.split("\0")
        if len(parts) != 7:
            continue
        ref, kind, obj, peeled, date, peeled_date, peeled_kind = parts
        name = ref.removeprefix("refs/tags/")
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        if kind == "commit":
            found.append((name, obj, int(date or 0)))
        elif kind == "tag" and peeled and peeled_kind == "commit":
            found.append((name, peeled, int(peeled_date or 0)))
    # Annotated tags of tags (or of trees) peel to something else: verify refuses them, so do we.
    found.sort(key=lambda t: (-t[2], t[0]))
    return found


def _cells(policy: Policy, report: verify.Report) -> tuple[Cell, ...]:
    result = report.result
    agree: dict[str, list[str]] = {}
    dissent: dict[str, list[str]] = {}
    if result is not None:
        # Agreeing is being in the group of the verified digest (or, where no digest reached
        # the quorum, of the digest most signers claimed); dissent is claiming another one.
        for art in result.artifacts:
            for s in art.signers:
                agree.setdefault(s, []).append(art.name)
            for g in art.others:
                for s in g.signers:
                    dissent.setdefault(s, []).append(art.name)
        for conflict in result.conflicts:
            dissent.setdefault(conflict.signer, []).append(f"{conflict.name} (two digests)")
    withdrawn: dict[str, str] = {}
    rejected: dict[str, str] = {}
    for line in report.lines:
        if line.counts or not line.signer:
            continue
        if line.reason.startswith("withdrawn"):
            withdrawn.setdefault(line.signer, line.reason)
        else:
            rejected.setdefault(line.signer, line.reason)
    cells: list[Cell] = []
    for signer in policy.signers:
        name = signer.name
        if name in dissent:
            cells.append(Cell(name, DISSENT, "differs on " + ", ".join(sorted(dissent[name]))))
        elif name in agree:
            cells.append(Cell(name, AGREE, ", ".join(sorted(agree[name]))))
        elif name in withdrawn:
            cells.append(Cell(name, WITHDRAWN, withdrawn[name]))
        elif name in rejected:
            cells.append(Cell(name, REJECTED, rejected[name]))
        else:
            cells.append(Cell(name, MISSING))
    return tuple(cells)


def _release(repo: git.Repo, policy: Policy, tag: str, commit: str, date: int) -> Release:
    try:
        report = verify.show_repo(repo, f"refs/tags/{tag}", policy)
    except BadInput as exc:
        return Release(tag, commit, date, False, exc.message, (), (), ())
    result = report.result
    artifacts: list[Artifact] = []
    if result is not None:
        for a in result.artifacts:
            artifacts.append(
                Artifact(
                    a.name,
                    a.sha256,
                    a.signers,
                    a.verified,
                    a.reason,
                    tuple((g.sha256, g.signers) for g in a.others),
                )
            )
    claims = tuple(
        Claim(
            line.line,
            line.signer or (f"key {line.fingerprint or line.keyid}" if line.keyid else "unknown"),
            line.claim.role if line.claim else "",
            line.counts,
            line.reason,
            tuple((s.name, s.sha256) for s in line.claim.subjects) if line.claim else (),
        )
        for line in report.lines
    )
    verified = bool(result and result.verified)
    reason = "" if verified else (result.reason if result else "") or _why_not(artifacts)
    return Release(
        tag,
        report.commit,
        date,
        verified,
        reason,
        _cells(policy, report),
        tuple(artifacts),
        claims,
        report.note_lines,
    )


def _why_not(artifacts: Sequence[Artifact]) -> str:
    for a in artifacts:
        if not a.verified:
            return f"{a.name}: {a.reason}"
    return "no trusted signer made a claim that counts"


def collect(
    repo: git.Repo, policy: Policy, *, pattern: str = "*", limit: int = DEFAULT_LIMIT
) -> Status:
    """Every tag matching ``pattern``, newest first; the newest ``limit`` checked in full."""
    if limit < 1:
        raise BadInput(f"--limit {limit} must be at least 1")
    tags = _tags(repo, pattern)
    releases = tuple(_release(repo, policy, tag, c, d) for tag, c, d in tags[:limit])
    return Status(
        policy=str(policy.path),
        threshold=policy.threshold,
        signers=tuple(s.name for s in policy.signers),
        releases=releases,
        not_checked=max(0, len(tags) - limit),
        pattern=pattern,
    )
