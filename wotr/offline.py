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

import json
import os
import re
from collections.abc import Callable, Sequence
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


# Bundles read by one verify (every candidate for every artifact), in bytes: four at the size
# limit of one bundle. Past it the remaining candidates are reported, not read (rule 8).
MAX_BUNDLE_BYTES_PER_RUN = 4 * bundle_mod.MAX_BUNDLE_BYTES


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


def _wanted(rev: str | None) -> tuple[str | None, str | None]:
    """(commit, tag) the caller insists on; offline a revision is a full id or a tag name."""
    if rev is None:
        return None, None
    if _FULL_OID.fullmatch(rev):
        return rev, None
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
) -> Outcome:
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
    loaded: dict[str, bundle_mod.Bundle] = {}
    wanted = [p for c in candidates for p in c] if targets else [str(p) for p in sources.bundles]
    read_bytes = 0
    for name in dict.fromkeys(wanted):
        try:
            size = os.stat(name).st_size
        except OSError:
            size = 0  # read() says what is wrong with it
        if read_bytes + size > MAX_BUNDLE_BYTES_PER_RUN:
            # Rule 8, memory: every bundle read is kept until the end (claims of one commit
            # may be spread over several). A flooded directory fails closed, not out of memory.
            broken.append((name, f"not read: {read_bytes} bytes of bundles read already"))
            continue
        read_bytes += size
        try:
            loaded[name] = bundle_mod.read(Path(name))
        except bundle_mod.BundleError as exc:
            broken.append((name, str(exc)))
    keyed: dict[tuple[str, str | None], list[str]] = {}
    for name, b in loaded.items():
        if want_commit is not None and b.commit != want_commit:
            continue
        key = (b.commit, want_tag if want_tag is not None else b.tag)
        keyed.setdefault(key, []).append(name)
    order = sorted(keyed, key=lambda k: (k[0], k[1] or ""))
    checked: dict[tuple[str, str | None], verify_mod.CheckedNote] = {}
    budget = verify_mod.Budget()  # shared by every commit: many bundles cost bounded gpg work

    def check(key: tuple[str, str | None]) -> verify_mod.CheckedNote:
        if key not in checked:
            parts = [loaded[p] for p in keyed[key]]
            note = notes.union_bytes(*(b.note() for b in parts))
            ctx = verify_mod.Context(key[0], parts[0].tree, key[1])
            try:
                checked[key] = verify_mod.check(policy, note, ctx, budget)
            except bundle_mod.HOSTILE as exc:
                # Defence in depth: checking lines must reject bad ones one by one; should odd
                # data still get through, these bundles count for nothing rather than crash.
                why = f"claims could not be checked ({type(exc).__name__})"
                broken.extend((p, why) for p in keyed[key])
                checked[key] = verify_mod.check(policy, b"", ctx)
        return checked[key]

    groups: list[Group] = []
    unmatched: list[Target] = []
    if not targets:
        for key in order:
            report = verify_mod.decide(policy, check(key), None, strict=strict)
            groups.append(Group(key[0], key[1], tuple(keyed[key]), report))
    else:
        assigned: dict[tuple[str, str | None], list[Target]] = {}
        for i, target in enumerate(targets):
            mine = [k for k in order if set(keyed[k]) & set(candidates[i])]
            if not mine:
                unmatched.append(target)
                continue
            best, best_n = mine[0], -1
            for key in mine:
                result = verify_mod.decide(policy, check(key), [target], strict=strict).result
                assert result is not None
                if result.verified:
                    best = key
                    break
                if len(result.artifacts[0].signers) > best_n:
                    best, best_n = key, len(result.artifacts[0].signers)
            assigned.setdefault(best, []).append(target)
        for key in order:
            if key in assigned:
                report = verify_mod.decide(policy, check(key), assigned[key], strict=strict)
                groups.append(Group(key[0], key[1], tuple(keyed[key]), report))

    reason = ""
    if unmatched:
        reason = f"no bundle names {len(unmatched)} of the artifacts"
    elif not groups:
        reason = "no bundle for the requested revision"
    verified = (
        not reason
        and bool(groups)
        and all(g.report.result is not None and g.report.result.verified for g in groups)
    )
    if not verified and not reason and budget.left == 0:
        reason = (
            f"gpg checked the limit of {verify_mod.MAX_CHECKED_SIGNATURES_PER_RUN} signatures "
            f"over {len(checked)} commits, and the rest were not checked (flooded bundles?)"
        )
    return Outcome(
        verified, policy, tuple(groups), tuple(unmatched), tuple(broken), reason, tuple(looked)
    )


# --- output: the in-repository renderings, one per commit ----------------------------------


def _short(hexdigest: str) -> str:
    return f"sha256:{hexdigest[:16]}…"


def text(outcome: Outcome) -> str:
    out: list[str] = []
    for g in outcome.groups:
        body = render.verify_text(g.report)
        lines = body.split("\n")
        out.extend(lines[:-1])
        out.append(f"  from {', '.join(map(shown, g.paths))}")
        if len(outcome.groups) == 1 and not outcome.unmatched:
            out.append(lines[-1])  # the verdict, exactly as in a repository
    for t in outcome.unmatched:
        out.append(f"  FAIL  {shown(t.label)}  {_short(t.sha256)}  no bundle names this digest")
    if outcome.unmatched:
        out.append(f"  looked in: {', '.join(map(shown, outcome.looked)) or 'nothing'}")
        if not outcome.groups and not any(s.endswith("bundles)") for s in outcome.looked):
            out.append(
                "  hint: outside a git repository claims come from bundles: put ARTIFACT.wotr "
                "next to the file, pass --bundle FILE or --bundles DIR, or verify in a clone"
            )
    for path, why in outcome.broken:
        out.append(f"  skipped {shown(path)}: {shown(why)}")
    if len(outcome.groups) != 1 or outcome.unmatched:
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
    for g, doc in docs:
        extra = {"commit": g.commit, "bundles": [shown(p) for p in g.paths]}
        artifacts += [{**a, **extra} for a in doc["artifacts"]]
        rejected += [{**r, **extra} for r in doc["rejected"]]
        dissent += [{**d, "commit": g.commit} for d in doc["dissent"]]
        conflicts += [{**c, "commit": g.commit} for c in doc["conflicts"]]
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
    return json.dumps(result, indent=2, ensure_ascii=False)
