"""wotr attachments: the referrer manifests that carry a bundle, found and pushed.

An attachment is an OCI image manifest with ``artifactType`` :data:`ARTIFACT_TYPE`, the empty
config, one layer (the bundle, media type :data:`ARTIFACT_TYPE`) and ``subject`` = the image's
manifest. It is found through the referrers API (``GET /v2/R/referrers/D``) and through the
referrers tag schema (an image index tagged ``sha256-<hex>``), whichever the registry has;
both are read and merged, since a registry's word about what it holds is untrusted anyway:
what a listing leaves out can only make a verification fail, what it adds is checked in full.
A listing is bounded: at most :data:`MAX_ATTACHMENTS` wotr attachments are read per image.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .._record import record
from ..errors import BadInput
from . import registry
from .registry import Client, IntegrityError, Manifest, NotFound

ARTIFACT_TYPE = "application/vnd.wotr.bundle.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
MAX_INDEX_BYTES = registry.MAX_MANIFEST_BYTES
MAX_DESCRIPTORS = 10_000  # parsed per listing; the rest ignored
MAX_ATTACHMENTS = 64  # wotr attachments read per image; the rest reported, not read
MAX_PAGES = 4
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_NEXT = re.compile(r"<([^>]+)>\s*;\s*rel=\"?next\"?")


@record
class Descriptor:
    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest}
        out["size"] = self.size
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out


def descriptor(obj: Any) -> Descriptor | None:
    """A descriptor from untrusted JSON, or None when anything about it is off."""
    if not isinstance(obj, dict):
        return None
    media, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
    art = obj.get("artifactType")
    if not (
        isinstance(media, str)
        and len(media) < 256
        and isinstance(digest, str)
        and _DIGEST.fullmatch(digest)
        and type(size) is int
        and 0 <= size < 2**53
        and (art is None or (isinstance(art, str) and len(art) < 256))
    ):
        return None
    return Descriptor(media, digest, size, art)


def tag_for(digest: str) -> str:
    """The referrers tag schema: ``sha256:HEX`` -> ``sha256-HEX``."""
    return digest.replace(":", "-", 1)


def _descriptors(doc: Any) -> list[Descriptor]:
    items = doc.get("manifests") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return []
    out = []
    for item in items[:MAX_DESCRIPTORS]:
        d = descriptor(item)
        if d is not None:
            out.append(d)
    return out


@record
class Listing:
    attachments: tuple[Descriptor, ...]  # wotr ones, at most MAX_ATTACHMENTS
    left_out: int  # wotr attachments beyond the bound
    api: bool  # the registry answered the referrers API


def _from_api(client: Client, repo: str, digest: str) -> list[Descriptor] | None:
    path = f"/v2/{repo}/referrers/{digest}?artifactType={ARTIFACT_TYPE.replace('+', '%2B')}"
    found: list[Descriptor] = []
    for page in range(MAX_PAGES):
        status, doc, link = client.get_json(path, repo, MAX_INDEX_BYTES, "the referrers list")
        if status == 404:
            return None if page == 0 else found
        found += _descriptors(doc)
        match = _NEXT.search(link)
        if not match or len(found) >= MAX_DESCRIPTORS:
            break
        path = match.group(1)  # Client.request refuses anything off the registry
    return found


def _from_tag(client: Client, repo: str, digest: str) -> list[Descriptor]:
    try:
        index = client.get_manifest(repo, tag_for(digest))
    except NotFound:
        return []
    return _descriptors(index.doc())


def find(client: Client, repo: str, digest: str) -> Listing:
    """The wotr attachments of the manifest ``digest`` in ``repo`` (API and tag schema)."""
    api = _from_api(client, repo, digest)
    tagged = _from_tag(client, repo, digest)
    seen: dict[str, Descriptor] = {}
    for d in (api or []) + tagged:
        if d.artifact_type == ARTIFACT_TYPE and d.digest not in seen:
            seen[d.digest] = d
    wotr = list(seen.values())
    return Listing(
        tuple(wotr[:MAX_ATTACHMENTS]), max(0, len(wotr) - MAX_ATTACHMENTS), api is not None
    )


@record
class Attachment:
    manifest: Manifest
    bundle: Descriptor


def read_attachment(client: Client, repo: str, listed: Descriptor, subject: str) -> Attachment:
    """The referrer manifest ``listed`` names, checked: digest, type, subject, one bundle layer."""
    m = client.get_manifest(repo, listed.digest)
    doc = m.doc()
    subj = descriptor(doc.get("subject"))
    if subj is None or subj.digest != subject:
        raise IntegrityError(f"attachment {listed.digest} does not refer to {subject}")
    if doc.get("artifactType") != ARTIFACT_TYPE:
        raise IntegrityError(f"attachment {listed.digest} is not a wotr bundle")
    layers = doc.get("layers")
    bundles = [d for d in map(descriptor, layers if isinstance(layers, list) else []) if d]
    bundles = [d for d in bundles if d.media_type == ARTIFACT_TYPE]
    if len(bundles) != 1:
        raise IntegrityError(f"attachment {listed.digest} does not hold exactly one bundle")
    return Attachment(m, bundles[0])


# --- pushing ------------------------------------------------------------------------------


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")


def attachment_manifest(subject: Manifest, bundle: bytes, annotations: Mapping[str, str]) -> bytes:
    """The referrer manifest of ``bundle`` for ``subject``: deterministic bytes."""
    empty = Descriptor(EMPTY_TYPE, registry.digest_of(EMPTY), len(EMPTY))
    layer = Descriptor(ARTIFACT_TYPE, registry.digest_of(bundle), len(bundle))
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": registry.OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {**empty.to_json(), "data": "e30="},
        "layers": [layer.to_json()],
        "subject": Descriptor(subject.media_type, subject.digest, len(subject.data)).to_json(),
    }
    if annotations:
        doc["annotations"] = dict(annotations)
    return _canonical(doc)


def add_to_tag_index(client: Client, repo: str, subject: str, entry: Descriptor) -> bool:
    """Add ``entry`` to the ``sha256-<hex>`` index of ``subject``; False if it was there.

    Read, add, write: two attachers at the same moment can lose one entry (the registry has no
    compare-and-swap); running ``attach`` again puts it back.
    """
    tag = tag_for(subject)
    try:
        current = client.get_manifest(repo, tag)
        doc = current.doc()
        items = doc.get("manifests")
        if doc.get("mediaType", registry.OCI_INDEX) != registry.OCI_INDEX or not isinstance(
            items, list
        ):
            raise BadInput(
                f"{repo}:{tag} exists but is not an image index of referrers",
                "remove that tag, or push to a registry with the referrers API",
            )
    except NotFound:
        doc, items = {"schemaVersion": 2, "mediaType": registry.OCI_INDEX, "manifests": []}, []
    if any(isinstance(i, dict) and i.get("digest") == entry.digest for i in items):
        return False
    doc = {**doc, "manifests": [*items, entry.to_json()]}
    data = _canonical(doc)
    if len(data) > MAX_INDEX_BYTES:
        raise BadInput(f"the referrers index {repo}:{tag} would be over {MAX_INDEX_BYTES} bytes")
    client.put_manifest(repo, tag, data, registry.OCI_INDEX)
    return True


@record
class Pushed:
    digest: str
    via_api: bool  # the registry indexed it itself (OCI-Subject); else the tag schema was used


def push(
    client: Client, repo: str, subject: str, manifest: bytes, blobs: Mapping[str, bytes]
) -> Pushed:
    """Push an attachment (its blobs, then its manifest by digest), and list it for ``subject``."""
    for digest, data in blobs.items():
        client.put_blob(repo, digest, len(data), data)
    digest = registry.digest_of(manifest)
    via_api = client.put_manifest(repo, digest, manifest, registry.OCI_MANIFEST)
    if not via_api:
        entry = Descriptor(registry.OCI_MANIFEST, digest, len(manifest), ARTIFACT_TYPE)
        add_to_tag_index(client, repo, subject, entry)
    return Pushed(digest, via_api)
