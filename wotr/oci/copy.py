"""``wotr oci copy SRC DST``: an image (or index with its children) and its wotr attachments.

Every manifest and blob is digest-checked on the way, manifests are copied byte for byte (so
the digest at DST is the digest at SRC), blobs stream through a temporary file (memory stays
small whatever the layer size). Only wotr attachments of the top-level manifest are copied
(other referrers, such as cosign signatures, are left to their own tools).
"""

from __future__ import annotations

import tempfile
from typing import Any

from .._record import record
from ..errors import BadInput
from . import ref as ref_mod
from . import referrers, registry
from .registry import Client, Manifest

MAX_CHILDREN = 1024  # manifests of one index
MAX_DEPTH = 2  # an index of indexes, no deeper


@record
class Copied:
    source: str
    target: str
    digest: str
    manifests: int
    blobs: int
    attachments: int
    via_api: bool


class _Copier:
    def __init__(self, src: Client, src_repo: str, dst: Client, dst_repo: str) -> None:
        self.src, self.src_repo, self.dst, self.dst_repo = src, src_repo, dst, dst_repo
        self.blobs = 0
        self.manifests = 0

    def blob(self, d: referrers.Descriptor) -> None:
        if self.dst.exists(self.dst_repo, "blobs", d.digest):
            return
        with tempfile.TemporaryFile(prefix="wotr-blob-") as f:
            self.src.get_blob(self.src_repo, d.digest, d.size, d.size, sink=f)
            self.dst.put_blob(self.dst_repo, d.digest, d.size, f)
        self.blobs += 1

    def content(self, m: Manifest, depth: int = 0) -> None:
        """Everything ``m`` refers to (not ``m`` itself): blobs, or child manifests."""
        doc = m.doc()
        if m.media_type in registry.INDEX_TYPES or "manifests" in doc:
            if depth >= MAX_DEPTH:
                raise BadInput(f"{m.digest}: indexes nested deeper than {MAX_DEPTH} levels")
            children = doc.get("manifests")
            if not isinstance(children, list) or len(children) > MAX_CHILDREN:
                raise registry.IntegrityError(f"index {m.digest} has no valid manifest list")
            for item in children:
                d = referrers.descriptor(item)
                if d is None:
                    raise registry.IntegrityError(f"index {m.digest} holds a malformed descriptor")
                child = self.src.get_manifest(self.src_repo, d.digest)
                self.content(child, depth + 1)
                self.dst.put_manifest(self.dst_repo, child.digest, child.data, child.media_type)
                self.manifests += 1
            return
        layers = doc.get("layers")
        items = [doc.get("config"), *(layers if isinstance(layers, list) else [])]
        for item in items:
            d = referrers.descriptor(item)
            if d is None:
                raise registry.IntegrityError(f"manifest {m.digest} holds a malformed descriptor")
            self.blob(d)


def copy(source: str, target: str, *, plain_http: bool = False, env: Any = None) -> Copied:
    src = ref_mod.parse(source, what="SRC")
    dst = ref_mod.parse(target, what="DST", need_repo_only=True)
    plain = ref_mod.settings(env).plain_http
    sc = Client(src.host, plain_http=plain_http or src.host in plain)
    dc = Client(dst.host, plain_http=plain_http or dst.host in plain)
    top = sc.get_manifest(src.repo, src.reference)
    if dst.digest and dst.digest != top.digest:
        raise BadInput(f"DST names {dst.digest}, but SRC is {top.digest}")
    copier = _Copier(sc, src.repo, dc, dst.repo)
    copier.content(top)
    tag = dst.tag or src.tag
    dc.put_manifest(dst.repo, tag or top.digest, top.data, top.media_type)
    listing = referrers.find(sc, src.repo, top.digest)
    if listing.left_out:
        raise registry.IntegrityError(
            f"{src} has more than {referrers.MAX_ATTACHMENTS} wotr attachments (flooded?)",
            "copy refuses to pick some of them",
        )
    via_api = True
    for listed in listing.attachments:
        att = referrers.read_attachment(sc, src.repo, listed, top.digest)
        copier.content(att.manifest)
        pushed = dc.put_manifest(
            dst.repo, att.manifest.digest, att.manifest.data, att.manifest.media_type
        )
        if not pushed:
            via_api = False
            entry = referrers.Descriptor(
                att.manifest.media_type,
                att.manifest.digest,
                len(att.manifest.data),
                referrers.ARTIFACT_TYPE,
            )
            referrers.add_to_tag_index(dc, dst.repo, top.digest, entry)
    shown_target = ref_mod.Ref(dst.host, dst.repo, tag, top.digest)
    return Copied(
        str(src),
        str(shown_target),
        top.digest,
        copier.manifests + 1,
        copier.blobs,
        len(listing.attachments),
        via_api,
    )
