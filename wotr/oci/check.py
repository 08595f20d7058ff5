"""``wotr verify --oci REF``: the attached bundles of an image, verified like bundles on disk.

REF is resolved to a manifest digest (a tag by hashing the bytes the registry serves; a digest
is checked against them), the device's mirror settings applied first (the mirror alone is then
used). The wotr attachments are downloaded (bounded, digest-checked) into a private temporary
directory and handed to the offline verification (:func:`wotr.offline.verify`) with the
manifest digest as the one target: the image verifies exactly as a file with that sha256 would,
under every counting rule. For a Helm chart the target is the chart layer's digest, which is
the sha256 of the ``.tgz`` that ``helm package`` wrote, so claims made for that file count.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .. import offline
from .._record import record
from ..bundle import MAX_BUNDLE_BYTES, shown
from ..commands.common import echo, installer_chain, policy_for
from ..errors import EXIT_NOT_VERIFIED, EXIT_OK
from . import ref as ref_mod
from . import referrers
from .registry import Client, Manifest, RegistryError

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
HELM_PROV = "application/vnd.cncf.helm.chart.provenance.v1.prov"


@record
class Subject:
    digest: str  # what the claims must name: the manifest, or a Helm chart's layer
    what: str  # for the report


def subject_of(manifest: Manifest) -> Subject:
    """The digest to verify for ``manifest``: its own, or its chart layer's for a Helm chart.

    A Helm chart is a manifest with Helm's config type whose layers are exactly one chart
    (and at most a provenance file): then the chart layer is all a user of it gets, and its
    digest is the ``.tgz``'s. Anything else in it (say an image layer smuggled beside a signed
    chart) and the manifest's own digest must reach the quorum.
    """
    doc = manifest.doc()
    config = referrers.descriptor(doc.get("config"))
    layers = doc.get("layers")
    found = [referrers.descriptor(x) for x in (layers if isinstance(layers, list) else [])]
    if config is not None and config.media_type == HELM_CONFIG and None not in found:
        charts = [d for d in found if d is not None and d.media_type == HELM_CHART]
        others = [d for d in found if d is not None and d.media_type not in (HELM_CHART, HELM_PROV)]
        if len(charts) == 1 and not others and len(found) <= 2:
            return Subject(charts[0].digest, "Helm chart (the .tgz)")
    return Subject(manifest.digest, "manifest")


def client_for(r: ref_mod.Ref, settings: ref_mod.Settings, plain_http: bool) -> Client:
    return Client(r.host, plain_http=plain_http or r.host in settings.plain_http)


def run(
    *,
    reference: str,
    policy_path: str | None,
    threshold: int | None,
    rev: str | None,
    strict: bool,
    as_json: bool,
    plain_http: bool,
    bundle_files: Sequence[Path] = (),
) -> int:
    """The body of ``verify --oci``; the exit code."""
    named = ref_mod.parse(reference)
    settings = ref_mod.settings()
    pol = policy_for(policy_path, None, threshold)  # a bad policy fails before any request
    # an installer that pinned its policy follows the chain the attachments carry (DESIGN §7)
    chain = installer_chain(pol, os.environ.get("WOTR_BUNDLES") or None, threshold)
    where = settings.mirrored(named)
    if where != named:
        echo(f"using mirror {where.host}/{where.repo} for {named.host}/{named.repo}", err=True)
    client = client_for(where, settings, plain_http)
    manifest = client.get_manifest(where.repo, where.reference)
    if named.digest is None:
        echo(f"resolved {shown(str(named))} to {manifest.digest}", err=True)
    subject = subject_of(manifest)
    if subject.digest != manifest.digest:
        echo(f"{subject.what}: verifying its digest {subject.digest}", err=True)
    listing = referrers.find(client, where.repo, manifest.digest)
    skipped: list[tuple[str, str]] = []
    if listing.left_out:
        skipped.append(
            (
                f"{where.host}/{where.repo}",
                f"{listing.left_out} more wotr attachments not read (at most "
                f"{referrers.MAX_ATTACHMENTS} per image; flooded?)",
            )
        )
    with tempfile.TemporaryDirectory(prefix="wotr-oci-") as tmp:
        labels: dict[str, str] = {}
        budget = offline.MAX_BUNDLE_BYTES_PER_RUN  # what the offline verify would read at most
        for i, listed in enumerate(listing.attachments):
            label = f"{where.host}/{where.repo}@{listed.digest}"
            try:
                att = referrers.read_attachment(client, where.repo, listed, manifest.digest)
                if att.bundle.size > budget:
                    skipped.append((label, "not read: the bundles before it used the byte budget"))
                    continue
                budget -= att.bundle.size
                path = Path(tmp) / f"{i}.wotr"
                with open(path, "wb") as f:
                    client.get_blob(
                        where.repo, att.bundle.digest, att.bundle.size, MAX_BUNDLE_BYTES, sink=f
                    )
            except RegistryError as exc:
                skipped.append((label, str(exc)))
                continue
            labels[str(path)] = label
        if not labels and not bundle_files:
            return _none_attached(named, manifest.digest, skipped, as_json, pol)
        sources = offline.Sources(
            bundles=(*map(Path, labels), *bundle_files), directory=None, sidecars=False
        )
        outcome = offline.verify(
            pol, digests=(subject.digest,), sources=sources, rev=rev, strict=strict, chain=chain
        )
    outcome = _relabel(outcome, labels, skipped)
    if as_json:
        doc = json.loads(offline.to_json(outcome))
        doc["oci"] = {
            "reference": str(named),
            "registry": f"{where.host}/{where.repo}",
            "manifest": manifest.digest,
            "subject": subject.digest,
            "attachments": len(listing.attachments),
        }
        echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        echo(offline.text(outcome))
    return EXIT_OK if outcome.verified else EXIT_NOT_VERIFIED


def _relabel(
    outcome: offline.Outcome, labels: dict[str, str], skipped: list[tuple[str, str]]
) -> offline.Outcome:
    """The outcome with temporary file names replaced by where each bundle came from."""

    def name(p: str) -> str:
        return labels.get(p, p)

    groups = tuple(
        offline.Group(g.commit, g.tag, tuple(map(name, g.paths)), g.report) for g in outcome.groups
    )
    broken = tuple((name(p), why) for p, why in outcome.broken) + tuple(skipped)
    looked = tuple(name(p) for p in outcome.looked)
    return offline.Outcome(
        outcome.verified,
        outcome.policy,
        groups,
        outcome.unmatched,
        broken,
        outcome.reason,
        looked,
        tuple((t, name(p)) for t, p in outcome.capped),
        tuple(shown_notes(outcome.chain_notes, labels)),
    )


def shown_notes(notes: Sequence[str], labels: dict[str, str]) -> list[str]:
    """Chain notes with temporary file names replaced by where each bundle came from."""
    out = []
    for note in notes:
        for path, label in labels.items():
            note = note.replace(path, label)
        out.append(note)
    return out


def _none_attached(
    named: ref_mod.Ref,
    digest: str,
    skipped: list[tuple[str, str]],
    as_json: bool,
    pol: object,
) -> int:
    reason = f"no claims attached to {named.host}/{named.repo}@{digest}"
    hint = (
        "the vendor attaches them with 'git wotr oci attach REF'; a mirror must be made with "
        "'wotr oci copy SRC DST', which copies them with the image (or pass --bundle FILE)"
    )
    if as_json:
        echo(
            json.dumps(
                {
                    "verified": False,
                    "commit": None,
                    "tag": None,
                    "threshold": getattr(pol, "threshold", None),
                    "reason": reason,
                    "hint": hint,
                    "policy": str(getattr(pol, "path", "")),
                    "artifacts": [],
                    "dissent": [],
                    "conflicts": [],
                    "rejected": [],
                    "skipped_bundles": [{"path": shown(p), "reason": shown(w)} for p, w in skipped],
                    "oci": {"reference": str(named), "manifest": digest},
                },
                indent=2,
            )
        )
    else:
        for path, why in skipped:
            echo(f"  skipped {shown(path)}: {shown(why)}")
        echo(f"NOT VERIFIED: {reason}")
        echo(f"hint: {hint}", err=True)
    return EXIT_NOT_VERIFIED


__all__ = ["run", "subject_of"]
