"""Distribution scale, offline verify (issue 13 items 1-3): cases 20-23.

- 20a/20b: one ``verify --bundles DIR`` over N packages from N commits, 3 (5) claims each,
  against one ``gpg --verify`` process checking one package's signatures, times N;
- 21: one commit with 1,000 artifacts, offline (``--bundle``) against the same in a repository;
- 22: the same with 10,000 artifacts: the cost per artifact against case 21's (no quadratic step);
- 23: N sidecar copies of one big bundle: every artifact verifies (copies are read once).

Fixtures are made fast: N commits by one ``git fast-import``, every signature of one key by its
gpg-agent in one session (:mod:`bench.fastsign`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from testing import gpgkeys, sim
from wotr import bundle as bundle_mod
from wotr import claim as claim_mod

from . import fixtures as fx
from .cases import Ctx, Row, Sizes, ms
from .fastsign import sign_many
from .timing import BenchError, cmd, measure, run

MAX_READ = 4 * bundle_mod.MAX_BUNDLE_BYTES  # wotr.offline.MAX_BUNDLE_BYTES_PER_RUN


def _quick(ctx: Ctx) -> bool:
    return ctx.sizes == Sizes.quick()


def _reps(ctx: Ctx) -> int:
    return max(1, min(ctx.reps, 3))


def _commits(repo: Path) -> list[tuple[str, str, bytes]]:
    """(commit, tree, commit object) of every commit on main, oldest first."""
    ids = sim.git(repo, "rev-list", "--reverse", "main").split()
    res = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=repo,
        input="".join(f"{i}\n" for i in ids).encode(),
        capture_output=True,
        check=True,
        env=sim.base_env(),
    )
    out, pos = [], 0
    data = res.stdout
    for cid in ids:
        end = data.index(b"\n", pos)
        _, kind, size = data[pos:end].split()
        body = data[end + 1 : end + 1 + int(size)]
        pos = end + 1 + int(size) + 1
        if kind != b"commit":
            raise BenchError(f"{cid} is not a commit")
        tree = body[5:45].decode()
        out.append((cid, tree, body))
    return out


def _packages(
    ctx: Ctx, where: Path, n: int, keys: Sequence[gpgkeys.Key]
) -> tuple[list[Path], list[bytes], list[list[bytes]], list[tuple[str, str, bytes]]]:
    """N artifacts, N commits, each package's claim payload and every key's line for it."""
    arts = fx.write_artifacts(where / "dist", n, 1024)
    repo = fx.many_commits_repo(where / "commits", n)
    commits = _commits(repo)
    payloads = []
    for art, (cid, tree, _) in zip(arts, commits, strict=True):
        digest = hashlib.sha256(art.read_bytes()).hexdigest()
        claim = claim_mod.Claim.build(
            commit=cid, tree=tree, role="author", artifacts={art.name: digest}, ref=None
        )
        payloads.append(claim.payload())
    lines: list[list[bytes]] = []
    for key in keys:
        sigs = sign_many(key, [claim_mod.pae(p) for p in payloads])
        lines.append(
            [
                claim_mod.Envelope(payload=p, sig=s, keyid=key.fingerprint).line()
                for p, s in zip(payloads, sigs, strict=True)
            ]
        )
    return arts, payloads, lines, commits


def case_20(ctx: Ctx) -> list[Row]:
    n = 40 if _quick(ctx) else 2000
    keys = ctx.keys.get(5)
    where = ctx.root / "c20"
    arts, payloads, lines, commits = _packages(ctx, where, n, keys)
    rows = []
    for label, claims in (("20a", 3), ("20b", 5)):
        store = where / f"bundles{claims}"
        store.mkdir()
        for i, (cid, _, obj) in enumerate(commits):
            note = b"".join(lines[k][i] + b"\n" for k in range(claims))
            made, _ = bundle_mod.build(cid, obj, None, note)
            (store / f"pkg-{i:05d}.wotr").write_bytes(bundle_mod.to_bytes(made))
        policy = fx.policy_for(where / f"policy{claims}", keys[:claims], 2)
        floor = fx.GpgFloor(where / f"floor{claims}", keys[:claims], claim_mod.pae(payloads[0]))
        sigs = b"".join(fx.sig_of(lines[k][0]) for k in range(claims))
        away = where / "away"
        away.mkdir(exist_ok=True)
        argv: list[str | Path] = ["wotr", "verify", "--policy", policy, "--bundles", store, *arts]
        try:
            t = measure(
                {
                    "gpg": cmd(floor.verify_argv(sigs, "sigs")),
                    "wotr": cmd(argv, cwd=away, env=ctx.env),  # exit 0: says yes
                },
                _reps(ctx),
                warmup=ctx.warmup,
            )
        finally:
            floor.close()
        per = t.median("wotr") / n
        ratio = per / t.median("gpg")
        rows.append(
            Row(
                label,
                f"offline verify of {n} packages, {n} commits, {claims} claims each",
                f"{ratio:.2f} x gpg/pkg",
                "<= 1.0, verified",
                ratio <= 1.0,
                f"wotr {t.median('wotr'):.2f} s ({ms(per)}/package); one gpg --verify of "
                f"{claims} signatures {ms(t.median('gpg'))}",
            )
        )
    shutil.rmtree(where, ignore_errors=True)
    return rows


def _one_commit(ctx: Ctx, name: str, count: int) -> tuple[float, float]:
    """(offline, in-repository) seconds of verifying ``count`` artifacts of one commit."""
    keys = ctx.keys.get(3)
    where = ctx.root / name
    arts = fx.write_artifacts(where / "dist", count, 256)
    scene = fx.scene(where, keys, signers=3, artifacts=arts)
    exported = where / "release.wotr"
    run(["git", "wotr", "export", "--rev", "HEAD", "-o", exported], cwd=scene.repo, env=ctx.env)
    away = where / "away"
    away.mkdir()
    base: list[str | Path] = ["wotr", "verify", "--policy", scene.policy]
    t = measure(
        {
            "offline": cmd([*base, "--bundle", exported, *arts], cwd=away, env=ctx.env),
            "repo": cmd([*base, *arts], cwd=scene.repo, env=ctx.env),
        },
        _reps(ctx),
        warmup=ctx.warmup,
    )
    shutil.rmtree(where, ignore_errors=True)
    return t.median("offline"), t.median("repo")


def case_21(ctx: Ctx) -> list[Row]:
    small, big = (20, 200) if _quick(ctx) else (1000, 10_000)
    off1, repo1 = _one_commit(ctx, "c21", small)
    off2, repo2 = _one_commit(ctx, "c22", big)
    r1 = off1 / repo1
    growth = (off2 / big) / (off1 / small)
    return [
        Row(
            "21",
            f"offline verify of one commit, {small} artifacts",
            f"{r1:.2f} x in repo",
            "<= 1.5",
            r1 <= 1.5,
            f"offline {ms(off1)}, in a repository {ms(repo1)}",
        ),
        Row(
            "22",
            f"offline verify of one commit, {big} artifacts",
            f"{growth:.2f} x per artifact",
            "<= 1.5 (linear)",
            growth <= 1.5,
            f"offline {ms(off2)} ({off2 / big * 1e6:.0f} us/artifact vs "
            f"{off1 / small * 1e6:.0f} at {small}); in a repository {ms(repo2)}",
        ),
    ]


def case_23(ctx: Ctx) -> Row:
    """N artifacts of one commit, each with its own sidecar copy of the commit's bundle."""
    n = 40 if _quick(ctx) else 2000
    keys = ctx.keys.get(3)
    where = ctx.root / "c23"
    arts = fx.write_artifacts(where / "dist", n, 64)
    scene = fx.scene(where, keys, signers=3, artifacts=arts)
    exported = where / "release.wotr"
    run(["git", "wotr", "export", "--rev", "HEAD", "-o", exported], cwd=scene.repo, env=ctx.env)
    data = exported.read_bytes()
    for art in arts:
        bundle_mod.sidecar(art).write_bytes(data)
    away = where / "away"
    away.mkdir()
    argv: list[str | Path] = ["wotr", "verify", "--policy", scene.policy, "--json", *arts]
    res = run(argv, cwd=away, env=ctx.env, expect=None)
    doc = json.loads(res.stdout)
    ok = sum(1 for a in doc["artifacts"] if a["verified"])
    total = len(data) * n
    shutil.rmtree(where, ignore_errors=True)
    return Row(
        "23",
        f"{n} sidecar copies of one {len(data) / (1 << 20):.1f} MiB bundle",
        f"{ok} of {n} verified",
        "all, exit 0",
        res.returncode == 0 and ok == n,
        f"{total / (1 << 20):.0f} MiB of copies (read cap {MAX_READ >> 20} MiB); "
        f"{len(doc['skipped_bundles'])} skipped",
    )


def case_8b(ctx: Ctx) -> Row:
    """Audit's worst case (issue 11): the signer has claims on every noted commit, so every
    note goes to gpg; against one gpg --verify of one commit's 3 signatures, per commit."""
    n = 40 if _quick(ctx) else 2000
    keys = ctx.keys.get(3)
    where = ctx.root / "c8b"
    _, payloads, lines, commits = _packages(ctx, where, n, keys)
    repo = where / "commits" / "repo"
    stream = bytearray(f"commit refs/notes/wotr\ncommitter {fx.COMMITTER}\ndata 0\n".encode())
    for i, (cid, _, _) in enumerate(commits):
        note = b"".join(lines[k][i] + b"\n" for k in range(3))
        stream += f"N inline {cid}\ndata {len(note)}\n".encode() + note + b"\n"
    fx._fast_import(repo, bytes(stream))
    policy = fx.policy_for(where / "policy", keys, 2)
    floor = fx.GpgFloor(where / "floor", keys, claim_mod.pae(payloads[0]))
    sigs = b"".join(fx.sig_of(lines[k][0]) for k in range(3))
    audit: list[str | Path] = ["git", "wotr", "audit", "--signer", "p00", "--policy", policy]
    try:
        t = measure(
            {
                "gpg": cmd(floor.verify_argv(sigs, "sigs")),
                "audit": cmd(audit, cwd=repo, env=ctx.env),
            },
            _reps(ctx),
            warmup=ctx.warmup,
        )
    finally:
        floor.close()
    per = t.median("audit") / n
    ratio = per / t.median("gpg")
    shutil.rmtree(where, ignore_errors=True)
    return Row(
        "8b",
        f"audit, the signer on all of {n} noted commits (3 claims each)",
        f"{ratio:.2f} x gpg/commit",
        "<= 1.0",
        ratio <= 1.0,
        f"audit {t.median('audit'):.2f} s ({ms(per)}/commit); one gpg --verify of 3 "
        f"signatures {ms(t.median('gpg'))}",
    )


CASES: list[tuple[str, Callable[[Ctx], Row | list[Row]]]] = [
    ("8b", case_8b),
    ("20", case_20),
    ("21", case_21),
    ("23", case_23),
]
