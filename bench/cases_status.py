"""Case 16: the status page (``git wotr report``) stays bounded on a project with many releases."""

from __future__ import annotations

from pathlib import Path

from testing import sim

from . import fixtures as fx
from .cases import Ctx, Row, _times, ms
from .timing import cmd

COMMITTER = fx.COMMITTER


def _tag_every_commit(repo: Path) -> int:
    """A lightweight tag v<N> on every commit of main, in one fast-import."""
    ids = sim.git(repo, "rev-list", "--reverse", "main").split()
    stream = "".join(f"reset refs/tags/v{i}\nfrom {c}\n\n" for i, c in enumerate(ids, 1))
    fx._fast_import(repo, stream.encode())
    return len(ids)


def case_16(ctx: Ctx) -> Row:
    keys = ctx.keys.get(3)
    art = fx.write_artifacts(ctx.root / "c16" / "dist", 1, 4096)
    one = fx.scene(ctx.root / "c16" / "one", keys, signers=3, artifacts=art)
    limit = 50 if ctx.sizes.noted_commits < 1000 else 200
    few = fx.many_commits_repo(ctx.root / "c16" / "few", limit)
    many = fx.many_commits_repo(ctx.root / "c16" / "many", ctx.sizes.noted_commits)
    for repo in (few, many):
        head_note = b"".join(fx.signed_lines(keys, fx.claim_for(repo, art)))
        fx.note_every_commit(repo, head_note, next(fx.iter_lines(one.note)) + b"\n")
    _tag_every_commit(few)
    n = _tag_every_commit(many)

    def report(repo: Path) -> list[str | Path]:
        return [
            "git",
            "wotr",
            "report",
            "--policy",
            one.policy,
            "--limit",
            str(limit),
            "-o",
            repo.parent / "site",
        ]

    t = _times(
        ctx,
        {
            "few": cmd(report(few), cwd=few, env=ctx.env),
            "many": cmd(report(many), cwd=many, env=ctx.env),
        },
        reps=min(ctx.reps, 3),
    )
    ratio = t.median("many") / t.median("few")
    return Row(
        "16",
        f"status page, {n} noted and tagged releases",
        f"{ratio:.2f} x {limit} releases",
        "<= 1.5",
        ratio <= 1.5,
        f"{ms(t.median('many'))} vs {ms(t.median('few'))} (--limit {limit})",
    )
