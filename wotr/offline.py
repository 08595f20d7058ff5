"""``verify`` outside a repository: artifacts against bundles, one commit at a time.

Where the claims come from (docs/bundles.md):

- ``--bundle FILE`` (repeatable): candidates for every artifact;
- ``ARTIFACT.wotr`` next to an artifact file: a candidate for that artifact;
- ``--bundles DIR`` (default ``/var/lib/wotr/bundles`` outside a repository): the bundles that
  name the artifact's sha256, found through :func:`wotr.bundle.scan`, so a renamed or mirrored
  file still verifies.

Bundles are grouped by commit (and by tag, unless the caller asks for one with ``--rev``); the
lines of one group are merged, since several bundles of one commit are just parts of its note.
An artifact verifies when **one** group reaches the quorum for its digest: signers are never
added up across commits. Each group goes through the same pipeline as a note in a repository
(:func:`wotr.verify.check` then :func:`wotr.verify.decide`), so counting rules, text and JSON are
those of the in-repository ``verify``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from . import bundle as bundle_mod
from . import claim as claim_mod
from . import notes, render
from . import verify as verify_mod
from ._record import field, record
from .bundle import shown
from .consensus import Target
from .errors import BadInput
from .policy import Policy

_FULL_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_HEXISH = re.compile(r"[0-9a-fA-F]{4,64}")  # what git could take for an object id


# Bundles read by one verify (every candidate for every artifact), in bytes: four at the size
# limit of one bundle. Past it the remaining candidates are reported, not read (rule 8).
MAX_BUNDLE_BYTES_PER_RUN = 4 * bundle_mod.MAX_BUNDLE_BYTES

# Signatures by policy keys one verify may send to gpg, on top of
# verify.MAX_CHECKED_SIGNATURES_PER_RUN: this many per signer of the policy for each artifact
# asked about. Honest bundles hold a few claims per signer and commit; past the budget the
# rest count at their worst (rule 8), so honest work asked for is never refused.
PER_TARGET_SIGNATURES = 8


@record
class Sources:
    bundles: tuple[Path, ...] = ()
    directory: Path | None = None
    directory_required: bool = True  # False for the default directory: absent means none
    sidecars: bool = True


@record
class Group:
    commit: str
    tag: str | None
    paths: tuple[str, ...]
    report: verify_mod.Report


@record
class Outcome:
    verified: bool
    policy: Policy
    groups: tuple[Group, ...]
    unmatched: tuple[Target, ...] = ()  # artifacts that no bundle names
    broken: tuple[tuple[str, str], ...] = ()  # bundles skipped: unreadable or malformed
    reason: str = ""
    looked: tuple[str, ...] = field(default=())
    capped: tuple[tuple[Target, str], ...] = ()  # artifacts with a bundle not read (the cap)
    chain_notes: tuple[str, ...] = ()  # what following the policy chain found (DESIGN §7)


def _wanted(rev: str | None) -> tuple[str | None, str | None]:
    """(commit, tag) the caller insists on; offline a revision is a full id or a tag name."""
    if rev is None:
        return None, None
    if _FULL_OID.fullmatch(rev):
        return rev, None
    if _HEXISH.fullmatch(rev):  # 02fed46 is not read as a tag: refs/tags/02fed46 names one
        raise BadInput(
            f"--rev {rev!r} looks like an abbreviated commit id, which cannot be resolved "
            "without a repository",
            f"offline, give the full commit id ('git rev-parse {rev}' in a clone) or a tag "
            f"(a tag with this name: --rev refs/tags/{rev})",
        )
    tag = rev if rev.startswith("refs/tags/") else f"refs/tags/{rev}"
    if rev in ("HEAD", "@") or not claim_mod._REF.fullmatch(tag) or rev.startswith("-"):
        raise BadInput(
            f"--rev {rev!r} cannot be resolved without a repository",
            "offline, give a full commit id or a tag name (e.g. --rev v1.0)",
        )
    return None, tag


def _present(path: Path) -> bool:
    """Whether something lies at ``path`` (a sidecar to try); a stat that fails for another
    reason than absence says yes, so that reading it reports why."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except (OSError, ValueError):
        return True
    return True


def verify(
    policy: Policy,
    *,
    artifacts: Sequence[Path] = (),
    digests: Sequence[str] = (),
    sources: Sources,
    rev: str | None = None,
    strict: bool = False,
    hashed: Callable[[], list[str]] | None = None,
    chain: Callable[[Sequence[tuple[str, bytes]]], tuple[Policy, tuple[str, ...]]] | None = None,
) -> Outcome:
    """Verify against bundles. ``chain`` (an installer that pinned its policy, see
    :func:`wotr.commands.common.installer_chain`) is called once the bundles are read, with the
    policy chains they carry, and gives the policy to count with (and notes to report)."""
    want_commit, want_tag = _wanted(rev)
    targets = verify_mod.targets_for(artifacts, digests, hashed) or []
    if not targets and not sources.bundles:
        raise BadInput(
            "nothing to verify",
            "name ARTIFACT files or --digest values (or pass --bundle FILE to check all it claims)",
        )

    # which bundle files are candidates for which target
    candidates: list[list[str]] = [[str(p) for p in sources.bundles] for _ in targets]
    looked = [str(p) for p in sources.bundles]
    if sources.sidecars:
        for i, path in enumerate(artifacts):
            car = bundle_mod.sidecar(path)
            if _present(car):
                candidates[len(digests) + i].append(str(car))
    directory = None
    dir_path = sources.directory
    if dir_path is not None and (sources.directory_required or dir_path.is_dir()):
        directory = bundle_mod.scan(dir_path)
        looked.append(f"{dir_path}/ ({directory.count} bundles)")
        for i, target in enumerate(targets):
            candidates[i].extend(str(p) for p in directory.by_digest.get(target.sha256, ()))
    if sources.sidecars and artifacts:
        looked.append("ARTIFACT.wotr")

    # read each candidate once; group by commit (and tag). Bundles are attacker data, wherever
    # they come from (--bundle, a sidecar, the directory): one that cannot be read or parsed is
    # skipped and reported, and only hides its own claims. It is never bad input (exit 2).
    broken: list[tuple[str, str]] = (
        [(str(p), why) for p, why in directory.broken] if directory else []
    )
    wanted = [p for c in candidates for p in c] if targets else [str(p) for p in sources.bundles]
    loaded, unread = _load(dict.fromkeys(wanted), broken)
    chain_notes: tuple[str, ...] = ()
    if chain is not None:
        # Every chain carried by a bundle read (attacker data, like a chain file), each distinct
        # one once; followed from the pin only (wotr.policycmd.installer_follow).
        carried = {id(b): (name, b.chain) for name, b in loaded.items() if b.chain is not None}
        policy, chain_notes = chain(list(carried.values()))
    # One note per commit: the lines of every bundle of that commit, whatever tag a bundle
    # names (its tag is unsigned: a bundle re-labelled with another tag must not form a group
    # that lacks the lines of the others, rule 7).
    of_commit: dict[str, dict[int, bundle_mod.Bundle]] = {}
    keyed: dict[tuple[str, str | None], list[str]] = {}
    key_of: dict[str, tuple[str, str | None]] = {}
    for name, b in loaded.items():
        if want_commit is not None and b.commit != want_commit:
            continue
        of_commit.setdefault(b.commit, {})[id(b)] = b
        key = (b.commit, want_tag if want_tag is not None else b.tag)
        keyed.setdefault(key, []).append(name)
        key_of[name] = key
    order = sorted(keyed, key=lambda k: (k[0], k[1] or ""))
    rank = {k: i for i, k in enumerate(order)}
    checked: dict[tuple[str, str | None], verify_mod.CheckedNote] = {}
    # Shared by every commit: many bundles cost bounded gpg work, in proportion to what was
    # asked (an honest bundle holds a few claims per signer for each artifact asked about).
    allowed = verify_mod.MAX_CHECKED_SIGNATURES_PER_RUN + PER_TARGET_SIGNATURES * len(
        policy.signers
    ) * len(targets)
    budget = verify_mod.Budget(allowed)

    def check_all(keys: Sequence[tuple[str, str | None]]) -> None:
        todo = [k for k in dict.fromkeys(keys) if k not in checked]
        items = []
        for key in todo:
            parts = list(of_commit[key[0]].values())
            note = notes.union_bytes(*(b.note() for b in parts))
            items.append((note, verify_mod.Context(key[0], parts[0].tree, key[1])))
        try:
            done = verify_mod.check_many(policy, items, budget)
        except bundle_mod.HOSTILE as exc:
            # Defence in depth: checking lines must reject bad ones one by one; should odd
            # data still get through, these bundles count for nothing rather than crash.
            why = f"claims could not be checked ({type(exc).__name__})"
            for key in todo:
                broken.extend((p, why) for p in keyed[key])
            done = [verify_mod.check(policy, b"", ctx) for _, ctx in items]
        checked.update(zip(todo, done, strict=True))

    groups: list[Group] = []
    unmatched: list[Target] = []
    capped: list[tuple[Target, str]] = []
    if not targets:
        check_all(order)
        for key in order:
            report = verify_mod.decide(policy, checked[key], None, strict=strict)
            groups.append(Group(key[0], key[1], tuple(keyed[key]), report))
    else:
        # The groups each target may come from, best first; then rounds: every target still
        # open tries its next group, and the groups of one round are checked together (one
        # gpg home, few gpg processes) and decided once each, for all their targets.
        mine: list[list[tuple[str, str | None]]] = []
        for i, target in enumerate(targets):
            found = {key_of[p] for p in candidates[i] if p in key_of}
            mine.append(sorted(found, key=rank.__getitem__))
            if not found:
                unmatched.append(target)
            missed = [p for p in candidates[i] if p in unread]
            if missed:
                # Rule 8: what a bundle that was not read holds (a second claim of a signer,
                # a dissent) could change this answer: at its worst, it does.
                capped.append((target, missed[0]))
        best: list[tuple[tuple[str, str | None], int] | None] = [None] * len(targets)
        done_with = [not m for m in mine]
        step = 0
        while not all(done_with):
            asked: dict[tuple[str, str | None], list[int]] = {}
            for i, keys in enumerate(mine):
                if not done_with[i]:
                    if step < len(keys):
                        asked.setdefault(keys[step], []).append(i)
                    else:
                        done_with[i] = True
            if not asked:
                break
            check_all(list(asked))
            for key, which in asked.items():
                report = verify_mod.decide(
                    policy, checked[key], [targets[i] for i in which], strict=strict
                )
                assert report.result is not None
                for i, art_result in zip(which, report.result.artifacts, strict=True):
                    n = len(art_result.signers)
                    so_far = best[i]
                    if art_result.verified and not report.result.reason:
                        best[i] = (key, 1 << 30)
                        done_with[i] = True
                    elif so_far is None or n > so_far[1]:
                        best[i] = (key, n)
            step += 1
        assigned: dict[tuple[str, str | None], list[Target]] = {}
        for i, target in enumerate(targets):
            chosen = best[i]
            if chosen is not None:
                assigned.setdefault(chosen[0], []).append(target)
        for key in order:
            if key in assigned:
                report = verify_mod.decide(policy, checked[key], assigned[key], strict=strict)
                groups.append(Group(key[0], key[1], tuple(keyed[key]), report))

    reason = ""
    if unmatched:
        reason = f"no bundle names {len(unmatched)} of the artifacts"
    elif capped:
        reason = (
            f"{len(capped)} artifact(s) have bundles that were not read (the limit of "
            f"{MAX_BUNDLE_BYTES_PER_RUN} bytes per verify; flooded bundles?)"
        )
    elif not groups:
        reason = "no bundle for the requested revision"
    verified = (
        not reason
        and bool(groups)
        and all(g.report.result is not None and g.report.result.verified for g in groups)
    )
    if not verified and not reason and budget.left == 0:
        reason = (
            f"gpg checked the limit of {allowed} signatures "
            f"over {len(checked)} commits, and the rest were not checked (flooded bundles?)"
        )
    return Outcome(
        verified,
        policy,
        tuple(groups),
        tuple(unmatched),
        tuple(broken),
        reason,
        tuple(looked),
        tuple(capped),
        chain_notes,
    )


def _load(
    names: Iterable[str], broken: list[tuple[str, str]]
) -> tuple[dict[str, bundle_mod.Bundle], set[str]]:
    """Read each bundle once: copies (the same file under several names, or the same bytes
    in several files: sidecars, mirrors) are read and counted once against the byte cap.
    Returns the bundles by name and the names not read because of the cap."""
    loaded: dict[str, bundle_mod.Bundle] = {}
    unread: set[str] = set()
    by_inode: dict[tuple[int, int], str] = {}
    by_digest: dict[bytes, bundle_mod.Bundle] = {}
    kept_sizes: set[int] = set()
    read_bytes = 0
    for name in names:
        try:
            st = os.stat(name)
        except (OSError, ValueError):
            st = None  # read_data says what is wrong with it
        inode = (st.st_dev, st.st_ino) if st is not None else None
        if inode is not None and inode in by_inode:
            first = by_inode[inode]
            if first in loaded:
                loaded[name] = loaded[first]
            elif first in unread:
                unread.add(name)
            continue
        if inode is not None:
            by_inode[inode] = name
        size = st.st_size if st is not None else 0
        fits = read_bytes + size <= MAX_BUNDLE_BYTES_PER_RUN
        if not fits and size not in kept_sizes:
            # Rule 8, memory: every bundle read is kept until the end (claims of one commit
            # may be spread over several). A flooded directory fails closed, not out of memory.
            broken.append((name, f"not read: {read_bytes} bytes of bundles read already"))
            unread.add(name)
            continue
        try:
            data = bundle_mod.read_data(Path(name))
        except bundle_mod.BundleError as exc:
            broken.append((name, str(exc)))
            continue
        digest = hashlib.sha256(data).digest()
        if digest in by_digest:
            loaded[name] = by_digest[digest]
            continue
        if read_bytes + len(data) > MAX_BUNDLE_BYTES_PER_RUN:
            broken.append((name, f"not read: {read_bytes} bytes of bundles read already"))
            unread.add(name)
            continue
        try:
            parsed = bundle_mod.parse(data, name)
        except bundle_mod.BundleError as exc:
            broken.append((name, str(exc)))
            continue
        read_bytes += len(data)
        kept_sizes.add(len(data))
        by_digest[digest] = parsed
        loaded[name] = parsed
    return loaded, unread


# --- output: the in-repository renderings, one per commit ----------------------------------


_CAPPED = "a bundle naming this digest was not read (size limit), and could change the answer"


def _short(hexdigest: str) -> str:
    return f"sha256:{hexdigest[:16]}…"


def text(outcome: Outcome) -> str:
    out: list[str] = []
    for g in outcome.groups:
        body = render.verify_text(g.report)
        lines = body.split("\n")
        out.extend(lines[:-1])
        out.append(f"  from {', '.join(map(shown, g.paths))}")
        if len(outcome.groups) == 1 and not outcome.unmatched and not outcome.capped:
            out.append(lines[-1])  # the verdict, exactly as in a repository
    for t in outcome.unmatched:
        out.append(f"  FAIL  {shown(t.label)}  {_short(t.sha256)}  no bundle names this digest")
    for t, path in outcome.capped:
        out.append(f"  FAIL  {shown(t.label)}  {_short(t.sha256)}  {_CAPPED} (e.g. {shown(path)})")
    if outcome.unmatched:
        out.append(f"  looked in: {', '.join(map(shown, outcome.looked)) or 'nothing'}")
        if not outcome.groups and not any(s.endswith("bundles)") for s in outcome.looked):
            out.append(
                "  hint: outside a git repository claims come from bundles: put ARTIFACT.wotr "
                "next to the file, pass --bundle FILE or --bundles DIR, or verify in a clone"
            )
    for path, why in outcome.broken:
        out.append(f"  skipped {shown(path)}: {shown(why)}")
    for note in outcome.chain_notes:
        out.append(f"  policy chain: {shown(note)}")
    if len(outcome.groups) != 1 or outcome.unmatched or outcome.capped:
        if outcome.verified:
            out.append(f"VERIFIED ({len(outcome.groups)} commits)")
        else:
            why = outcome.reason or "not every artifact reached a quorum"
            out.append(f"NOT VERIFIED: {why}")
    return "\n".join(out)


def to_json(outcome: Outcome) -> str:
    """One object: the fields of the in-repository ``verify --json``, merged over commits."""
    docs = [(g, json.loads(render.verify_json(g.report))) for g in outcome.groups]
    only = docs[0][1] if len(docs) == 1 else None
    artifacts: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    dissent: list[dict[str, Any]] = []
    conflicts: list[dict[str, Any]] = []
    unchecked: list[dict[str, Any]] = []
    for g, doc in docs:
        extra = {"commit": g.commit, "bundles": [shown(p) for p in g.paths]}
        artifacts += [{**a, **extra} for a in doc["artifacts"]]
        rejected += [{**r, **extra} for r in doc["rejected"]]
        dissent += [{**d, "commit": g.commit} for d in doc["dissent"]]
        conflicts += [{**c, "commit": g.commit} for c in doc["conflicts"]]
        unchecked += [{**u, "commit": g.commit} for u in doc["unchecked"]]
    for t in outcome.unmatched:
        artifacts.append(
            {
                "name": t.label,
                "sha256": t.sha256,
                "signers": [],
                "verified": False,
                "reason": "no bundle names this digest",
                "others": [],
                "commit": None,
                "bundles": [],
            }
        )
    for t, path in outcome.capped:
        artifacts.append(
            {
                "name": t.label,
                "sha256": t.sha256,
                "signers": [],
                "verified": False,
                "reason": _CAPPED,
                "others": [],
                "commit": None,
                "bundles": [shown(path)],
            }
        )
    result = {
        "verified": outcome.verified,
        "commit": only["commit"] if only else None,
        "tag": only["tag"] if only else None,
        "threshold": outcome.policy.threshold,
        "policy": str(outcome.policy.path),
        "policy_serial": render.policy_id(outcome.policy)[0],
        "policy_digest": render.policy_id(outcome.policy)[1],
        "reason": outcome.reason or (only["reason"] if only else ""),
        "artifacts": artifacts,
        "dissent": dissent,
        "conflicts": conflicts,
        "unchecked": unchecked,
        "rejected": rejected,
        "commits": [
            {
                "commit": g.commit,
                "tag": g.tag,
                "bundles": [shown(p) for p in g.paths],
                "verified": d["verified"],
            }
            for g, d in docs
        ],
        "skipped_bundles": [{"path": shown(p), "reason": shown(why)} for p, why in outcome.broken],
    }
    if outcome.chain_notes:
        result["policy_chain_notes"] = [shown(n) for n in outcome.chain_notes]
    return json.dumps(result, indent=2, ensure_ascii=False)
