"""Thin click layer: options -> one library call -> render -> exit code (DESIGN §2).

Exit codes: 0 ok, 1 not verified, 2 bad input, 3 environment; errors are mapped in
:func:`wotr.entry.report_error` (shared with the click-free ``verify`` fast path there, which
the console scripts enter through). Library modules are imported inside the commands so that
each command pays only for what it uses.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from .entry import report_error
from .errors import EXIT_BAD_INPUT, EXIT_NOT_VERIFIED, EXIT_OK

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _repo() -> Any:
    from . import git

    return git.open_repo()


def _repo_or_none() -> Any:
    """The repository around the working directory; None outside one (or without git at all)."""
    from .entry import repo_or_none

    return repo_or_none()


def _policy(explicit: str | None, repo: Any, threshold: int | None = None) -> Any:
    from .entry import policy_for

    return policy_for(explicit, repo, threshold)


@click.group(context_settings=_CONTEXT)
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
@click.argument("artifacts", nargs=-1, type=click.Path(path_type=Path, dir_okay=True))
def sign(
    rev: str,
    role: str | None,
    key: str | None,
    allow_dirty: bool,
    push_remote: str | None,
    artifacts: tuple[Path, ...],
) -> int:
    """Sign a claim that REV built ARTIFACT... and add it to the commit's note."""
    from .entry import run_sign

    return run_sign(
        rev=rev,
        role=role,
        key=key,
        allow_dirty=allow_dirty,
        push_remote=push_remote,
        artifacts=artifacts,
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
    artifacts: tuple[Path, ...],
) -> int:
    """Exit 0 only if M distinct trusted signers agree on each ARTIFACT at REV.

    In a repository the claims are the notes of REV. With --bundle/--bundles, or outside any
    repository, they come from bundles: --bundle FILE, ARTIFACT.wotr next to each file, and the
    bundles directory searched by digest; the surrounding repository is then not consulted
    (policy: --policy, $WOTR_POLICY, else /etc/wotr/policy.toml). See docs/bundles.md.
    """
    # The body is shared with the click-free fast path, which parses these same options itself
    # (wotr/entry.py: parse_verify); a new option here must be added there, or it goes to click.
    from .entry import run_verify

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
    from . import render
    from . import verify as verify_mod
    from .errors import PolicyError

    repo = _repo()
    try:
        pol = _policy(policy_path, repo)
    except PolicyError as exc:
        if policy_path:
            raise
        click.echo(f"note: signatures not checked: {exc}", err=True)
        pol = None
    report = verify_mod.show_repo(repo, rev, pol)
    click.echo(render.show_json(report) if as_json else render.show_text(report))
    return EXIT_OK


@cli.command(context_settings=_CONTEXT)
@click.option("--threshold", type=click.IntRange(min=1), help="Threshold for a new policy.")
def init(threshold: int | None) -> int:
    """Create (or review) threshold.toml, pin it, and set up notes refspecs."""
    from . import init as init_mod

    done = init_mod.init(_repo(), threshold=threshold)
    click.echo(f"{'created' if done.created else 'found'} {done.path}")
    if done.loaded is not None:
        for s in done.loaded.signers:
            roles = ", ".join(sorted(s.roles)) if s.roles else "any role"
            click.echo(f"  {s.name} ({roles}): {', '.join(sorted(s.fingerprints))}")
        click.echo(f"  threshold {done.loaded.threshold}")
        click.echo(f"pinned: {done.pinned}")
    else:
        click.echo(f"not pinned yet: {done.problem}", err=True)
        click.echo("edit it (see threshold.example.toml), then run 'git wotr init' again", err=True)
    for remote in done.remotes:
        click.echo(f"remote {remote}: 'git fetch' now also fetches claims")
    return EXIT_OK


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
@click.option("--policy", "policy_path", metavar="FILE", help="Policy to check earlier claims.")
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
) -> int:
    """Build REV in a fresh checkout at a fixed path and compare with every claim on it.

    The recipe is '-- COMMAND...' and --artifact, else the [build] table of wotr.toml in
    the commit being built. Exit 0 reproduced (or nothing to compare with), 1 differs from
    an earlier claim, 2 bad recipe or failed build, 3 environment. See docs/build.md.
    """
    from . import build as build_mod
    from .errors import PolicyError

    repo = _repo()
    pol = None
    no_policy = ""
    try:
        pol = _policy(policy_path, repo)
    except PolicyError as exc:
        if policy_path:
            raise
        no_policy = exc.message
    tty = sys.stderr.isatty()
    output = build_mod.Output(
        stream=sys.stderr.buffer if verbose or (tty and not quiet) else None,
        spinner=sys.stderr if tty and quiet and not verbose else None,
    )
    try:
        built = build_mod.build(
            repo,
            rev=rev,
            command=command,
            artifacts=globs,
            root=build_root or build_mod.DEFAULT_ROOT,
            out=out,
            output=output,
        )
    except build_mod.BuildFailed as exc:
        if exc.tail and not exc.shown:
            click.echo(f"last {len(exc.tail)} line(s) of the build's output:", err=True)
            for line in exc.tail:
                click.echo(f"  | {line}", err=True)
        raise
    comp = build_mod.compare(repo, built, pol, no_policy_reason=no_policy, compare_dir=compare_dir)
    for line in build_mod.comparison_text(built, comp):
        click.echo(line)
    for line in build_mod.summary_text(built, comp):
        click.echo(line)
    if do_sign:
        from . import sign as sign_mod

        # The artifacts come from a clean checkout of the commit, not from the working tree.
        signed = sign_mod.sign(
            repo, [a.path for a in built.artifacts], rev=rev, role=role, key=key, allow_dirty=True
        )
        if {(s.name, s.sha256) for s in signed.artifacts} != {
            (a.name, a.sha256) for a in built.artifacts
        }:
            from .errors import SignError

            raise SignError(f"the kept artifacts in {built.out} changed while they were signed")
        kind = " (a dissenting claim)" if comp.differs else ""
        verb = "signed" if signed.added else "already signed (identical claim present)"
        click.echo(f"{verb}{kind}: as {signed.role} with key {signed.fingerprint}")
        if push_remote is not None:
            from . import sync

            remote = push_remote or "origin"
            sync.push(repo, remote)
            click.echo(f"pushed claims to {remote}")
    elif push_remote is not None:
        click.echo("note: nothing to push without --sign", err=True)
    return EXIT_NOT_VERIFIED if comp.differs else EXIT_OK


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
def export(rev: str, output: str) -> int:
    """Write every claim on REV to a self-contained bundle for offline 'verify'.

    Exported from a tag (--rev v1.0), the bundle records the tag: offline, only claims
    made for that tag then count. See docs/bundles.md.
    """
    from . import bundle

    exported = bundle.export(_repo(), rev)
    if output == "-":
        sys.stdout.buffer.write(exported.data)
        sys.stdout.buffer.flush()
    else:
        bundle.write(exported.data, Path(output))
    b = exported.bundle
    where = b.tag.removeprefix("refs/tags/") if b.tag else b.commit[:12]
    dest = "stdout" if output == "-" else output
    click.echo(
        f"exported {len(b.claims)} claim(s) on {where} ({len(b.subjects)} artifact digest(s))"
        f" to {dest}",
        err=True,
    )
    if exported.skipped:
        click.echo(f"note: left out {exported.skipped} line(s) that are not wotr claims", err=True)
    return EXIT_OK


# --- sharing claims (wotr/sync.py) ------------------------------------------------------------


@cli.command(context_settings=_CONTEXT)
@click.argument("remote", default="origin")
def fetch(remote: str) -> int:
    """Fetch the claims of REMOTE [default: origin] and add them to refs/notes/wotr.

    A union of lines: no claim present here is ever removed, whatever the remote's history did.
    """
    from . import sync

    got = sync.fetch(_repo(), remote)
    if got.remote_tip is None:
        click.echo(f"no claims on {remote} yet")
    elif got.merged.gained or got.merged.skipped:
        click.echo(f"fetched claims from {remote}: {got.merged.gained} commit(s) gained claims")
        if got.merged.skipped:
            click.echo(
                f"warning: {got.merged.skipped} note(s) on {remote} exceed the size limit, "
                "alone or merged with ours, and were not merged (ours kept as they were)",
                err=True,
            )
    else:
        click.echo(f"claims from {remote}: up to date")
    return EXIT_OK


@cli.command(context_settings=_CONTEXT)
@click.argument("remote", default="origin")
def push(remote: str) -> int:
    """Share refs/notes/wotr with REMOTE [default: origin]: fetch, merge, push; never forced."""
    from . import sync

    done = sync.push(_repo(), remote)
    if done.tip is None:
        click.echo(f"no claims here or on {remote}: nothing to push")
    elif not done.sent:
        click.echo(f"{remote} already has every claim")
    else:
        retried = f" ({done.rejections} rejected, retried)" if done.rejections else ""
        click.echo(f"pushed claims to {remote}{retried}")
    return EXIT_OK


@cli.command("remote-setup", context_settings=_CONTEXT)
@click.argument("remote", required=False)
def remote_setup(remote: str | None) -> int:
    """Make a plain 'git fetch' of REMOTE [default: every remote] also fetch claims."""
    from . import sync

    for name in sync.setup_remotes(_repo(), remote):
        click.echo(
            f"remote {name}: 'git fetch' now also fetches claims into {sync.tracking_ref(name)}"
        )
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    if args:
        # Shell completion runs the program with no arguments. With arguments, a completion
        # variable left in the environment (or planted in a hook's) must not turn a command
        # such as verify into click's completion mode, which prints and exits 0.
        for key in [k for k in os.environ if k.startswith("_") and k.endswith("_COMPLETE")]:
            del os.environ[key]
    try:
        code = cli.main(args=args, prog_name="git wotr", standalone_mode=False)
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
