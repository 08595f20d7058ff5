"""Thin click layer: options -> one library call -> render -> exit code (DESIGN §2).

Exit codes: 0 ok, 1 not verified, 2 bad input, 3 environment; errors are mapped in
:func:`wotr.commands.common.report_error`. The bodies of the commands live in
:mod:`wotr.commands`, shared with the click-free fast path (:mod:`wotr.entry`, which the console
scripts enter through); each click command here only adapts its options and calls one body,
imported inside the command so that each command pays only for what it uses.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from .commands.common import report_error
from .errors import EXIT_BAD_INPUT, EXIT_NOT_VERIFIED, EXIT_OK

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _repo() -> Any:
    from .commands.common import open_repo

    return open_repo()


def _repo_or_none() -> Any:
    """The repository around the working directory; None outside one (or without git at all)."""
    from .commands.common import repo_or_none

    return repo_or_none()


def _policy(explicit: str | None, repo: Any, threshold: int | None = None) -> Any:
    from .commands.common import policy_for

    return policy_for(explicit, repo, threshold)


def _refuse_help_among_other_arguments(
    command: click.Command, ctx: click.Context, args: list[str]
) -> None:
    """Help (or the version) exits 0 only when it is all the command line says.

    `wotr verify --bundles DIR *` in a folder holding a file named -h must not print help and
    exit 0 (a "yes" to a script); any other word beside -h/--help makes it a usage error (exit 2).
    A file named -h goes after `--`, which ends options for every command.
    """
    if ctx.resilient_parsing:  # shell completion: click prints candidates, never help
        return
    try:
        opts, _, _ = command.make_parser(ctx).parse_args(args=list(args))
    except click.ClickException:
        return  # click reports the same error when it parses for real
    help_option = command.get_help_option(ctx)
    version = [p for p in command.params if p.name == "version"]
    eager = [p for p in (help_option, *version) if p is not None and isinstance(p, click.Option)]
    asked = [p for p in eager if p.name in opts]
    # The parser says whether help was asked for (not, e.g., the value of --rev or an operand
    # after '--'); the raw words say whether anything else was on the line.
    words = {spelling for p in eager for spelling in (*p.opts, *p.secondary_opts)}
    if asked and any(arg not in words for arg in args):
        flag = "/".join(asked[0].opts)
        raise click.UsageError(
            f"{flag} is honoured only alone, and was given with other arguments; "
            f"names that start with '-' go after '--' ('{ctx.command_path} -- -h')",
            ctx,
        )


class _Command(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        _refuse_help_among_other_arguments(self, ctx, args)
        rest = super().parse_args(ctx, args)
        if "rev" in ctx.params and not ctx.resilient_parsing:
            # Every command's --rev; the bodies check it too (the fast path calls them).
            from .commands.common import check_rev

            check_rev(ctx.params["rev"])
        return rest


class _Group(click.Group):
    command_class = _Command
    group_class = type  # subgroups are _Group too

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        _refuse_help_among_other_arguments(self, ctx, args)
        return super().parse_args(ctx, args)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        # After '--' a word is a command name, never an option: click would parse an unknown
        # '-h' again as options (for its error message) and print help with exit 0.
        if args and args[0].startswith("-") and not ctx.resilient_parsing:
            ctx.fail(f"no such command {args[0]!r}")
        return super().resolve_command(ctx, args)


@click.group(cls=_Group, context_settings=_CONTEXT)
@click.version_option(package_name="wotr")
@click.option("--debug", is_flag=True, help="Show a traceback on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """wotr: trust a release only when several independent builders signed the same digest.

    Claims are DSSE-signed in-toto/SLSA statements stored as git notes on refs/notes/wotr.
    """
    ctx.obj = {"debug": debug}


@cli.command(context_settings=_CONTEXT)
@click.option("--rev", default="HEAD", show_default=True, help="Commit or tag that was built.")
@click.option("--role", help="Role of this claim [default: git config wotr.role, else author].")
@click.option(
    "--key",
    help="gpg key, or SSH key (.pub file or key::...) [default: git config user.signingkey "
    "(SSH when gpg.format is ssh), else gpg's default].",
)
@click.option("--allow-dirty", is_flag=True, help="Sign HEAD even with uncommitted changes.")
@click.option(
    "--push",
    "push_remote",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[REMOTE]",
    help="Share the claim right away (default remote: origin).",
)
@click.option(
    "--policy",
    "policy_path",
    metavar="FILE",
    help="Policy the claim must count under [default: the one verify finds].",
)
@click.option(
    "--allow-uncounted",
    is_flag=True,
    help="Sign even a claim the policy would not count (key not listed, role not allowed).",
)
@click.argument("artifacts", nargs=-1, type=click.Path(path_type=Path, dir_okay=True))
def sign(
    rev: str,
    role: str | None,
    key: str | None,
    allow_dirty: bool,
    push_remote: str | None,
    policy_path: str | None,
    allow_uncounted: bool,
    artifacts: tuple[Path, ...],
) -> int:
    """Sign a claim that REV built ARTIFACT... and add it to the commit's note.

    A claim cannot be taken back, so one that the policy (found as verify finds it) would not
    count is refused: a key it does not list, a role the signer may not claim.
    """
    # The body is shared with the click-free fast path, which parses these same options itself
    # (wotr/entry.py: parse_sign); a new option here must be added there, or it goes to click.
    from .commands.sign import run_sign

    return run_sign(
        rev=rev,
        role=role,
        key=key,
        allow_dirty=allow_dirty,
        push_remote=push_remote,
        artifacts=artifacts,
        policy_path=policy_path,
        allow_uncounted=allow_uncounted,
    )


@cli.command(context_settings=_CONTEXT)
@click.option(
    "--rev",
    default=None,
    help="Commit or tag to verify [default: HEAD; with bundles: any commit they hold].",
)
@click.option("--threshold", type=click.IntRange(min=1), help="Override the policy's threshold.")
@click.option("--policy", "policy_path", metavar="FILE", help="Policy file (threshold.toml).")
@click.option("--strict", is_flag=True, help="Also fail when a trusted signer dissents.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--digest",
    "digests",
    multiple=True,
    metavar="sha256:HEX",
    help="Verify a digest instead of a file (repeatable).",
)
@click.option(
    "--bundle",
    "bundle_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Verify against this bundle ('git wotr export'), not notes (repeatable).",
)
@click.option(
    "--bundles",
    "bundle_dir",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Find bundles by digest in DIR [default: $WOTR_BUNDLES, else /var/lib/wotr/bundles].",
)
@click.option(
    "--oci",
    "oci_ref",
    metavar="REF",
    help="Verify an image in a registry (REGISTRY/REPO:TAG or @sha256:…) by its attached claims.",
)
@click.option("--plain-http", is_flag=True, help="With --oci: allow plain HTTP off loopback.")
@click.argument("artifacts", nargs=-1, type=click.Path(path_type=Path, dir_okay=True))
def verify(
    rev: str | None,
    threshold: int | None,
    policy_path: str | None,
    strict: bool,
    as_json: bool,
    digests: tuple[str, ...],
    bundle_files: tuple[Path, ...],
    bundle_dir: Path | None,
    oci_ref: str | None,
    plain_http: bool,
    artifacts: tuple[Path, ...],
) -> int:
    """Exit 0 only if M distinct trusted signers agree on each ARTIFACT at REV.

    In a repository the claims are the notes of REV. With --bundle/--bundles, or outside any
    repository, they come from bundles: --bundle FILE, ARTIFACT.wotr next to each file, and the
    bundles directory searched by digest; the surrounding repository is then not consulted
    (policy: --policy, $WOTR_POLICY, else /etc/wotr/policy.toml). See docs/bundles.md.

    With --oci REF the claims are the bundles attached to the image in its registry (or the
    mirror configured for it), and REF's manifest digest is what must reach the quorum
    (a Helm chart's: its chart layer, the .tgz). See docs/helm-oci.md.
    """
    # The body is shared with the click-free fast path, which parses these same options itself
    # (wotr/entry.py: parse_verify); a new option here must be added there, or it goes to click.
    # --oci is not there: it always comes here (wotr/oci/check.py).
    if oci_ref is not None or plain_http:
        from .errors import BadInput

        if oci_ref is None or artifacts or digests or bundle_dir:
            raise BadInput(
                "--oci REF verifies one image: it takes no ARTIFACT, --digest or --bundles"
                if oci_ref is not None
                else "--plain-http is for --oci REF",
            )
        from .oci import check

        return check.run(
            reference=oci_ref,
            policy_path=policy_path,
            threshold=threshold,
            rev=rev,
            strict=strict,
            as_json=as_json,
            plain_http=plain_http,
            bundle_files=bundle_files,
        )
    from .commands.verify import run_verify

    return run_verify(
        rev=rev,
        threshold=threshold,
        policy_path=policy_path,
        strict=strict,
        as_json=as_json,
        digests=digests,
        bundle_files=bundle_files,
        bundle_dir=bundle_dir,
        artifacts=artifacts,
    )


@cli.command(context_settings=_CONTEXT)
@click.option("--rev", default="HEAD", show_default=True, help="Commit or tag to show.")
@click.option("--policy", "policy_path", metavar="FILE", help="Policy file (threshold.toml).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def show(rev: str, policy_path: str | None, as_json: bool) -> int:
    """List every claim on a commit: who built what, and why a line does not count."""
    from .commands.show import run_show

    return run_show(rev=rev, policy_path=policy_path, as_json=as_json)


@cli.command(context_settings=_CONTEXT)
@click.option("--threshold", type=click.IntRange(min=1), help="Threshold for a new policy.")
def init(threshold: int | None) -> int:
    """Create (or review) threshold.toml, pin it, and set up notes refspecs."""
    from .commands.init import run_init

    return run_init(threshold=threshold)


# --- build (issue 4) ------------------------------------------------------------------------------


@cli.command(
    context_settings={**_CONTEXT, "allow_interspersed_args": False},
    short_help="Rebuild REV in a fresh checkout and compare with the claims on it.",
)
@click.option("--rev", default="HEAD", show_default=True, help="Commit or tag to build.")
@click.option(
    "--artifact",
    "globs",
    multiple=True,
    metavar="GLOB",
    help="Artifact glob, relative to the checkout (repeatable) [default: wotr.toml's].",
)
@click.option("--sign", "do_sign", is_flag=True, help="Sign the result (also when it differs).")
@click.option("--role", help="Role of the claim [default: git config wotr.role, else author].")
@click.option(
    "--key",
    help="gpg key, or SSH key (.pub file or key::...) [default: git config user.signingkey "
    "(SSH when gpg.format is ssh), else gpg's default].",
)
@click.option(
    "--push",
    "push_remote",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[REMOTE]",
    help="Share the claim right away (default remote: origin); implies nothing without --sign.",
)
@click.option(
    "--policy",
    "policy_path",
    metavar="FILE",
    help="Policy to check earlier claims (and the new one, with --sign).",
)
@click.option(
    "--allow-uncounted",
    is_flag=True,
    help="With --sign: sign even a claim the policy would not count.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep the artifacts here [default: .git/wotr/builds/<commit>/].",
)
@click.option(
    "--compare-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Where other parties' artifacts are, for a diffoscope command.",
)
@click.option(
    "--build-root",
    type=click.Path(path_type=Path, file_okay=False),
    help="Parent of the fixed build path [default: /tmp/wotr-build].",
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Stream the build's output even off a terminal."
)
@click.option("-q", "--quiet", is_flag=True, help="On a terminal, show elapsed time, not output.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def build(
    rev: str,
    globs: tuple[str, ...],
    do_sign: bool,
    role: str | None,
    key: str | None,
    push_remote: str | None,
    policy_path: str | None,
    out: Path | None,
    compare_dir: Path | None,
    build_root: Path | None,
    verbose: bool,
    quiet: bool,
    command: tuple[str, ...],
    allow_uncounted: bool,
) -> int:
    """Build REV in a fresh checkout at a fixed path and compare with every claim on it.

    The recipe is '-- COMMAND...' and --artifact, else the [build] table of wotr.toml in
    the commit being built. Exit 0 reproduced (or nothing to compare with), 1 differs from
    an earlier claim, 2 bad recipe or failed build, 3 environment. See docs/build.md.
    """
    from .commands.build import run_build

    return run_build(
        rev=rev,
        globs=globs,
        do_sign=do_sign,
        role=role,
        key=key,
        push_remote=push_remote,
        policy_path=policy_path,
        out=out,
        compare_dir=compare_dir,
        build_root=build_root,
        verbose=verbose,
        quiet=quiet,
        command=command,
        allow_uncounted=allow_uncounted,
    )


# --- export (issue 5) -----------------------------------------------------------------------------


@cli.command(context_settings=_CONTEXT)
@click.option("--rev", default="HEAD", show_default=True, help="Commit or tag to export.")
@click.option(
    "-o",
    "--output",
    default="-",
    metavar="FILE",
    help="Write the bundle to FILE, e.g. app.tar.gz.wotr [default: stdout].",
)
@click.option(
    "--no-policy-chain",
    is_flag=True,
    help="Leave the policy chain out: a format v1 bundle, for wotr older than the chain member.",
)
def export(rev: str, output: str, no_policy_chain: bool) -> int:
    """Write every claim on REV to a self-contained bundle for offline 'verify'.

    Exported from a tag (--rev v1.0), the bundle records the tag: offline, only claims
    made for that tag then count. With a policy chain (refs/wotr/policy) the bundle carries
    it, so a pinned installer follows it from this one file. See docs/bundles.md.
    """
    from .commands.export import run_export

    return run_export(rev=rev, output=output, policy_chain=not no_policy_chain)


# --- sharing claims (wotr/sync.py) ------------------------------------------------------------


@cli.command(context_settings=_CONTEXT)
@click.argument("remote", default="origin")
def fetch(remote: str) -> int:
    """Fetch the claims of REMOTE [default: origin] and add them to refs/notes/wotr.

    A union of lines: no claim present here is ever removed, whatever the remote's history did.
    """
    from .commands.sync import run_fetch

    return run_fetch(remote=remote)


@cli.command(context_settings=_CONTEXT)
@click.argument("remote", default="origin")
def push(remote: str) -> int:
    """Share refs/notes/wotr with REMOTE [default: origin]: fetch, merge, push; never forced."""
    from .commands.sync import run_push

    return run_push(remote=remote)


@cli.command("remote-setup", context_settings=_CONTEXT)
@click.argument("remote", required=False)
def remote_setup(remote: str | None) -> int:
    """Make a plain 'git fetch' of REMOTE [default: every remote] also fetch claims."""
    from .commands.sync import run_remote_setup

    return run_remote_setup(remote=remote)


# --- rebuilders at work (wotr/follow.py, wotr/status.py, wotr/site.py) --------------------------


@cli.command(
    context_settings={**_CONTEXT, "allow_interspersed_args": False},
    short_help="Rebuild every new release of REMOTE: build, sign, push, wait, again.",
)
@click.argument("remote", required=False)
@click.option("--tags", "pattern", default="v*", show_default=True, help="Release tag pattern.")
@click.option("--once", is_flag=True, help="One round, then exit (for cron, timers and CI).")
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=300,
    show_default=True,
    help="Seconds between rounds.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=3600,
    show_default=True,
    help="Seconds one build may take; then it is killed and counts as failed.",
)
@click.option(
    "--retries",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Failed builds of one release before it is reported and left alone.",
)
@click.option("--no-push", is_flag=True, help="Sign, but do not push the claims.")
@click.option("--role", help="Role of the claims [default: git config wotr.role, else author].")
@click.option("--key", help="Signing key [default: git config user.signingkey, else gpg's].")
@click.option("--policy", "policy_path", metavar="FILE", help="Policy to compare with.")
@click.option(
    "--build-root",
    type=click.Path(path_type=Path, file_okay=False),
    help="Parent of the fixed build path [default: /tmp/wotr-build].",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def follow(
    remote: str | None,
    pattern: str,
    once: bool,
    interval: float,
    timeout: float,
    retries: int,
    no_push: bool,
    role: str | None,
    key: str | None,
    policy_path: str | None,
    build_root: Path | None,
    command: tuple[str, ...],
) -> int:
    """Follow REMOTE [default: origin]: fetch its tags and claims, rebuild each release (tag
    matching --tags) this clone has not built yet with 'git wotr build --sign', push, wait.

    A build command after '--' is passed to build (else wotr.toml's [build] in the commit).
    Exit codes of --once: 0 every release reproduced (or nothing new), 1 one differs (dissent
    signed), 2 a build failed, timed out, was given up or its tag moved, 3 environment.
    See docs/rebuilders.md.
    """
    from .commands.follow import run_follow

    return run_follow(
        remote=remote,
        pattern=pattern,
        once=once,
        interval=interval,
        timeout=timeout,
        retries=retries,
        push=not no_push,
        role=role,
        key=key,
        policy_path=policy_path,
        build_root=build_root,
        command=command,
    )


@cli.command(context_settings=_CONTEXT)
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    metavar="DIR",
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory to write the site into.",
)
@click.option("--tags", "pattern", default="*", show_default=True, help="Release tag pattern.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Newest releases checked and shown.",
)
@click.option("--policy", "policy_path", metavar="FILE", help="Policy file (threshold.toml).")
def report(out: Path, pattern: str, limit: int, policy_path: str | None) -> int:
    """Write a static status page: releases (newest first) x signers, and a page per release.

    No server and no JavaScript; the directory can be copied anywhere. See docs/rebuilders.md.
    """
    from .commands.report import run_report

    return run_report(out=out, pattern=pattern, limit=limit, policy_path=policy_path)


# --- OCI registries (issue 15, wotr/oci/) -----------------------------------------------------


@cli.group(context_settings=_CONTEXT)
def oci() -> None:
    """Claims for container images and Helm charts in OCI registries (docs/helm-oci.md)."""


_PLAIN_HTTP = click.option(
    "--plain-http", is_flag=True, help="Allow plain HTTP to a registry off loopback."
)


@oci.command("sign", context_settings=_CONTEXT)
@click.option("--rev", default="HEAD", show_default=True, help="Commit or tag that was built.")
@click.option("--role", help="Role of this claim [default: git config wotr.role, else author].")
@click.option("--key", help="gpg key [default: git config user.signingkey, else gpg's default].")
@click.option(
    "--layout",
    "layouts",
    multiple=True,
    metavar="DIR[:TAG]",
    help="An OCI image layout directory (index.json) holding the image (repeatable).",
)
@click.option(
    "--digest",
    "digests",
    multiple=True,
    nargs=2,
    metavar="sha256:HEX NAME",
    help="A manifest digest and the name to claim it under (repeatable).",
)
@click.option("--name", help="Name of the image in the claim [default: REPO's last part:TAG].")
@click.option(
    "--push",
    "push_remote",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[REMOTE]",
    help="Share the claim right away (default remote: origin).",
)
@click.option("--policy", "policy_path", metavar="FILE", help="Check the claim against FILE.")
@click.option(
    "--allow-uncounted", is_flag=True, help="Sign even if the policy would not count the claim."
)
@_PLAIN_HTTP
@click.argument("refs", nargs=-1)
def oci_sign(
    rev: str,
    role: str | None,
    key: str | None,
    layouts: tuple[str, ...],
    digests: tuple[tuple[str, str], ...],
    name: str | None,
    push_remote: str | None,
    policy_path: str | None,
    allow_uncounted: bool,
    plain_http: bool,
    refs: tuple[str, ...],
) -> int:
    """Sign a claim that REV built the image REF... (its manifest digest), as 'sign' does files.

    REF is REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:HEX; the digest is that of the manifest
    (or index) the registry serves, hashed here. A Helm chart needs no image claim: sign the
    .tgz with 'git wotr sign'; its digest is the chart layer's in the registry.
    """
    from .commands.oci import run_oci_sign

    return run_oci_sign(
        rev=rev,
        role=role,
        key=key,
        refs=refs,
        layouts=layouts,
        digests=digests,
        name=name,
        push_remote=push_remote,
        plain_http=plain_http,
        policy_path=policy_path,
        allow_uncounted=allow_uncounted,
    )


@oci.command("attach", context_settings=_CONTEXT)
@click.option("--rev", default="HEAD", show_default=True, help="Commit or tag whose claims go.")
@_PLAIN_HTTP
@click.argument("reference", metavar="REF")
def oci_attach(rev: str, plain_http: bool, reference: str) -> int:
    """Push the claims on REV (its bundle) to the registry, attached to the image REF.

    The bundle becomes an OCI artifact (application/vnd.wotr.bundle.v1+json) whose subject is
    REF's manifest: listed by the referrers API, or under the tag sha256-<hex> where the
    registry has no such API. Run it again after more parties signed.
    """
    from .commands.oci import run_oci_attach

    return run_oci_attach(rev=rev, reference=reference, plain_http=plain_http)


@oci.command("copy", context_settings=_CONTEXT)
@_PLAIN_HTTP
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="DST")
def oci_copy(plain_http: bool, source: str, target: str) -> int:
    """Copy the image SRC (manifest or index, blobs) and its wotr attachments to DST.

    DST is REGISTRY/REPO[:TAG] (the tag defaults to SRC's). Every manifest and blob is
    digest-checked; the copy has the same digest, so claims verify against it.
    """
    from .commands.oci import run_oci_copy

    return run_oci_copy(source=source, target=target, plain_http=plain_http)


# --- policy chain, withdrawals, audit (issue 11; bodies in policycmd/withdraw/audit) ----------


@cli.group(context_settings=_CONTEXT)
def policy() -> None:
    """Change the policy by a quorum of its own signers (a chain of serials; docs/policy.md)."""


@policy.command("propose", context_settings=_CONTEXT)
@click.option("--key", help="gpg key [default: git config user.signingkey, else gpg's default].")
def policy_propose(key: str | None) -> int:
    """Sign the edited threshold.toml (serial N+1) as a proposal in refs/wotr/policy."""
    from . import policycmd

    done = policycmd.propose(_repo(), key=key)
    click.echo(policycmd.signed_text(done, "proposed"))
    return EXIT_OK


@policy.command("sign", context_settings=_CONTEXT)
@click.option("--key", help="gpg key [default: git config user.signingkey, else gpg's default].")
@click.option("--digest", help="Which proposal, when there are several (a prefix).")
def policy_sign(key: str | None, digest: str | None) -> int:
    """Add your signature to the pending proposal for the next serial."""
    from . import policycmd

    done = policycmd.sign(_repo(), key=key, digest=digest)
    click.echo(policycmd.signed_text(done, "signed"))
    return EXIT_OK


@policy.command("show", context_settings=_CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def policy_show(as_json: bool) -> int:
    """The chain: each serial, who signed it, which one is in effect, what is pending."""
    import json

    from . import policycmd

    doc = policycmd.show(_repo())
    click.echo(json.dumps(doc, indent=2) if as_json else policycmd.show_text(doc))
    return EXIT_OK


@policy.command("pin", context_settings=_CONTEXT)
@click.option(
    "--policy", "policy_path", required=True, metavar="FILE", help="e.g. /etc/wotr/policy.toml"
)
@click.option(
    "--state",
    type=click.Path(path_type=Path, file_okay=False),
    help="Pin state [default: $WOTR_POLICY_STATE, else /var/lib/wotr/policy].",
)
def policy_pin(policy_path: str, state: Path | None) -> int:
    """Pin an installer's policy (no repository needed); verify then follows the chain."""
    from . import policycmd

    done = policycmd.pin_installer(Path(policy_path), state or policycmd.installer_state())
    if done.kept is not None:
        click.echo(
            f"kept {done.path}: the policy chain already took {policy_path} to serial "
            f"{done.kept} (the pin only moves forward; to start over, remove {done.path})"
        )
    else:
        click.echo(f"pinned {policy_path} in {done.path}")
    return EXIT_OK


@policy.command("export", context_settings=_CONTEXT)
@click.option(
    "-o", "--output", required=True, metavar="FILE", help="e.g. bundles/project.wotr-policy"
)
def policy_export(output: str) -> int:
    """Write the policy chain to a file that offline verify reads beside the bundles."""
    from . import policycmd

    Path(output).write_bytes(policycmd.export_chain(_repo()))
    click.echo(f"wrote the policy chain to {output}")
    return EXIT_OK


@cli.command(context_settings=_CONTEXT)
@click.option("--rev", default="HEAD", show_default=True, help="Commit or tag the claims are on.")
@click.option("--all", "everything", is_flag=True, help="Withdraw all your claims on REV.")
@click.option("--digest", "digests", multiple=True, metavar="sha256:HEX", help="Repeatable.")
@click.option(
    "--key", help="gpg or SSH key, as for sign [default: git config user.signingkey, else gpg's]."
)
@click.argument("artifacts", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
def withdraw(
    rev: str,
    everything: bool,
    digests: tuple[str, ...],
    key: str | None,
    artifacts: tuple[Path, ...],
) -> int:
    """Withdraw your own claims on REV for ARTIFACT... (or --all). Final; see docs/policy.md."""
    from . import withdrawcmd

    done = withdrawcmd.withdraw(
        _repo(), rev=rev, everything=everything, artifacts=artifacts, digests=digests, key=key
    )
    what = "all claims" if done.withdrawal.all else f"{len(done.withdrawal.subjects)} digest(s)"
    verb = "withdrew" if done.added else "already withdrawn (identical withdrawal present)"
    click.echo(f"{verb} {what} on {done.commit[:12]} with key {done.fingerprint}")
    for name, digest in done.withdrawal.subjects:
        click.echo(f"  {name}  sha256:{digest}")
    return EXIT_OK


@cli.command(context_settings=_CONTEXT)
@click.option("--signer", help="Signer name in the policy.")
@click.option("--key", metavar="FPR", help="A primary fingerprint listed in the policy.")
@click.option("--policy", "policy_path", metavar="FILE", help="Policy file (threshold.toml).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def audit(signer: str | None, key: str | None, policy_path: str | None, as_json: bool) -> int:
    """Every noted commit and tag where a signer's claims count, and whether each still
    verifies without them. Exit 1 when some release verifies only with them."""
    from . import audit as audit_mod
    from .errors import BadInput

    if (signer is None) == (key is None):
        raise BadInput("give exactly one of --signer NAME or --key FPR")
    repo = _repo()
    done = audit_mod.audit(repo, _policy(policy_path, repo), signer=signer, key=key)
    click.echo(audit_mod.to_json(done) if as_json else audit_mod.text(done))
    risky = any(e.verified and not e.verified_without for e in done.entries)
    return EXIT_NOT_VERIFIED if risky else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    prog_name = "git wotr"
    if args:
        # Shell completion runs the program with no arguments. With arguments, a completion
        # variable left in the environment (or planted in a hook's) must not turn a command
        # such as verify into click's completion mode, which prints and exits 0.
        for key in [k for k in os.environ if k.startswith("_") and k.endswith("_COMPLETE")]:
            del os.environ[key]
    elif os.environ.get("_WOTR_COMPLETE"):
        from . import completion  # bash and zsh, for `wotr` and `git wotr` (wotr/completion.py)

        prog_name = completion.PROG_NAME
    try:
        code = cli.main(
            args=args, prog_name=prog_name, complete_var="_WOTR_COMPLETE", standalone_mode=False
        )
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = EXIT_BAD_INPUT
    except click.Abort:
        click.echo("Aborted.", err=True)
        code = EXIT_BAD_INPUT
    except (Exception, KeyboardInterrupt) as exc:  # a bug must never look like success
        code = report_error(exc, debug)
    if not isinstance(code, int):
        code = EXIT_OK
    if argv is None:
        sys.exit(code)
    return code


__all__ = ["EXIT_NOT_VERIFIED", "cli", "main"]
