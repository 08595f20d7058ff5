"""``git wotr withdraw``: sign a withdrawal of one's own claims on a commit (DESIGN §8)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from . import claim as claim_mod
from . import git, gpg, hashing, notes, ssh
from ._record import record
from .errors import BadInput
from .withdraw import Withdrawal


@record
class Withdrawn:
    commit: str
    fingerprint: str
    withdrawal: Withdrawal
    added: bool


def withdraw(
    repo: git.Repo,
    *,
    rev: str = "HEAD",
    everything: bool = False,
    artifacts: Sequence[Path] = (),
    digests: Sequence[str] = (),
    key: str | None = None,
) -> Withdrawn:
    if everything == bool(artifacts or digests):
        raise BadInput(
            "name the artifacts (or --digest values) to withdraw, or pass --all",
            "e.g. git wotr withdraw --rev v1.0 dist/app.tar.gz",
        )
    revision = git.resolve(repo, rev)
    subjects: set[tuple[str, str]] = set()
    for spec in digests:
        hexpart = spec.removeprefix("sha256:").lower()
        if (
            not spec.startswith("sha256:")
            or len(hexpart) != 64
            or not all(c in "0123456789abcdef" for c in hexpart)
        ):
            raise BadInput(f"--digest {spec!r} is not sha256:<64 hex digits>")
        subjects.add((spec, hexpart))
    for path, digest in zip(artifacts, hashing.sha256_files(artifacts), strict=True):
        subjects.add((path.name or str(path), digest))
    w = Withdrawal(revision.commit, revision.tree, tuple(sorted(subjects)), everything)
    payload = w.payload()
    # DESIGN §9: an SSH signer withdraws with its SSH key, chosen as sign chooses it (--key,
    # else gpg.format/user.signingkey); gpg alone would leave it no way to withdraw.
    with_ssh = ssh.uses_ssh(key, git.config_get(repo, "gpg.format"))
    key = key or git.config_get(repo, "user.signingkey")
    signature = (ssh.sign if with_ssh else gpg.sign)(claim_mod.pae(payload), key)
    line = claim_mod.Envelope(payload=payload, sig=signature.sig, keyid=signature.fingerprint)
    added = notes.append(repo, revision.commit, line.line())
    return Withdrawn(revision.commit, signature.fingerprint, w, added)
