"""The policy chain (DESIGN §7), pure: which policy N+1 is valid, given checked signatures.

No git, no gpg, no files: like python-tuf's trusted metadata set, this module only decides.
The I/O (reading the chain ref, running gpg, pinning) is :mod:`wotr.chainstore`.

- The *digest of a policy* is the sha256 of its *listing*: one line ``<sha256 hex>  <name>\\n``
  per file, sorted by name, where the policy file itself is named ``threshold.toml`` and each
  key file by its path relative to it (``keys/alice.asc``). See docs/format.md for a vector.
- An *update statement* is an in-toto Statement v1 whose subjects are those files (name and
  sha256) and whose predicate (type ``https://wotr.dev/policy-update/v1``) holds the new
  ``serial`` and the ``previous`` policy's digest. It is deterministic: every signer of one
  step signs the same bytes, so agreement is byte equality.
- Policy N+1 is valid when at least ``[update] threshold`` distinct ``[update] signers`` of
  policy N made a clean good signature over exactly that statement (one signer, one vote).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

from ._record import record
from .claim import STATEMENT_TYPE, canonical_json
from .errors import PolicyError
from .policy import Policy

UPDATE_PREDICATE = "https://wotr.dev/policy-update/v1"
POLICY_NAME = "threshold.toml"

MAX_FILES = 64  # files of one policy (the TOML and its key files)
MAX_FILE_BYTES = 1024 * 1024
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@-]{0,99}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ChainError(PolicyError):
    """The chain cannot be followed safely (a fork, a flood); verify fails closed (exit 2)."""


def check_name(name: str) -> str:
    """A file name inside a policy: a relative path of plain parts, at most 4 deep."""
    parts = name.split("/")
    if len(parts) > 4 or len(name) > 255 or not all(_PART.fullmatch(p) for p in parts):
        raise PolicyError(
            f"policy file name {name!r} is not a plain relative path",
            "key files must be named by paths such as keys/alice.asc, without '..'",
        )
    return name


def listing(digests: Iterable[tuple[str, str]]) -> bytes:
    """The canonical listing of (name, sha256) pairs that a policy digest is taken over."""
    return b"".join(f"{sha}  {name}\n".encode() for name, sha in sorted(digests))


def digest_of(digests: Iterable[tuple[str, str]]) -> str:
    return hashlib.sha256(listing(digests)).hexdigest()


def chain_digests(policy: Policy) -> tuple[tuple[str, str], ...]:
    """(name, sha256) of the policy's files as the chain names them (its TOML as threshold.toml)."""
    out = []
    for name, sha in policy.digests:
        out.append((POLICY_NAME if name == policy.path.name else name, sha))
    return tuple(sorted(out))


def policy_digest(policy: Policy) -> str:
    return digest_of(chain_digests(policy))


def statement(digests: Iterable[tuple[str, str]], serial: int, previous: str) -> bytes:
    """The exact bytes every [update] signer of policy ``serial - 1`` signs (before PAE)."""
    return canonical_json(
        {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": n, "digest": {"sha256": d}} for n, d in sorted(digests)],
            "predicateType": UPDATE_PREDICATE,
            "predicate": {"serial": serial, "previous": previous},
        }
    )


@record
class Vote:
    """One signature line of a proposed step, after gpg: ``fingerprint`` is the primary key of
    a clean good signature, or None (``reason`` says why it does not count)."""

    line: int
    payload: bytes
    fingerprint: str | None
    reason: str = ""


@record
class Step:
    """The verdict on one proposed policy N+1."""

    serial: int
    digest: str
    valid: bool
    signers: tuple[str, ...]  # distinct [update] signers of policy N whose vote counts
    needed: int
    reason: str = ""
    rejected: tuple[tuple[int, str], ...] = ()


def judge(current: Policy, candidate: Policy, votes: Sequence[Vote]) -> Step:
    """Is ``candidate`` a valid successor of ``current``? Pure: votes are gpg's verdicts."""
    digest = policy_digest(candidate)
    needed = current.update_threshold
    want = current.serial + 1
    if candidate.serial != want:
        why = (
            f"serial {candidate.serial} does not follow serial {current.serial} "
            f"(a replayed or out-of-order policy; only serial {want} may come next)"
        )
        return Step(candidate.serial, digest, False, (), needed, why)
    expected = statement(chain_digests(candidate), want, policy_digest(current))
    voters = set(current.update_signers)
    counted: set[str] = set()
    rejected: list[tuple[int, str]] = []
    for vote in votes:
        if vote.payload != expected:
            rejected.append(
                (vote.line, "signs another statement (other files, serial or previous policy)")
            )
            continue
        if vote.fingerprint is None:
            rejected.append((vote.line, vote.reason or "not a good signature"))
            continue
        signer = current.signer_for(vote.fingerprint)
        if signer is None:
            rejected.append((vote.line, f"key {vote.fingerprint} is not in policy {want - 1}"))
        elif signer.name not in voters:
            rejected.append((vote.line, f"{signer.name} may not sign updates of policy {want - 1}"))
        else:
            counted.add(signer.name)
    ok = len(counted) >= needed
    why = "" if ok else f"{len(counted)} of {needed} required update signers"
    return Step(want, digest, ok, tuple(sorted(counted)), needed, why, tuple(rejected))


def successor(steps: Sequence[Step], *, complete: bool = True) -> Step | None:
    """The one valid step among the proposals for serial N+1; None when there is none.

    Two different valid policies N+1 are a fork: fail closed. ``complete=False`` (a bound left
    some proposal unchecked) also fails closed: an unchecked proposal might be valid (a newer
    policy that removes a key) or the other half of a fork."""
    valid = {s.digest: s for s in steps if s.valid}
    if len(valid) > 1:
        found = ", ".join(sorted(d[:16] for d in valid))
        raise ChainError(
            f"policy fork: {len(valid)} different policies {steps[0].serial} are validly signed "
            f"({found})",
            "the project's update signers must settle on one; until then nothing verifies",
        )
    if not complete:
        raise ChainError(
            f"too many proposals for policy {steps[0].serial} to check them all (flooded?)",
            "remove the bogus proposals from refs/wotr/policy; until then nothing verifies",
        )
    return next(iter(valid.values()), None)


def check_sha256(value: str) -> str:
    if not _SHA256.fullmatch(value):
        raise PolicyError(f"{value!r} is not a lowercase sha256 hex digest")
    return value
