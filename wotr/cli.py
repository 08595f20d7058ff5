"""Thin click layer: options -> one library call -> render -> exit code (DESIGN §2).

Exit codes are mapped here and only here: 0 ok, 1 not verified, 2 bad input, 3 environment.
Library modules are imported inside the commands so that ``verify`` pays only for what it uses.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

import click

from .errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, EXIT_NOT_VERIFIED, EXIT_OK, WotrError

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _repo() -> Any:
    from . import git

    return git.open_repo()


def _policy(explicit: str | None, repo: Any, threshold: int | None = None) -> Any:
    from . import git, policy

    found = policy.find(
        explicit,
        top=repo.top if repo else None,
        common_dir=repo.common_dir if repo else None,
        config_value=git.config_get(repo, "wotr.policy") if repo else None,
    )
    return found.with_threshold(threshold)


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
@click.option("--key", help="gpg key [default: git config user.signingkey, else gpg's default].")
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
@click.argument(
    "artifacts", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=True)
)
def sign(
    rev: str,
    role: str | None,
    key: str | None,
    allow_dirty: bool,
    push_remote: str | None,
    artifacts: tuple[Path, ...],
) -> int:
    """Sign a claim that REV built ARTIFACT... and add it to the commit's note."""
    from . import sign as sign_mod

    repo = _repo()
    signed = sign_mod.sign(
        repo, list(artifacts), rev=rev, role=role, key=key, allow_dirty=allow_dirty
    )
    where = signed.tag.removeprefix("refs/tags/") if signed.tag else signed.commit[:12]
    verb = "signed" if signed.added else "already signed (identical claim present)"
    click.echo(f"{verb}: {where} as {signed.role} with key {signed.fingerprint}")
    for s in signed.artifacts:
        click.echo(f"  {s.name}  sha256:{s.sha256}")
    if signed.untagged_hint:
        tag = signed.untagged_hint[0]
        click.echo(
            f"note: this commit is tagged {tag}; claims made without --rev {tag} do not "
            f"count for 'verify --rev {tag}'",
            err=True,
        )
    if push_remote is not None:
        from . import sync

        remote = push_remote or "origin"
        sync.push(repo, remote)
        click.echo(f"pushed claims to {remote}")
    return EXIT_OK


@cli.command(context_settings=_CONTEXT)
@click.option("--rev", default="HEAD", show_default=True, help="Commit or tag to verify.")
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
@click.argument("artifacts", nargs=-1, type=click.Path(path_type=Path, dir_okay=True))
def verify(
    rev: str,
    threshold: int | None,
    policy_path: str | None,
    strict: bool,
    as_json: bool,
    digests: tuple[str, ...],
    artifacts: tuple[Path, ...],
) -> int:
    """Exit 0 only if M distinct trusted signers agree on each ARTIFACT at REV."""
    from . import render
    from . import verify as verify_mod

    repo = _repo()
    pol = _policy(policy_path, repo, threshold)
    report = verify_mod.verify_repo(
        repo, rev, pol, artifacts=artifacts, digests=digests, strict=strict
    )
    click.echo(render.verify_json(report) if as_json else render.verify_text(report))
    assert report.result is not None
    return EXIT_OK if report.result.verified else EXIT_NOT_VERIFIED


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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        code = cli.main(args=args, prog_name="git wotr", standalone_mode=False)
    except WotrError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"Error: {exc}", err=True)
        code = exc.exit_code
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = EXIT_BAD_INPUT
    except click.Abort:
        click.echo("Aborted.", err=True)
        code = EXIT_BAD_INPUT
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        code = 130
    except Exception as exc:  # a bug must never look like success
        if debug:
            traceback.print_exc()
        click.echo(
            f"Error: internal error: {type(exc).__name__}: {exc} (run with --debug and report it)",
            err=True,
        )
        code = EXIT_ENVIRONMENT
    if not isinstance(code, int):
        code = EXIT_OK
    if argv is None:
        sys.exit(code)
    return code


__all__ = ["EXIT_NOT_VERIFIED", "cli", "main"]
