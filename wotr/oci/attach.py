"""``git wotr oci attach``: push the commit's bundle to a registry, referring to an image."""

from __future__ import annotations

from typing import Any

from .. import bundle as bundle_mod
from .._record import record
from . import ref as ref_mod
from . import referrers
from .check import subject_of
from .registry import Client, digest_of


@record
class Attached:
    reference: str
    subject: str  # the image's manifest digest
    attachment: str  # the referrer manifest's digest
    via_api: bool
    claims: int
    names_image: bool  # some claim in the bundle names the digest verify --oci will check


def attach(repo: Any, rev: str, reference: str, *, plain_http: bool = False) -> Attached:
    """Export the claims on ``rev`` and attach them to the manifest ``reference`` names.

    Nothing in git changes. The bundle is what ``git wotr export --rev REV`` writes; pushing it
    twice pushes the same bytes (the registry keeps one attachment).
    """
    named = ref_mod.parse(reference)
    exported = bundle_mod.export(repo, rev)  # no claims: an error before any request
    client = Client(
        named.host, plain_http=plain_http or named.host in ref_mod.settings().plain_http
    )
    subject = client.get_manifest(named.repo, named.reference)
    annotations = {"dev.wotr.commit": exported.bundle.commit}
    if exported.bundle.tag:
        annotations["dev.wotr.tag"] = exported.bundle.tag
    manifest = referrers.attachment_manifest(subject, exported.data, annotations)
    blobs = {digest_of(referrers.EMPTY): referrers.EMPTY, digest_of(exported.data): exported.data}
    pushed = referrers.push(client, named.repo, subject.digest, manifest, blobs)
    wanted = subject_of(subject).digest.removeprefix("sha256:")
    return Attached(
        str(named.with_digest(subject.digest)),
        subject.digest,
        pushed.digest,
        pushed.via_api,
        len(exported.bundle.claims),
        wanted in exported.bundle.digests(),
    )
