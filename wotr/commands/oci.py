"""The bodies of ``git wotr oci sign|attach|copy`` (the logic lives in :mod:`wotr.oci`)."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import EXIT_OK
from .common import check_rev, echo, open_repo
from .sign import policy_to_check, warn_unchecked


def run_oci_sign(
    *,
    rev: str,
    role: str | None,
    key: str | None,
    refs: Sequence[str],
    layouts: Sequence[str],
    digests: Sequence[tuple[str, str]],
    name: str | None,
    push_remote: str | None,
    plain_http: bool,
    policy_path: str | None = None,
    allow_uncounted: bool = False,
) -> int:
    from ..errors import BadInput
    from ..oci import sign as oci_sign

    check_rev(rev)
    if name and len(refs) + len(layouts) != 1:
        raise BadInput("--name names one image: give exactly one REF or --layout")
    repo = open_repo()  # outside a repository: fail before any request
    pol, no_policy = (None, "") if allow_uncounted else policy_to_check(policy_path, repo)
    images = [oci_sign.from_registry(r, plain_http=plain_http, name=name) for r in refs]
    images += [oci_sign.from_layout(d, name=name) for d in layouts]
    images += [oci_sign.from_digest(d, n) for d, n in digests]
    signed = oci_sign.sign(repo, images, rev=rev, role=role, key=key, policy=pol)
    if no_policy:
        warn_unchecked(no_policy)
    where = signed.tag.removeprefix("refs/tags/") if signed.tag else signed.commit[:12]
    verb = "signed" if signed.added else "already signed (identical claim present)"
    lines = [f"{verb}: {where} as {signed.role} with key {signed.fingerprint}"]
    lines += [f"  {image.name}  {image.digest}  ({image.source})" for image in images]
    echo("\n".join(lines))
    if push_remote is not None:
        from .. import sync

        remote = push_remote or "origin"
        sync.push(repo, remote)
        echo(f"pushed claims to {remote}")
    return EXIT_OK


def run_oci_attach(*, rev: str, reference: str, plain_http: bool) -> int:
    from ..oci import attach

    check_rev(rev)
    done = attach.attach(open_repo(), rev, reference, plain_http=plain_http)
    how = "referrers API" if done.via_api else "referrers tag schema"
    echo(f"attached {done.claims} claim(s) to {done.reference} as {done.attachment} ({how})")
    if not done.names_image:
        echo(
            f"note: no claim on {rev} names {done.subject}; 'wotr verify --oci' needs one "
            "(sign it with 'git wotr oci sign')",
            err=True,
        )
    return EXIT_OK


def run_oci_copy(*, source: str, target: str, plain_http: bool) -> int:
    from ..oci import copy

    done = copy.copy(source, target, plain_http=plain_http)
    echo(
        f"copied {done.source} to {done.target}: {done.manifests} manifest(s), "
        f"{done.blobs} blob(s) uploaded, {done.attachments} wotr attachment(s)"
    )
    if not done.attachments:
        echo(f"note: {done.source} has no wotr attachments to copy", err=True)
    return EXIT_OK
