"""``git wotr oci sign``: a claim over image digests, exactly like a claim over files.

Where the digest comes from: a registry reference (the manifest the registry serves, hashed
here; by digest it must match), an OCI image layout directory (``index.json`` names the
manifest, whose blob is hashed and must match), or ``--digest sha256:HEX NAME`` given by the
signer. The claim's subject is ``NAME`` with that digest; NAME defaults to the repository's
last component and the tag (``myapp:1.2.0``). The claim is signed and stored as ``sign`` does:
one line in the commit's note, nothing changed when anything fails.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from .. import claim as claim_mod
from .. import git, gpg, notes
from .._record import record
from ..bundle import MAX_COMMIT_OBJECT_BYTES, read_regular, shown
from ..errors import BadInput
from ..policy import Policy
from ..sign import Signed, resolve_role, uncounted
from . import ref as ref_mod
from .registry import Client

MAX_LAYOUT_INDEX_BYTES = 4 * 1024 * 1024
REF_NAME = "org.opencontainers.image.ref.name"


@record
class Named:
    name: str
    digest: str  # sha256:HEX
    source: str


def from_registry(reference: str, *, plain_http: bool = False, name: str | None = None) -> Named:
    r = ref_mod.parse(reference)
    client = Client(r.host, plain_http=plain_http or r.host in ref_mod.settings().plain_http)
    manifest = client.get_manifest(r.repo, r.reference)
    return Named(name or r.default_name(), manifest.digest, str(r.with_digest(manifest.digest)))


def from_layout(spec: str, *, name: str | None = None) -> Named:
    """``DIR`` or ``DIR:TAG`` (TAG = the ``org.opencontainers.image.ref.name`` annotation)."""
    directory, tag = Path(spec), None
    if not (directory / "index.json").exists() and ":" in spec:
        head, _, tag = spec.rpartition(":")
        directory = Path(head)
    where = shown(str(directory))
    try:
        doc = json.loads(read_regular(directory / "index.json", MAX_LAYOUT_INDEX_BYTES))
    except (OSError, ValueError, RecursionError) as exc:
        raise BadInput(
            f"{where} is not an OCI image layout: cannot read index.json ({exc})",
            "name a directory written by e.g. 'docker buildx build --output type=oci,tar=false'",
        ) from exc
    items = doc.get("manifests") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise BadInput(f"{where}/index.json has no manifests list")
    entries = [i for i in items if isinstance(i, dict)]
    if tag is not None:
        entries = [i for i in entries if (i.get("annotations") or {}).get(REF_NAME) == tag]
    if len(entries) != 1:
        raise BadInput(
            f"{where}/index.json names {len(entries)} manifests{f' tagged {tag}' if tag else ''}",
            "pick one with DIR:TAG (the org.opencontainers.image.ref.name annotation)",
        )
    digest = entries[0].get("digest")
    if not isinstance(digest, str) or not ref_mod.DIGEST.fullmatch(digest):
        raise BadInput(f"{where}/index.json: the manifest digest is not sha256:<hex>")
    blob = directory / "blobs" / "sha256" / digest.removeprefix("sha256:")
    try:
        data = read_regular(blob, MAX_COMMIT_OBJECT_BYTES)
    except OSError as exc:
        raise BadInput(f"cannot read {shown(str(blob))}: {exc.strerror or exc}") from exc
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise BadInput(f"{shown(str(blob))} does not hash to {digest} (a damaged layout)")
    tag = tag or (entries[0].get("annotations") or {}).get(REF_NAME)
    default = (
        f"{directory.resolve().name}:{tag}" if isinstance(tag, str) else directory.resolve().name
    )
    return Named(name or default, digest, f"{where} ({digest})")


def from_digest(digest: str, name: str) -> Named:
    if not ref_mod.DIGEST.fullmatch(digest):
        raise BadInput(f"--digest {digest!r} is not sha256:<64 lowercase hex digits>")
    return Named(name, digest, digest)


def sign(
    repo: git.Repo,
    images: Sequence[Named],
    *,
    rev: str = "HEAD",
    role: str | None = None,
    key: str | None = None,
    policy: Policy | None = None,
) -> Signed:
    """One claim naming every image of ``images``, signed and appended to the commit's note.

    With ``policy``, a claim it would not count is refused before the note is touched, as
    :func:`wotr.sign.sign` does."""
    if not images:
        raise BadInput("no image to sign", "name REF, --layout DIR or --digest sha256:HEX NAME")
    artifacts: dict[str, str] = {}
    for image in images:
        try:
            claim_mod.check_artifact_name(image.name)
        except claim_mod.ClaimError as exc:
            raise BadInput(f"{image.source}: {exc}", "choose another with --name") from exc
        if image.name in artifacts:
            raise BadInput(f"two images share the name {image.name!r}", "sign them separately")
        artifacts[image.name] = image.digest.removeprefix("sha256:")
    revision = git.resolve(repo, rev)
    config = git.config_all(repo)
    chosen = resolve_role(repo, role, config)
    claim = claim_mod.Claim.build(
        commit=revision.commit,
        tree=revision.tree,
        role=chosen,
        artifacts=artifacts,
        ref=revision.tag,
    )
    payload = claim.payload()
    signature = gpg.sign(claim_mod.pae(payload), key or config.value("user.signingkey"))
    line = claim_mod.Envelope(
        payload=payload, sig=signature.sig, keyid=signature.fingerprint
    ).line()
    if policy is not None:
        problem = uncounted(policy, signature.fingerprint, chosen)
        if problem is not None:
            raise problem
    added = notes.append(repo, revision.commit, line, config)
    return Signed(
        revision.commit, revision.tag, chosen, signature.fingerprint, claim.subjects, line, added
    )
