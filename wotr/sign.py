"""``sign``: hash artifacts, build one deterministic claim, sign it, check it, append it.

Everything that can fail is done before the note is touched; the note is then changed by one
compare-and-swap of refs/notes/wotr, so a failed sign leaves the ref exactly as it was.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from . import claim as claim_mod
from . import git, gpg, hashing, notes, ssh
from ._record import record
from ._threads import started
from .errors import BadInput, SignError
from .policy import Policy

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
    skipped: tuple[Path, ...] = ()  # wotr's own files, left out (``skip_own``)


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


# What every file wotr writes for itself carries: bundles, bundle indexes (wotr/bundle.py).
_OWN_FORMAT = b"https://wotr.dev/bundle"
_SNIFF = 512  # a bundle starts with '{' (json.dumps): most artifacts are told apart in one read


def wotr_file(path: Path) -> bool:
    """Whether ``path`` is one of wotr's own files (an exported bundle, a bundle directory's
    index), by name (``*.wotr``, ``.wotr-index.json``) or by content (a JSON object whose
    ``format`` is a wotr bundle format), whatever it is called. Signed as an artifact, a bundle
    would become a claimed name that no party can rebuild, and verify without artifact names
    would then fail for everyone. Unreadable: False (hashing reports why)."""
    from .bundle import INDEX_NAME, MAX_BUNDLE_BYTES, SUFFIX

    if path.name.endswith(SUFFIX) or path.name == INDEX_NAME:
        return True
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BUNDLE_BYTES:
            return False  # not a regular file, or larger than any bundle wotr reads
        head = os.read(fd, _SNIFF)
        while head and not head.lstrip() and len(head) <= st.st_size:  # JSON allows blanks
            more = os.read(fd, 1 << 20)
            if not more:
                break
            head += more
        if head.lstrip()[:1] != b"{":
            return False
        data = head + _read_rest(fd, MAX_BUNDLE_BYTES)
    except OSError:
        return False
    finally:
        os.close(fd)
    if _OWN_FORMAT not in data:
        return False
    import json

    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return False
    form = doc.get("format") if isinstance(doc, dict) else None
    return isinstance(form, str) and form.startswith(_OWN_FORMAT.decode())


def _read_rest(fd: int, limit: int) -> bytes:
    chunks = []
    while limit > 0 and (chunk := os.read(fd, min(limit, 1 << 20))):
        chunks.append(chunk)
        limit -= len(chunk)
    return b"".join(chunks)


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


def uncounted(policy: Policy, fingerprint: str, role: str) -> SignError | None:
    """Why ``policy`` would not count a claim signed by ``fingerprint`` in ``role`` (DESIGN §6
    rules 2 and 5), as the error to raise; None when it would count."""
    signer = policy.signer_for(fingerprint)
    force = "or pass --allow-uncounted to sign a claim that does not count"
    if signer is None:
        return SignError(
            f"key {fingerprint} is not listed in the policy {policy.path}: a claim it signs "
            "would not count, and claims cannot be taken back",
            f"sign with a key the policy lists (--key), add this key to the policy, {force}",
        )
    if not signer.may_claim(role):
        allowed = ", ".join(sorted(signer.roles or ()))
        return SignError(
            f"signer {signer.name} may not claim the role {role!r} in the policy {policy.path} "
            f"(allowed: {allowed}): the claim would not count, and claims cannot be taken back",
            f"pass --role {sorted(signer.roles or ())[0]} (or set git config wotr.role), {force}"
            if signer.roles
            else force,
        )
    return None


def sign(
    repo: git.Repo,
    artifacts: Sequence[Path],
    *,
    rev: str = "HEAD",
    role: str | None = None,
    key: str | None = None,
    allow_dirty: bool = False,
    policy: Policy | None = None,
    skip_own: bool = False,
    revision: git.Revision | None = None,
    digests: Sequence[str] | None = None,
    before_append: Callable[[], None] | None = None,
) -> Signed:
    """Sign one claim over ``artifacts`` at ``rev`` and add it to the note.

    With ``policy``, a claim that policy would not count (a key it does not list, a role the
    signer may not claim) is refused before the note is touched; None: not checked. wotr's own
    files (:func:`wotr_file`) are never signed: refused, or with ``skip_own`` left out (listed
    in ``Signed.skipped``).

    ``build --sign`` passes what it already resolved and reported: ``revision`` (used instead
    of resolving ``rev`` again), ``digests`` (signed instead of hashing the files again) and
    ``before_append`` (raises to keep the note as it was, e.g. when a kept file changed).
    """
    revision = revision or git.resolve(repo, rev)
    head = revision.commit if rev == "HEAD" else git.head_commit(repo)
    # The git processes sign needs run while the artifacts are hashed (they do not depend on
    # each other); errors still come out in the order of a plain run: dirty tree first.
    dirty = started(git.is_dirty, repo) if not allow_dirty and revision.commit == head else None
    config_of = started(git.config_all, repo)  # one git process for every value sign reads
    tags = started(git.tags_at, repo, revision.commit) if revision.tag is None else None
    own = tuple(p for p in artifacts if wotr_file(p))
    if own and not skip_own:
        raise BadInput(
            f"{own[0]} is a wotr bundle, not an artifact: it cannot be signed",
            "name only the files you built",
        )
    if digests is not None:
        digests = [d for p, d in zip(artifacts, digests, strict=True) if p not in own]
    artifacts = [p for p in artifacts if p not in own]
    try:
        names = _names(artifacts) if artifacts else []
        if digests is None:
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
        raise BadInput(
            "no artifacts to sign" + (" (only wotr bundles were named)" if own else ""),
            "name the files you built, e.g. dist/*",
        )
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
    if policy is not None:
        problem = uncounted(policy, signature.fingerprint, chosen_role)
        if problem is not None:
            raise problem
    if before_append is not None:
        before_append()
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
        own,
    )
