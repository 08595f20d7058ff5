"""Withdrawn claims (DESIGN §8): the statement, its strict parsing, and what it cancels.

A withdrawal is a note line like a claim (same DSSE envelope, same note, same union merge,
same bundles) whose in-toto Statement has the predicate type ``https://wotr.dev/withdrawal/v1``:

    subject:   the withdrawn artifacts (name, sha256), sorted; or, for all of them, the single
               subject {"name": "*", "digest": {"gitCommit": C}}
    predicate: {"gitCommit": C, "gitTree": T, "all": true|false}

It cancels only claims *by its own signer* on *that commit* (and tree) for those digests (or
all of them); it is final. Its signature is checked in the same gpg pass as the claims of the
note. A withdrawal line that names a policy key but was not checked (a bound of DESIGN §6 rule 8
ran out) is taken at its worst: that signer's claims on the commit do not count.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from . import _openpgp, _record, _sshsig
from ._record import record
from .claim import STATEMENT_TYPE, Claim, ClaimError, canonical_json, parse_payload
from .consensus import Counted, Rejection
from .policy import Policy

TYPE_CHECKING = False  # typing itself is not imported at run time (verify's start-up)
if TYPE_CHECKING:
    from typing import Any

PREDICATE_TYPE = "https://wotr.dev/withdrawal/v1"
_MARK = b'"predicateType":"' + PREDICATE_TYPE.encode() + b'"'
_HEX = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@record
class Withdrawal:
    commit: str
    tree: str
    subjects: tuple[tuple[str, str], ...]  # (name, sha256), sorted; empty when ``all``
    all: bool = False

    def __post_init__(self) -> None:
        for what, value in (("commit", self.commit), ("tree", self.tree)):
            if not _HEX.fullmatch(value):
                raise ClaimError(f"{what} id {value!r} is not a full lowercase hex object id")
        if self.all == bool(self.subjects):
            raise ClaimError("a withdrawal names digests, or all of them, not both")
        if list(self.subjects) != sorted(set(self.subjects)):
            raise ClaimError("withdrawal subjects are not sorted and unique")
        for name, digest in self.subjects:
            if not isinstance(name, str) or not name or len(name) > 255:
                raise ClaimError("withdrawal subject name is not a short string")
            if not _SHA256.fullmatch(digest):
                raise ClaimError(f"{digest!r} is not a lowercase hex sha256 digest")

    @property
    def digests(self) -> frozenset[str]:
        return frozenset(d for _, d in self.subjects)

    def payload(self) -> bytes:
        subject: list[dict[str, Any]] = (
            [{"name": "*", "digest": {"gitCommit": self.commit}}]
            if self.all
            else [{"name": n, "digest": {"sha256": d}} for n, d in self.subjects]
        )
        return canonical_json(
            {
                "_type": STATEMENT_TYPE,
                "subject": subject,
                "predicateType": PREDICATE_TYPE,
                "predicate": {"gitCommit": self.commit, "gitTree": self.tree, "all": self.all},
            }
        )


def parse(payload: bytes) -> Withdrawal:
    """The withdrawal a payload states; :class:`ClaimError` unless it is exactly canonical."""
    try:
        doc = json.loads(payload)
        pred = doc["predicate"]
        everything = pred["all"] is True
        subjects: tuple[tuple[str, str], ...] = ()
        if not everything:
            subjects = tuple(
                sorted((str(s["name"]), str(s["digest"]["sha256"])) for s in doc["subject"])
            )
        found = Withdrawal(str(pred["gitCommit"]), str(pred["gitTree"]), subjects, everything)
    except ClaimError:
        raise
    except (ValueError, UnicodeError, RecursionError, TypeError, KeyError, OverflowError) as exc:
        raise ClaimError(f"payload is not a valid withdrawal: {type(exc).__name__}") from exc
    if found.payload() != payload:
        raise ClaimError("withdrawal is not in canonical form (or carries unknown fields)")
    return found


def parse_any(payload: bytes) -> Claim | Withdrawal:
    """A claim, or a withdrawal when the payload says it is one (claims keep their errors)."""
    if _MARK in payload:
        return parse(payload)
    return parse_payload(payload)


# --- what withdrawals cancel (pure) -------------------------------------------------------------


@record
class Applied:
    counted: tuple[Counted, ...]  # what still counts
    rejected: tuple[Rejection, ...]  # claims withdrawn (wholly or in part), bad withdrawals
    withdrawn: tuple[tuple[int, str, str], ...]  # (claim line, signer, sha256) cancelled
    lines: tuple[tuple[int, str], ...]  # (withdrawal line, what it says), for show


@record
class CheckedWithdrawal:
    """A withdrawal carrying a clean good signature by the primary key ``fingerprint``."""

    line: int
    fingerprint: str
    withdrawal: Withdrawal


def apply(
    policy: Policy,
    counted: Sequence[Counted],
    withdrawals: Sequence[CheckedWithdrawal],
    unchecked: Sequence[tuple[int, frozenset[str]]],
    *,
    commit: str,
    tree: str,
) -> Applied:
    """Cancel each signer's claims that its own good withdrawals on this commit name.

    ``unchecked``: withdrawal lines (number, issuer ids) that named a policy key but were not
    sent to gpg; each is taken at its worst, as a withdrawal of everything by that key's owner.
    """
    rejected: list[Rejection] = []
    lines: list[tuple[int, str]] = []
    everything: dict[str, int] = {}
    some: dict[str, dict[str, int]] = {}
    for item in withdrawals:
        w = item.withdrawal
        signer = policy.signer_for(item.fingerprint)
        if signer is None:
            why = f"withdrawal by key {item.fingerprint}, which is not in the policy: no effect"
            rejected.append(Rejection(item.line, why, fingerprint=item.fingerprint))
            continue
        if w.commit != commit or w.tree != tree:  # rule 4, also checked before gpg
            rejected.append(Rejection(item.line, "withdrawal for another commit: no effect"))
            continue
        if w.all:
            everything.setdefault(signer.name, item.line)
            lines.append((item.line, f"withdrawal by {signer.name} of all its claims here"))
        else:
            mine = some.setdefault(signer.name, {})
            for d in w.digests:
                mine.setdefault(d, item.line)
            lines.append((item.line, f"withdrawal by {signer.name} of {len(w.digests)} digest(s)"))
    if unchecked:
        owners = policy.issuer_signers()
        for number, ids in unchecked:
            for name in sorted({n for i in ids for n in owners.get(i, ())}):
                everything.setdefault(name, number)
                lines.append(
                    (number, f"withdrawal naming {name}'s key not checked (limit): taken as all")
                )
    kept: list[Counted] = []
    withdrawn: list[tuple[int, str, str]] = []
    for c in counted:
        line = everything.get(c.signer)
        gone = some.get(c.signer, {})
        if line is not None:
            withdrawn += [(c.line, c.signer, s.sha256) for s in c.claim.subjects]
            rejected.append(
                Rejection(c.line, f"withdrawn by its signer (line {line})", c.signer, c.fingerprint)
            )
            continue
        left = tuple(s for s in c.claim.subjects if s.sha256 not in gone)
        if len(left) == len(c.claim.subjects):
            kept.append(c)
            continue
        withdrawn += [(c.line, c.signer, s.sha256) for s in c.claim.subjects if s.sha256 in gone]
        lines_of = sorted({gone[s.sha256] for s in c.claim.subjects if s.sha256 in gone})
        why = f"withdrawn by its signer (line {', '.join(map(str, lines_of))})"
        if not left:
            rejected.append(Rejection(c.line, why, c.signer, c.fingerprint))
            continue
        rejected.append(
            Rejection(
                c.line,
                f"in part: {len(c.claim.subjects) - len(left)} digest(s) {why}",
                c.signer,
                c.fingerprint,
            )
        )
        kept.append(_record.replace(c, claim=_record.replace(c.claim, subjects=left)))
    return Applied(tuple(kept), tuple(rejected), tuple(withdrawn), tuple(lines))


def left_out(
    policy: Policy,
    offered: dict[bytes, list[tuple[int, Any, Any]]],
    kept: dict[bytes, list[tuple[int, Any, Any]]],
) -> list[tuple[int, frozenset[str]]]:
    """Withdrawal lines naming a policy key that the gate did not send to gpg (a bound ran out):
    (line, issuer ids). A repeat of a (payload, signature) that is checked is not left out."""
    sent = {(payload, env.sig) for payload, items in kept.items() for _, env, _ in items}
    out: list[tuple[int, frozenset[str]]] = []
    for payload, items in offered.items():
        for number, env, parsed in items:
            if not isinstance(parsed, Withdrawal) or (payload, env.sig) in sent:
                continue
            try:
                ids = _policy_issuers(policy, env.sig)
            except (_openpgp.PacketError, _sshsig.SshFormatError):
                continue
            if ids:
                out.append((number, frozenset(ids)))
    return out


def _policy_issuers(policy: Policy, sig: bytes) -> frozenset[str]:
    """The issuer ids of ``sig`` naming a policy key: OpenPGP issuers, or the fingerprint of
    the public key inside an SSH signature (DESIGN §9) -- an SSH signer's withdrawal left
    unchecked must be taken at its worst as an OpenPGP signer's is."""
    if _sshsig.is_sshsig(sig):
        fpr = _sshsig.parse_signature(sig).key.fingerprint
        return frozenset({fpr}) if any(f == fpr for f, _ in policy.ssh_keys) else frozenset()
    _openpgp.check_single_signature(sig)
    return _openpgp.issuers(sig) & policy.issuer_ids
