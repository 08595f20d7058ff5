"""Orchestration of ``verify`` and ``show``: note bytes -> checked claims -> a Report.

The same pipeline serves a repository (notes) and an offline bundle: it takes the raw note
bytes and the commit they belong to, checks every signature in an isolated gpg home, and
hands the survivors to the pure :mod:`wotr.consensus`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from . import _openpgp, _record, _sshsig, consensus, git, gpg, hashing, notes, withdraw
from . import claim as claim_mod
from ._record import field, record
from ._threads import started
from .consensus import Checked, Rejection, Result, Target
from .errors import BadInput
from .policy import Policy


@record
class Line:
    """Everything known about one note line, for ``show``."""

    line: int
    keyid: str
    claim: claim_mod.Claim | None
    signer: str | None = None
    fingerprint: str | None = None
    counts: bool = False
    reason: str = ""


@record
class Report:
    commit: str
    tag: str | None
    policy: Policy | None
    result: Result | None
    lines: tuple[Line, ...] = field(default=())
    note_lines: int = 0
    repository: str | None = None  # the git directory the claims were read from


@record
class Context:
    commit: str
    tree: str
    tag: str | None


# At most this many signatures by policy keys go to gpg for one commit. Honest notes hold a
# few per signer; a note with more is hostile, and each bad signature can cost a gpg process.
MAX_CHECKED_SIGNATURES = 1024

_Item = tuple[int, claim_mod.Envelope, "claim_mod.Claim | withdraw.Withdrawal"]

# Offline, one verify may check many commits (bundles are attacker data: a directory can hold
# bundles of any number of made-up commits naming the artifact's digest). All of them together
# send at most this many signatures to gpg; beyond, fail closed.
MAX_CHECKED_SIGNATURES_PER_RUN = 4 * MAX_CHECKED_SIGNATURES


@record(frozen=False)
class Budget:
    """Signatures by policy keys that may still go to gpg, shared by the commits of one run."""

    left: int = field(default_factory=lambda: MAX_CHECKED_SIGNATURES_PER_RUN)


# Lines rejected before gpg (unparseable, for another commit, untrusted issuer ...) are listed
# one by one up to this many; beyond, only counted: a flooded note costs bounded memory.
MAX_LISTED_REJECTIONS = 1000


@record(frozen=False)
class _Sink:
    """Where lines that count for nothing go: the first MAX_LISTED_REJECTIONS listed, the rest
    counted (``overflow``)."""

    rejected: list[Rejection] = field(default_factory=list)
    shown: dict[int, Line] = field(default_factory=dict)
    overflow: int = 0

    def drop(
        self,
        number: int,
        why: str,
        keyid: str = "",
        parsed: claim_mod.Claim | withdraw.Withdrawal | None = None,
    ) -> None:
        if len(self.rejected) >= MAX_LISTED_REJECTIONS:
            self.overflow += 1
            return
        self.rejected.append(Rejection(number, why))
        self.shown[number] = Line(number, keyid, _claim(parsed), reason=why)


def _gate(
    policy: Policy, groups: dict[bytes, list[_Item]], sink: _Sink, run: Budget | None = None
) -> tuple[dict[bytes, list[_Item]], list[consensus.Unchecked]]:
    """What may reach gpg (DESIGN §6 rule 8): signatures whose issuer hint names a policy key
    or subkey, each (payload, signature) once, at most MAX_CHECKED_SIGNATURES in all.

    Lines dropped for not being by a policy key can never count. Lines by a policy key that a
    budget keeps from gpg are returned as :class:`consensus.Unchecked`: they may be valid, and
    are counted at their worst (a limit turns a yes into a no, never a no into a yes)."""

    def drop(item: _Item, why: str) -> None:
        number, env, parsed = item
        sink.drop(number, why, env.keyid, parsed)

    owners = policy.issuer_signers()
    # First what may reach gpg at all, in note order, by issuer key...
    queues: dict[str, list[tuple[bytes, _Item]]] = {}
    seen: dict[tuple[bytes, bytes], int] = {}
    for payload, items in groups.items():
        for item in items:
            number, env, _ = item
            try:
                ids, ours = _issuers(policy, env.sig)
            except (_openpgp.PacketError, _sshsig.SshFormatError) as exc:
                drop(item, str(exc))
                continue
            if not ours:
                named = ", ".join(sorted(ids, key=len, reverse=True)[:1]) or "no issuer"
                drop(item, f"signed by key {named}, which is not in the policy")
                continue
            # The same signature over the same payload says the same (a re-encoded line).
            # Over another payload it is checked too: skipping it could hide a real line
            # behind a forged copy of its signature.
            if (payload, env.sig) in seen:
                drop(item, f"the same signature as line {seen[(payload, env.sig)]}")
                continue
            seen[(payload, env.sig)] = number
            queues.setdefault(min(ours), []).append((payload, item))
    # ...then taken one per issuer key in turn: a flood of signatures naming one key (forged
    # copies of a signer's claim need no private key) uses up that key's turns, not the
    # budget of the others.
    rounds = max(map(len, queues.values()), default=0)
    order = [q[i] for i in range(rounds) for q in queues.values() if i < len(q)]
    kept: dict[bytes, list[_Item]] = {}
    unchecked: list[consensus.Unchecked] = []

    def skip(item: _Item, why: str) -> None:
        drop(item, why)
        number, env, parsed = item
        ids = _issuers(policy, env.sig)[1]
        who = tuple(sorted({name for i in ids for name in owners.get(i, ())}))
        if isinstance(parsed, claim_mod.Claim):  # withdrawals: see withdraw.left_out
            unchecked.append(consensus.Unchecked(number, who, parsed, why))

    budget = MAX_CHECKED_SIGNATURES
    for payload, item in order:
        if run is not None and run.left == 0:
            skip(
                item,
                "not checked: this verify already sent its limit of signatures by "
                "policy keys to gpg, for other commits (flooded bundles?)",
            )
            continue
        if budget == 0:
            skip(
                item,
                f"not checked: more than {MAX_CHECKED_SIGNATURES} signatures by "
                "policy keys on this commit (a flooded note?)",
            )
            continue
        budget -= 1
        if run is not None:
            run.left -= 1
        kept.setdefault(payload, []).append(item)
    return kept, unchecked


def _issuers(policy: Policy, sig: bytes) -> tuple[frozenset[str], frozenset[str]]:
    """(every issuer hint of ``sig``, those naming a policy key). An SSH signature names one key,
    the public key inside it (DESIGN §9); its namespace and form are checked here, before any
    process starts."""
    if _sshsig.is_sshsig(sig):
        fpr = _sshsig.parse_signature(sig).key.fingerprint
        ours = frozenset({fpr}) if any(f == fpr for f, _ in policy.ssh_keys) else frozenset()
        return frozenset({fpr}), ours
    _openpgp.check_single_signature(sig)
    ids = _openpgp.issuers(sig)
    return ids, ids & policy.issuer_ids


def _check_jobs(policy: Policy, jobs: list[tuple[bytes, list[bytes]]]) -> list[list[gpg.SigCheck]]:
    """Each job's signatures checked by their own backend (DESIGN §9): OpenPGP ones by gpg
    (:meth:`gpg.Verifier.check_many`), SSH ones all together by :class:`ssh.Verifier`. A backend
    with nothing to check sets nothing up."""
    found: list[list[gpg.SigCheck]] = [[] for _ in jobs]
    slots: list[list[gpg.SigCheck | None]] = [[None] * len(sigs) for _, sigs in jobs]
    pgp_jobs: list[tuple[bytes, list[bytes]]] = []
    pgp_at: list[tuple[int, list[int]]] = []
    ssh_items: list[tuple[bytes, bytes]] = []
    ssh_at: list[tuple[int, int]] = []
    for j, (data, sigs) in enumerate(jobs):
        idx = [k for k, sig in enumerate(sigs) if not _sshsig.is_sshsig(sig)]
        if idx:
            pgp_jobs.append((data, [sigs[k] for k in idx]))
            pgp_at.append((j, idx))
        for k, sig in enumerate(sigs):
            if _sshsig.is_sshsig(sig):
                ssh_items.append((data, sig))
                ssh_at.append((j, k))
    if ssh_items:
        from . import ssh  # only where a note holds SSH signatures (verify's start-up)
    # In a mixed note the in-process SSH verifier is imported while gpg runs.
    warm = started(ssh.warm_up, len(ssh_items)) if ssh_items and pgp_jobs else None
    if pgp_jobs:
        with gpg.Verifier(policy.keyring, merge_copies=policy.keyring_has_copies) as verifier:
            for (j, idx), res in zip(pgp_at, verifier.check_many(pgp_jobs), strict=True):
                for k, one in zip(idx, res, strict=True):
                    slots[j][k] = one
    if warm is not None:
        warm.join()
    if ssh_items:
        with ssh.Verifier(policy.ssh_keys) as ssh_verifier:
            for (j, k), one in zip(ssh_at, ssh_verifier.check(ssh_items), strict=True):
                slots[j][k] = one
    for j, row in enumerate(slots):
        found[j] = [r if r is not None else gpg.SigCheck(False, None, "not checked") for r in row]
    return found


@record(frozen=False)
class _Prepared:
    """A note parsed and gated, its signatures not yet checked (see :func:`check_many`)."""

    ctx: Context
    sink: _Sink
    count: int
    groups: dict[bytes, list[_Item]]  # payload -> lines whose signatures go to gpg
    unchecked: list[consensus.Unchecked]
    too_large: bool = False
    # withdrawal lines (number, issuer ids) naming a policy key that a limit kept from gpg:
    # each taken at its worst (DESIGN §8, wotr/withdraw.py)
    withdrawals_left_out: list[tuple[int, frozenset[str]]] = field(default_factory=list)


def _prepare(policy: Policy | None, note: bytes, ctx: Context, run: Budget | None) -> _Prepared:
    """Parse every line, drop what cannot count (rules 4 and 8) and gate what may reach gpg."""
    sink = _Sink()
    if notes.too_large(note):
        why = f"note is over the {notes.MAX_NOTE_BYTES}-byte limit; nothing in it counts"
        sink.rejected.append(Rejection(0, why))
        return _Prepared(ctx, sink, 1, {}, [], too_large=True)
    split = notes.split(note)
    for number in split.short:
        sink.drop(number, "not a valid wotr claim: too short to be an envelope")
    sink.overflow += split.short_count - len(split.short)
    groups: dict[bytes, list[_Item]] = defaultdict(list)
    # Lines that share one payload (every honest claim of a build, or hostile copies) parse
    # it once: parsing is a pure function of the bytes.
    payloads: dict[bytes, claim_mod.Claim | withdraw.Withdrawal | claim_mod.ClaimError] = {}
    for number, raw in split.candidates:
        try:
            env = claim_mod.parse_line(raw)
            known = payloads.get(env.payload)
            if known is None:
                try:
                    known = withdraw.parse_any(env.payload)  # a claim, or a withdrawal (§8)
                except claim_mod.ClaimError as exc:
                    known = exc
                payloads[env.payload] = known
            if isinstance(known, claim_mod.ClaimError):
                raise known.with_traceback(None)
            parsed = known
        except claim_mod.ClaimError as exc:
            sink.drop(number, f"not a valid wotr claim: {exc}")
            continue
        if parsed.commit != ctx.commit or parsed.tree != ctx.tree:
            # Rule 4, decided before any gpg work (also re-checked in consensus.admit).
            why = (
                f"claim is for commit {parsed.commit[:12]}, not this commit (copied?)"
                if parsed.commit != ctx.commit
                else f"claim names tree {parsed.tree[:12]}, not this commit's tree"
            )
            sink.drop(number, why, env.keyid, parsed)
            continue
        groups[env.payload].append((number, env, parsed))
    if policy is None:
        for items in groups.values():
            for number, env, parsed in items:
                sink.shown[number] = Line(
                    number, env.keyid, _claim(parsed), reason="signature not checked: no policy"
                )
        return _Prepared(ctx, sink, split.count, {}, [])
    kept, unchecked = _gate(policy, groups, sink, run)
    left_out = withdraw.left_out(policy, groups, kept)
    return _Prepared(ctx, sink, split.count, kept, unchecked, withdrawals_left_out=left_out)


def _finish(
    policy: Policy, prep: _Prepared, results: dict[bytes, list[gpg.SigCheck]]
) -> CheckedNote:
    """Admit what gpg found good (rules 2-6); keep the unchecked lines that could count."""
    ctx, sink = prep.ctx, prep.sink
    rejected, shown = sink.rejected, sink.shown
    checked: dict[int, Checked] = {}
    withdrawals: list[withdraw.CheckedWithdrawal] = []
    for payload, items in prep.groups.items():
        for (number, env, parsed), res in zip(items, results[payload], strict=True):
            if res.ok and res.fingerprint:
                if isinstance(parsed, withdraw.Withdrawal):
                    withdrawals.append(withdraw.CheckedWithdrawal(number, res.fingerprint, parsed))
                else:
                    checked[number] = Checked(number, res.fingerprint, parsed)
                continue
            signer = policy.signer_for(res.fingerprint) if res.fingerprint else None
            name = signer.name if signer else None
            rejected.append(Rejection(number, res.reason, name, res.fingerprint))
            shown[number] = Line(
                number, env.keyid, _claim(parsed), name, res.fingerprint, reason=res.reason
            )
    counted, refused = consensus.admit(
        policy, checked.values(), commit=ctx.commit, tree=ctx.tree, tag=ctx.tag
    )
    rejected.extend(refused)
    left_out = prep.withdrawals_left_out
    if withdrawals or left_out:  # DESIGN §8: each signer's own withdrawals cancel its claims
        applied = withdraw.apply(
            policy, counted, withdrawals, left_out, commit=ctx.commit, tree=ctx.tree
        )
        counted = list(applied.counted)
        refused = [*refused, *applied.rejected]
        rejected.extend(applied.rejected)
        by_line = {w.line: w.fingerprint for w in withdrawals}
        for number, text in applied.lines:
            fpr = by_line.get(number)
            shown[number] = Line(number, fpr or "", None, None, fpr, reason=text)
    for c in counted:
        shown[c.line] = Line(c.line, c.fingerprint, c.claim, c.signer, c.fingerprint, True)
    for r in refused:
        item = checked.get(r.line)
        if item is None:
            continue
        shown[r.line] = Line(
            r.line, item.fingerprint, item.claim, r.signer, r.fingerprint, reason=r.reason
        )
    unchecked = consensus.admit_unchecked(
        policy, prep.unchecked, commit=ctx.commit, tree=ctx.tree, tag=ctx.tag
    )
    return CheckedNote(
        ctx,
        tuple(counted),
        tuple(_listed(sink)),
        tuple(shown[k] for k in sorted(shown)),
        prep.count,
        tuple(unchecked),
    )


def check_many(
    policy: Policy, items: Sequence[tuple[bytes, Context]], run: Budget | None = None
) -> list[CheckedNote]:
    """:func:`check` of several notes (offline: one per commit), with one isolated gpg home
    and as few gpg processes as the signatures need (DESIGN §6 rules 1 and 8)."""
    preps = [_prepare(policy, note, ctx, run) for note, ctx in items]
    jobs: list[tuple[bytes, list[bytes]]] = []
    for prep in preps:
        for payload, its in prep.groups.items():
            jobs.append((claim_mod.pae(payload), [env.sig for _, env, _ in its]))
    found: list[list[gpg.SigCheck]] = []
    # No signature left for gpg: no isolated home either (setting one up can cost a gpg
    # process, and offline a flood of bundles would pay it once per made-up commit).
    if jobs:
        found = _check_jobs(policy, jobs)
    out: list[CheckedNote] = []
    at = 0
    for prep in preps:
        results: dict[bytes, list[gpg.SigCheck]] = {}
        for payload in prep.groups:
            results[payload] = found[at]
            at += 1
        out.append(_finish(policy, prep, results))
    return out


def check_note(
    policy: Policy | None, note: bytes, ctx: Context, run: Budget | None = None
) -> tuple[list[consensus.Counted], list[Rejection], list[Line], int]:
    """Parse and signature-check every line of a note; rules 1-7 applied, nothing counted yet.

    Returns what counts, what does not (and why), every line for ``show``, and the number of
    non-blank lines in the note.
    """
    if policy is None:
        prep = _prepare(None, note, ctx, run)
        sink = prep.sink
        return [], _listed(sink), [sink.shown[k] for k in sorted(sink.shown)], prep.count
    done = check_many(policy, [(note, ctx)], run)[0]
    return list(done.counted), list(done.rejected), list(done.lines), done.note_lines


def _claim(parsed: claim_mod.Claim | withdraw.Withdrawal | None) -> claim_mod.Claim | None:
    return parsed if isinstance(parsed, claim_mod.Claim) else None


def _listed(sink: _Sink) -> list[Rejection]:
    out = sorted(sink.rejected, key=lambda r: r.line)
    if sink.overflow:
        out.append(
            Rejection(
                0,
                f"{sink.overflow} more line(s) count for nothing and are not listed "
                f"(only the first {MAX_LISTED_REJECTIONS} are; a flooded note?)",
            )
        )
    return out


def targets_for(
    artifacts: Sequence[Path],
    digests: Sequence[str],
    hashed: Callable[[], list[str]] | None = None,
) -> list[Target] | None:
    """The ``--digest`` values, then the artifacts with their sha256. ``hashed``: the artifacts'
    digests from a hashing the caller started earlier (see :func:`wotr.entry.run_verify`)."""
    targets: list[Target] = []
    for spec in digests:
        hexpart = spec.removeprefix("sha256:").lower()
        if (
            not spec.startswith("sha256:")
            or len(hexpart) != 64
            or not all(c in "0123456789abcdef" for c in hexpart)
        ):
            raise BadInput(f"--digest {spec!r} is not sha256:<64 hex digits>")
        targets.append(Target(spec, hexpart))
    sums = hashed() if hashed is not None else hashing.sha256_files(artifacts)
    for path, digest in zip(artifacts, sums, strict=True):
        targets.append(Target(str(path), digest))
    return targets or None


def evaluate(
    policy: Policy, note: bytes, ctx: Context, targets: list[Target] | None, *, strict: bool
) -> Report:
    return decide(policy, check(policy, note, ctx), targets, strict=strict)


@record
class CheckedNote:
    """A note after :func:`check_note`: what counts and what not, before any question is asked."""

    ctx: Context
    counted: tuple[consensus.Counted, ...]
    rejected: tuple[Rejection, ...]
    lines: tuple[Line, ...]
    note_lines: int
    unchecked: tuple[consensus.Unchecked, ...] = ()  # admissible lines a limit kept from gpg


def check(policy: Policy, note: bytes, ctx: Context, run: Budget | None = None) -> CheckedNote:
    """The gpg half of :func:`evaluate`, for a caller that asks several questions of one note.

    ``run``: a signature budget shared with the other notes checked by one verify."""
    return check_many(policy, [(note, ctx)], run)[0]


def decide(
    policy: Policy, checked: CheckedNote, targets: list[Target] | None, *, strict: bool
) -> Report:
    """The pure half of :func:`evaluate`: ``decide(p, check(p, n, c), t) == evaluate(p, n, c, t)``.

    Asking about several target sets costs one gpg pass, not one per set.
    """
    result = consensus.decide(
        policy,
        checked.counted,
        checked.rejected,
        targets,
        strict=strict,
        unchecked=checked.unchecked,
    )
    ctx = checked.ctx
    return Report(
        ctx.commit, ctx.tag, policy, result, _relabel(checked.lines, result), checked.note_lines
    )


def _relabel(lines: tuple[Line, ...], result: Result) -> tuple[Line, ...]:
    """Lines as ``show`` and the status page list them: a counted claim naming a name its
    signer counts for nothing on (rule 7, or rule 8 at its worst) is not shown as counting."""
    if not result.excluded:
        return lines
    why = {(who, name): text for who, name, text in result.excluded}
    out: list[Line] = []
    for ln in lines:
        who = ln.signer or ""
        hits = (
            sorted({s.name for s in ln.claim.subjects if (who, s.name) in why})
            if ln.counts and ln.claim is not None
            else []
        )
        if hits:
            reasons = "; ".join(f"{name}: {why[(who, name)]}" for name in hits[:3])
            more = f" (and {len(hits) - 3} more names)" if len(hits) > 3 else ""
            ln = _record.replace(
                ln, counts=False, reason=f"{who} counts for none of: {reasons}{more}"
            )
        out.append(ln)
    return tuple(out)


def verify_repo(
    repo: git.Repo,
    rev: str,
    policy: Policy,
    *,
    artifacts: Sequence[Path] = (),
    digests: Sequence[str] = (),
    strict: bool = False,
    hashed: Callable[[], list[str]] | None = None,
) -> Report:
    """Does each artifact (or every claimed name) reach a quorum at ``rev``?

    ``hashed``: the artifacts' digests, from a hashing the caller already started."""
    revision = git.resolve(repo, rev)
    ctx = Context(revision.commit, revision.tree, revision.tag)
    if not artifacts:
        targets = targets_for(artifacts, digests)
        return evaluate(policy, notes.read(repo, revision.commit), ctx, targets, strict=strict)
    # The artifacts are hashed (on every core, see hashing.py) while git reads the note and gpg
    # checks it. Errors come out as if run one after the other: an artifact's first.
    sums = hashed if hashed is not None else started(hashing.sha256_files, tuple(artifacts))
    try:
        checked = check(policy, notes.read(repo, revision.commit), ctx)
    except Exception:
        try:
            targets_for(artifacts, digests, sums)  # the artifact's error, if any, comes first
        except Exception as first:
            raise first from None
        raise
    return decide(policy, checked, targets_for(artifacts, digests, sums), strict=strict)


def show_repo(repo: git.Repo, rev: str, policy: Policy | None) -> Report:
    revision = git.resolve(repo, rev)
    note = notes.read(repo, revision.commit)
    ctx = Context(revision.commit, revision.tree, revision.tag)
    if policy is not None:
        return decide(policy, check(policy, note, ctx), None, strict=False)
    _, _, lines, count = check_note(policy, note, ctx)
    return Report(revision.commit, revision.tag, policy, None, tuple(lines), count)
