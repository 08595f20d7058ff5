"""Pure counting: policy + claims whose signatures gpg already checked -> a :class:`Result`.

No git, no gpg, no clock. The rules of DESIGN §6 that concern *what a good signature
may count for* live here:

- rule 2: the signer is the policy entry owning the primary fingerprint; people are counted,
  not signatures or keys;
- rule 4: the claim's commit and tree must be the commit whose note holds it, and its tree;
- rule 5: the claimed role must be one the policy grants the signer;
- rule 6: when verifying a tag, only claims naming that tag count;
- rule 7: a signer claiming two digests for one artifact name counts for neither;
- rule 8, worst case: a line by a policy key that a limit kept from gpg (:class:`Unchecked`)
  is taken as the worst it could be: where it may give its signer a second digest for a
  name, that signer counts for neither; under ``--strict`` and for ``verify`` with no
  artifacts, a name it may add a digest to fails. A limit can turn a yes into a no, never
  a no into a yes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from ._record import record
from .claim import Claim
from .policy import Policy


@record
class Rejection:
    """A note line that counts for nothing, and why."""

    line: int
    reason: str
    signer: str | None = None
    fingerprint: str | None = None


@record
class Checked:
    """A claim carrying a clean good signature by the primary key ``fingerprint``."""

    line: int
    fingerprint: str
    claim: Claim


@record
class Unchecked:
    """A claim whose signature a limit (a budget of gpg work) kept from being checked.

    ``signers``: the policy signers whose keys its issuer hint names (it may be theirs)."""

    line: int
    signers: tuple[str, ...]
    claim: Claim
    reason: str


@record
class Doubt:
    """Rule 8, worst case: claims by ``signer`` on ``name`` that were not checked and may
    name other digests than the signer's checked claims (``lines`` of them)."""

    signer: str
    name: str
    digests: tuple[str, ...]
    lines: int
    reason: str


@record
class Counted:
    """A claim that counts: good signature, trusted signer, right commit, role and ref."""

    line: int
    signer: str
    fingerprint: str
    claim: Claim


@record
class Target:
    """An artifact the caller asks about: a file (label = its path) or ``sha256:HEX``."""

    label: str
    sha256: str


@record
class Group:
    sha256: str
    signers: tuple[str, ...]


@record
class ArtifactResult:
    name: str
    sha256: str
    signers: tuple[str, ...]
    verified: bool
    reason: str = ""
    others: tuple[Group, ...] = ()  # other digests trusted signers claimed under this name


@record
class Dissent:
    name: str
    groups: tuple[Group, ...]


@record
class Conflict:
    """Rule 7: one signer claimed several digests for one name at this commit."""

    signer: str
    name: str
    digests: tuple[str, ...]


@record
class Result:
    verified: bool
    threshold: int
    artifacts: tuple[ArtifactResult, ...]
    dissent: tuple[Dissent, ...]
    conflicts: tuple[Conflict, ...]
    rejected: tuple[Rejection, ...]
    counted: tuple[Counted, ...]
    reason: str = ""
    doubts: tuple[Doubt, ...] = ()  # unchecked claims taken at their worst (rule 8)
    # (signer, name) pairs that count for nothing: rule 7, or rule 8 at its worst -> why
    excluded: tuple[tuple[str, str, str], ...] = ()


def built_for_tag(claim: Claim, tag: str | None) -> bool:
    """Rule 6: verifying a tag, only claims naming that tag count."""
    return tag is None or claim.ref == tag


def admit(
    policy: Policy,
    checked: Iterable[Checked],
    *,
    commit: str,
    tree: str,
    tag: str | None,
) -> tuple[list[Counted], list[Rejection]]:
    """Split signature-checked claims into those that count and those that do not (rules 2-6)."""
    counted: list[Counted] = []
    rejected: list[Rejection] = []
    for item in checked:
        claim = item.claim
        signer = policy.signer_for(item.fingerprint)
        if signer is None:
            rejected.append(
                Rejection(
                    item.line,
                    f"key {item.fingerprint} is not in the policy",
                    fingerprint=item.fingerprint,
                )
            )
            continue

        def reject(reason: str, item: Checked = item, name: str = signer.name) -> None:
            rejected.append(Rejection(item.line, reason, name, item.fingerprint))

        if claim.commit != commit:
            reject(f"claim is for commit {claim.commit[:12]}, not this commit (copied?)")
        elif claim.tree != tree:
            reject(f"claim names tree {claim.tree[:12]}, not this commit's tree {tree[:12]}")
        elif not signer.may_claim(claim.role):
            reject(f"{signer.name} may not claim role {claim.role!r} under the policy")
        elif not built_for_tag(claim, tag):
            built_for = claim.ref or "no tag"
            reject(f"claim was made for {built_for}, not {tag}")
        else:
            counted.append(Counted(item.line, signer.name, item.fingerprint, claim))
    return counted, rejected


def admit_unchecked(
    policy: Policy, unchecked: Iterable[Unchecked], *, commit: str, tree: str, tag: str | None
) -> list[Unchecked]:
    """The unchecked claims that would count for one of their possible signers if their
    signature were good (rules 4-6); the others cannot change any answer."""
    out: list[Unchecked] = []
    by_name = {s.name: s for s in policy.signers}
    for item in unchecked:
        claim = item.claim
        if claim.commit != commit or claim.tree != tree or not built_for_tag(claim, tag):
            continue
        who = tuple(
            name for name in item.signers if name in by_name and by_name[name].may_claim(claim.role)
        )
        if who:
            out.append(Unchecked(item.line, who, claim, item.reason))
    return out


def _doubts(counted: Sequence[Counted], unchecked: Sequence[Unchecked]) -> list[Doubt]:
    """Per (signer, name): the digests unchecked claims may add to what the signer's checked
    claims say. Unchecked claims that repeat checked ones (forged copies) add nothing."""
    if not unchecked:
        return []
    have: dict[tuple[str, str], set[str]] = defaultdict(set)
    for c in counted:
        for s in c.claim.subjects:
            have[(c.signer, s.name)].add(s.sha256)
    extra: dict[tuple[str, str], set[str]] = defaultdict(set)
    lines: dict[tuple[str, str], set[int]] = defaultdict(set)
    why: dict[tuple[str, str], str] = {}
    for u in unchecked:
        for signer in u.signers:
            for s in u.claim.subjects:
                key = (signer, s.name)
                if s.sha256 not in have.get(key, ()):
                    extra[key].add(s.sha256)
                    lines[key].add(u.line)
                    why.setdefault(key, u.reason)
    return [
        Doubt(signer, name, tuple(sorted(extra[(signer, name)])), len(lines[(signer, name)]),
              why[(signer, name)])
        for signer, name in sorted(extra)
    ]  # fmt: skip


def _conflicts(counted: Sequence[Counted]) -> list[Conflict]:
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for c in counted:
        for s in c.claim.subjects:
            seen[(c.signer, s.name)].add(s.sha256)
    return [
        Conflict(signer, name, tuple(sorted(digests)))
        for (signer, name), digests in sorted(seen.items())
        if len(digests) > 1
    ]


def _all_groups(
    counted: Sequence[Counted], names: Sequence[str], excluded: set[tuple[str, str]]
) -> dict[str, list[Group]]:
    """For each claimed name: the digests claimed for it and who claims each (a signer that
    claims two digests for the name is left out, rule 7), most supporters first.
    One pass over every subject of every claim: a claim may name thousands of artifacts."""
    by_name: dict[str, dict[str, set[str]]] = {name: {} for name in names}
    for c in counted:
        signer = c.signer
        for s in c.claim.subjects:
            if (signer, s.name) not in excluded:
                by_name[s.name].setdefault(s.sha256, set()).add(signer)
    return {
        name: sorted(
            (Group(d, tuple(sorted(signers))) for d, signers in by_digest.items()),
            key=lambda g: (-len(g.signers), g.sha256),
        )
        for name, by_digest in by_name.items()
    }


def _quorum(
    policy: Policy,
    counted: Sequence[Counted],
    holds: Sequence[set[str]],
    supporters: set[str],
    digest: str,
) -> str:
    """Empty string when ``supporters`` meet threshold and role requirements, else why not."""
    if len(supporters) < policy.threshold:
        return f"{len(supporters)} of {policy.threshold} required signers"
    for role, need in policy.require:
        have = {
            c.signer
            for c, digests in zip(counted, holds, strict=True)
            if c.signer in supporters and c.claim.role == role and digest in digests
        }
        if len(have) < need:
            return f"role {role!r} needs {need} signer(s), has {len(have)}"
    return ""


def decide(
    policy: Policy,
    counted: Sequence[Counted],
    rejected: Sequence[Rejection],
    targets: Sequence[Target] | None,
    *,
    strict: bool = False,
    unchecked: Sequence[Unchecked] = (),
) -> Result:
    """Does each target (or, with ``targets=None``, every claimed name) reach a quorum?

    ``unchecked``: admissible claims (see :func:`admit_unchecked`) a limit kept from gpg."""
    conflicts = _conflicts(counted)
    excluded = {(c.signer, c.name) for c in conflicts}
    why_excluded = {(c.signer, c.name): "claimed two digests (rule 7)" for c in conflicts}
    doubts = _doubts(counted, unchecked)
    # Worst case of an unchecked claim: were it good, its signer would hold a second digest
    # for the name (rule 7) whenever the signer's checked claims, or the other unchecked
    # ones, name any digest for it besides the one it adds.
    have_names = {(c.signer, s.name) for c in counted for s in c.claim.subjects}
    for d in doubts:
        if len(d.digests) > 1 or (d.signer, d.name) in have_names:
            excluded.add((d.signer, d.name))
            why_excluded.setdefault(
                (d.signer, d.name), "may have claimed another digest (claims not checked)"
            )
    doubted = {d.name for d in doubts}
    # Built once: a claim may name thousands of artifacts, asked about one by one below.
    holds = [{s.sha256 for s in c.claim.subjects} for c in counted]  # digests each claim names
    claimed: dict[str, list[tuple[str, str]]] = defaultdict(list)  # digest -> (signer, name)
    for c in counted:
        for s in c.claim.subjects:
            claimed[s.sha256].append((c.signer, s.name))
    names = sorted({s.name for c in counted for s in c.claim.subjects})
    all_groups = _all_groups(counted, names, excluded)
    dissent_all = [
        Dissent(name, tuple(groups)) for name, groups in all_groups.items() if len(groups) > 1
    ]

    artifacts: list[ArtifactResult] = []
    relevant: set[str] = set()
    agreed: dict[str, set[str]] = defaultdict(set)  # name -> the digest(s) asked or met
    if targets is None:
        relevant = set(names) | doubted
        for name in sorted(relevant):
            groups = all_groups.get(name, [])
            met = [
                g for g in groups if not _quorum(policy, counted, holds, set(g.signers), g.sha256)
            ]
            best = groups[0] if groups else Group("", ())
            if len(met) == 1:
                agreed[name].add(met[0].sha256)
                artifacts.append(
                    ArtifactResult(
                        name,
                        met[0].sha256,
                        met[0].signers,
                        True,
                        others=tuple(g for g in groups if g != met[0]),
                    )
                )
            else:
                why = (
                    "several digests reach the quorum"
                    if met
                    else _quorum(policy, counted, holds, set(best.signers), best.sha256)
                    or "only conflicting claims"
                )
                artifacts.append(
                    ArtifactResult(
                        name,
                        best.sha256,
                        best.signers,
                        False,
                        why,
                        tuple(g for g in groups if g != best),
                    )
                )
    else:
        for target in targets:
            supporters: set[str] = set()
            claimed_names: set[str] = set()
            for signer, name in claimed.get(target.sha256, ()):
                claimed_names.add(name)
                if (signer, name) not in excluded:
                    supporters.add(signer)
            base = target.label.rsplit("/", 1)[-1]
            look = claimed_names | ({base} if base in all_groups else set())
            relevant |= look
            for name in look:
                agreed[name].add(target.sha256)
            others = tuple(
                g for name in sorted(look) for g in all_groups[name] if g.sha256 != target.sha256
            )
            if not supporters:
                why = "no trusted signer claimed this digest"
            else:
                why = _quorum(policy, counted, holds, supporters, target.sha256)
            artifacts.append(
                ArtifactResult(
                    target.label, target.sha256, tuple(sorted(supporters)), not why, why, others
                )
            )

    # Unchecked claims at their worst: a digest they may add under a name that is not the one
    # asked about (or met) is a possible dissent (--strict) and, with every claimed name
    # asked about, a digest that would need a quorum of its own.
    harmful = {d.name for d in doubts if d.name in relevant and set(d.digests) - agreed[d.name]}
    doubters: dict[str, set[str]] = defaultdict(set)
    for d in doubts:
        doubters[d.name].add(d.signer)
    if targets is None and harmful:
        artifacts = [
            a
            if a.name not in harmful or not a.verified
            else ArtifactResult(
                a.name,
                a.sha256,
                a.signers,
                False,
                "claims on it by "
                + ", ".join(sorted(doubters[a.name]))
                + " were not checked (a limit; flooded?) and may name another digest",
                a.others,
            )
            for a in artifacts
        ]
    dissent = tuple(d for d in dissent_all if d.name in relevant)
    conflicts_rel = tuple(c for c in conflicts if c.name in relevant)
    reason = ""
    if not artifacts:
        reason = "no trusted signer made a claim that counts at this commit"
    elif strict and (dissent or conflicts_rel):
        reason = "a trusted signer dissents (--strict)"
    elif strict and harmful:
        reason = "claims that were not checked (a limit) may dissent (--strict)"
    ok = bool(artifacts) and all(a.verified for a in artifacts) and not reason
    return Result(
        verified=ok,
        threshold=policy.threshold,
        artifacts=tuple(artifacts),
        dissent=dissent,
        conflicts=conflicts_rel,
        rejected=tuple(rejected),
        counted=tuple(counted),
        reason=reason,
        doubts=tuple(d for d in doubts if d.name in relevant),
        excluded=tuple((who, name, why) for (who, name), why in sorted(why_excluded.items())),
    )
