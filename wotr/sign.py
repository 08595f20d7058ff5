"""``sign``: hash artifacts, build one deterministic claim, sign it, check it, append it.

Everything that can fail is done before the note is touched; the note is then changed by one
compare-and-swap of refs/notes/wotr, so a failed sign leaves the ref exactly as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from . import claim as claim_mod
from . import git, gpg, hashing, notes, ssh
from ._record import record
from ._threads import started
from .errors import BadInput, SignError

DEFAULT_ROLE = "author"


@record
class Signed:
    commit: str
    tag: str | None
    role: str
    fingerprint: str
    artifacts: tuple[claim_mod.Subject, ...]
    line: bytes
    added: bool  # False when the identical envelope was already in the note
    untagged_hint: tuple[str, ...] = ()


def _names(paths: Sequence[Path]) -> list[str]:
    names = []
    for path in paths:
        try:
            names.append(claim_mod.check_artifact_name(path.name))
        except claim_mod.ClaimError as exc:
            raise BadInput(f"artifact {path}: {exc}") from exc
    seen: set[str] = set()
    dup = {n for n in names if n in seen or seen.add(n)}  # type: ignore[func-returns-value]
    if dup:
        raise BadInput(
            f"two artifacts share the name {sorted(dup)[0]!r}",
            "a claim names artifacts by file name; sign them in separate claims",
        )
    return names


def resolve_role(repo: git.Repo, role: str | None, config: git.Config | None = None) -> str:
    if not role:
        role = (git.config_all(repo) if config is None else config).value("wotr.role")
    chosen = role or DEFAULT_ROLE
    try:
        return claim_mod.check_role(chosen)
    except claim_mod.ClaimError as exc:
        raise BadInput(str(exc)) from exc


def _refuse_dirty(dirty: list[str]) -> None:
    if dirty:
        raise SignError(
            f"the working tree has uncommitted changes to tracked files ({dirty[0]}"
            f"{' and more' if len(dirty) > 1 else ''}): the artifacts may not be built "
            "from the commit you would sign",
            "commit or stash them, or pass --allow-dirty if you know the build ignores them",
        )


def sign(
    repo: git.Repo,
    artifacts: Sequence[Path],
    *,
    rev: str = "HEAD",
    role: str | None = None,
    key: str | None = None,
    allow_dirty: bool = False,
) -> Signed:
    revision = git.resolve(repo, rev)
    head = revision.commit if rev == "HEAD" else git.head_commit(repo)
    # The git processes sign needs run while the artifacts are hashed (they do not depend on
    # each other); errors still come out in the order of a plain run: dirty tree first.
    dirty = started(git.is_dirty, repo) if not allow_dirty and revision.commit == head else None
    config_of = started(git.config_all, repo)  # one git process for every value sign reads
    tags = started(git.tags_at, repo, revision.commit) if revision.tag is None else None
    try:
        names = _names(artifacts) if artifacts else []
        digests = hashing.sha256_files(artifacts)
    except BadInput:
        if dirty is not None:
            _refuse_dirty(dirty())
        raise
    if dirty is not None:
        _refuse_dirty(dirty())
    config = config_of()
    chosen_role = resolve_role(repo, role, config)
    if not artifacts:
        raise BadInput("no artifacts to sign", "name the files you built, e.g. dist/*")
    claim = claim_mod.Claim.build(
        commit=revision.commit,
        tree=revision.tree,
        role=chosen_role,
        artifacts=dict(zip(names, digests, strict=True)),
        ref=revision.tag,
    )
    payload = claim.payload()
    with_ssh = ssh.uses_ssh(key, config.value("gpg.format"))  # DESIGN §9: as git decides
    key = key or config.value("user.signingkey")
    signature = (ssh.sign if with_ssh else gpg.sign)(claim_mod.pae(payload), key)
    envelope = claim_mod.Envelope(payload=payload, sig=signature.sig, keyid=signature.fingerprint)
    line = envelope.line()
    added = notes.append(repo, revision.commit, line, config)
    hint = tuple(tags()) if tags is not None else ()
    return Signed(
        revision.commit,
        revision.tag,
        chosen_role,
        signature.fingerprint,
        claim.subjects,
        line,
        added,
        hint,
    )
