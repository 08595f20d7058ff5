"""The seven cases of issue 6: each builds its scene, times subject and baseline, returns a Row."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from testing import gpgkeys, sim
from wotr import claim as claim_mod
from wotr import hashing

from . import fixtures as fx
from .timing import Thunk, Timings, clock, cmd, measure, run, seq


@dataclass(frozen=True)
class Sizes:
    one_file: int  # case 3, bytes
    files: int  # case 3, number of files hashed together
    file_size: int  # case 3, bytes each
    artifacts: int  # cases 4 and 7
    artifact_size: int
    big_artifact_size: int  # case 7b: the same number of larger artifacts
    noted_commits: int  # case 5
    junk_lines: int  # case 6
    audit_commits: int = 30_000  # case 8 (issue 11)

    @staticmethod
    def full() -> Sizes:
        cores = os.cpu_count() or 1
        return Sizes(1 << 30, max(4, 2 * cores), 256 << 20, 1000, 64 << 10, 1 << 20, 10_000, 1000)

    @staticmethod
    def quick() -> Sizes:
        return Sizes(8 << 20, 4, 1 << 20, 20, 1 << 10, 4 << 10, 300, 50, 300)


@dataclass
class Ctx:
    root: Path
    env: dict[str, str]
    keys: fx.Keys
    sizes: Sizes
    reps: int
    warmup: int


@dataclass(frozen=True)
class Row:
    number: str
    case: str
    measured: str
    target: str
    ok: bool
    detail: str


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _verify(ctx: Ctx, scene: fx.Scene, *args: str | Path) -> Sequence[str | Path]:
    return ["git", "wotr", "verify", "--threshold", "2", "--policy", scene.policy, *args]


def _floor_parts(ctx: Ctx, scene: fx.Scene, floor: fx.GpgFloor) -> list[Thunk]:
    """python3 -I -c pass + git notes show + one gpg --verify per claim (3)."""
    sigs = [fx.sig_of(line) for line in fx.iter_lines(scene.note)][-3:]
    return [
        cmd([sys.executable, "-I", "-c", "pass"], env=ctx.env),
        cmd(["git", "notes", "--ref=wotr", "show", "HEAD"], cwd=scene.repo, env=ctx.env),
        *(cmd(floor.verify_argv(sig, f"sig{i}")) for i, sig in enumerate(sigs)),
    ]


def _gpg_floor(ctx: Ctx, name: str, scene: fx.Scene) -> fx.GpgFloor:
    return fx.GpgFloor(ctx.root / name, scene.keys, claim_mod.pae(scene.claim.payload()))


def _times(ctx: Ctx, thunks: dict[str, Thunk], reps: int | None = None) -> Timings:
    return measure(thunks, reps or ctx.reps, warmup=ctx.warmup)


# --- 1 and 2: verify, per-process costs -----------------------------------------------------


def case_1(ctx: Ctx) -> Row:
    keys = ctx.keys.get(3)
    art = fx.write_artifacts(ctx.root / "c1" / "dist", 1, 4096)
    scene = fx.scene(ctx.root / "c1", keys, signers=3, artifacts=art)
    floor = _gpg_floor(ctx, "c1", scene)
    try:
        t = _times(
            ctx,
            {
                "floor": seq(*_floor_parts(ctx, scene, floor)),
                "wotr": cmd(_verify(ctx, scene, *art), cwd=scene.repo, env=ctx.env),
            },
        )
    finally:
        floor.close()
    ratio = t.median("wotr") / t.median("floor")
    return Row(
        "1",
        "verify, 3 claims, 1 artifact",
        f"{ratio:.2f} x floor",
        "<= 2.0",
        ratio <= 2.0,
        f"wotr {ms(t.median('wotr'))}, floor {ms(t.median('floor'))}",
    )


def case_2(ctx: Ctx) -> Row:
    keys = ctx.keys.get(30)
    art = fx.write_artifacts(ctx.root / "c2" / "dist", 1, 4096)
    s3 = fx.scene(ctx.root / "c2" / "n3", keys, signers=3, artifacts=art)
    s30 = fx.scene(ctx.root / "c2" / "n30", keys, signers=30, artifacts=art)
    floor = _gpg_floor(ctx, "c2", s3)
    one_sig = fx.sig_of(next(fx.iter_lines(s3.note)))
    try:
        t = _times(
            ctx,
            {
                "gpg": cmd(floor.verify_argv(one_sig, "sig")),
                "3": cmd(_verify(ctx, s3, *art), cwd=s3.repo, env=ctx.env),
                "30": cmd(_verify(ctx, s30, *art), cwd=s30.repo, env=ctx.env),
            },
        )
    finally:
        floor.close()
    marginal = (t.median("30") - t.median("3")) / 27
    ratio = marginal / t.median("gpg")
    return Row(
        "2",
        "verify, 30 claims vs 3 (per extra claim)",
        f"{ratio:.2f} x gpg",
        "<= 0.5",
        ratio <= 0.5,
        f"30: {ms(t.median('30'))}, 3: {ms(t.median('3'))}, +{ms(marginal)}/claim, "
        f"gpg --verify {ms(t.median('gpg'))}",
    )


# --- 3: hashing throughput ------------------------------------------------------------------


def _openssl_parallel(paths: Sequence[Path], env: dict[str, str]) -> Thunk:
    """One ``openssl dgst -sha256`` per core, the files split between them."""
    cores = os.cpu_count() or 1
    shares = [list(paths[i::cores]) for i in range(cores) if paths[i::cores]]

    def go() -> None:
        procs = [
            subprocess.Popen(
                ["openssl", "dgst", "-sha256", *map(str, share)],
                stdout=subprocess.DEVNULL,
                env=env,
            )
            for share in shares
        ]
        if any(p.wait() != 0 for p in procs):
            raise fx_error("openssl dgst failed")

    return go


def fx_error(message: str) -> Exception:
    from .timing import BenchError

    return BenchError(message)


def case_3(ctx: Ctx) -> list[Row]:
    sz = ctx.sizes
    (big,) = fx.write_artifacts(ctx.root / "c3" / "one", 1, sz.one_file)
    many = fx.write_artifacts(ctx.root / "c3" / "many", sz.files, sz.file_size)
    expected = hashing.sha256_files([big])[0]
    got = run(["openssl", "dgst", "-sha256", "-r", big]).stdout.split()[0].decode()
    if got != expected:
        raise fx_error("wotr and openssl disagree on a sha256")
    t1 = _times(
        ctx,
        {
            "openssl": cmd(["openssl", "dgst", "-sha256", big], env=ctx.env),
            "wotr": lambda: hashing.sha256_files([big]),
        },
        reps=max(1, min(ctx.reps, 5)),
    )
    t2 = _times(
        ctx,
        {
            "openssl": _openssl_parallel(many, ctx.env),
            "wotr": lambda: hashing.sha256_files(many),
        },
        reps=max(1, min(ctx.reps, 5)),
    )
    r1 = t1.median("openssl") / t1.median("wotr")
    r2 = t2.median("openssl") / t2.median("wotr")
    gib = 1 << 30
    single_rate = sz.one_file / t1.median("wotr")
    total = sz.files * sz.file_size
    cores_used = (total / single_rate) / t2.median("wotr")
    return [
        Row(
            "3a",
            f"sha256 of one {sz.one_file >> 20} MiB file",
            f"{r1:.2f} x openssl",
            ">= 0.9",
            r1 >= 0.9,
            f"wotr {single_rate / gib:.2f} GiB/s, "
            f"openssl {sz.one_file / t1.median('openssl') / gib:.2f} GiB/s",
        ),
        Row(
            "3b",
            f"sha256 of {sz.files} files x {sz.file_size >> 20} MiB",
            f"{r2:.2f} x openssl/core",
            ">= 0.9",
            r2 >= 0.9,
            f"wotr {total / t2.median('wotr') / gib:.2f} GiB/s on {cores_used:.1f} of "
            f"{os.cpu_count()} cores; {min(sz.files, os.cpu_count() or 1)} openssl processes "
            f"{total / t2.median('openssl') / gib:.2f} GiB/s",
        ),
    ]


# --- 4: many artifacts ----------------------------------------------------------------------


def case_4(ctx: Ctx) -> Row:
    sz = ctx.sizes
    keys = ctx.keys.get(3)
    arts = fx.write_artifacts(ctx.root / "c4" / "dist", sz.artifacts, sz.artifact_size)
    scene = fx.scene(ctx.root / "c4", keys, signers=3, artifacts=arts)
    floor = _gpg_floor(ctx, "c4", scene)
    try:
        hash_all = cmd(["openssl", "dgst", "-sha256", *arts], env=ctx.env)
        t = _times(
            ctx,
            {
                "floor": seq(hash_all, *_floor_parts(ctx, scene, floor)),
                "hash": hash_all,
                "wotr": cmd(_verify(ctx, scene, *arts), cwd=scene.repo, env=ctx.env),
            },
        )
    finally:
        floor.close()
    ratio = t.median("wotr") / t.median("floor")
    return Row(
        "4",
        f"verify {sz.artifacts} artifacts, 3 claims",
        f"{ratio:.2f} x (hash+floor)",
        "<= 1.5",
        ratio <= 1.5,
        f"wotr {ms(t.median('wotr'))}, floor {ms(t.median('floor'))} "
        f"(openssl hashing {ms(t.median('hash'))})",
    )


# --- 5: many noted commits ------------------------------------------------------------------


def case_5(ctx: Ctx) -> Row:
    keys = ctx.keys.get(3)
    art = fx.write_artifacts(ctx.root / "c5" / "dist", 1, 4096)
    one = fx.scene(ctx.root / "c5" / "one", keys, signers=3, artifacts=art)
    repo = fx.many_commits_repo(ctx.root / "c5" / "many", ctx.sizes.noted_commits)
    head_note = b"".join(fx.signed_lines(keys, fx.claim_for(repo, art)))
    noted = fx.note_every_commit(repo, head_note, next(fx.iter_lines(one.note)) + b"\n")
    show = ["git", "notes", "--ref=wotr", "show", "HEAD"]
    t = _times(
        ctx,
        {
            "one": cmd(_verify(ctx, one, *art), cwd=one.repo, env=ctx.env),
            "many": cmd(_verify(ctx, one, *art), cwd=repo, env=ctx.env),
            "show1": cmd(show, cwd=one.repo, env=ctx.env),
            "showN": cmd(show, cwd=repo, env=ctx.env),
        },
    )
    ratio = t.median("many") / t.median("one")
    return Row(
        "5",
        f"verify in a repo with {noted} noted commits",
        f"{ratio:.2f} x 1 note",
        "<= 1.2",
        ratio <= 1.2,
        f"{ms(t.median('many'))} vs {ms(t.median('one'))}; git notes show "
        f"{ms(t.median('showN'))} vs {ms(t.median('show1'))}",
    )


# --- 6: hostile note ------------------------------------------------------------------------


def junk_lines(keys: Sequence[gpgkeys.Key], claim: claim_mod.Claim, count: int) -> list[bytes]:
    """Lines that share ``claim``'s payload and name trusted key ids, with BAD signatures."""
    payload = claim.payload()
    out: list[bytes] = []
    per_key = -(-count // len(keys))
    for key in keys:
        sig = gpgkeys.sign_detached(key, claim_mod.pae(payload + b" "))  # over other bytes
        for bad in fx.corrupt_signatures(sig, per_key):
            env = claim_mod.Envelope(payload=payload, sig=bad, keyid=key.fingerprint)
            out.append(env.line())
    return out[:count]


def case_6(ctx: Ctx) -> Row:
    keys = ctx.keys.get(3)
    art = fx.write_artifacts(ctx.root / "c6" / "dist", 1, 4096)
    repo = sim.init_repo(ctx.root / "c6" / "repo")
    claim = fx.claim_for(repo, art)
    junk = junk_lines(keys, claim, ctx.sizes.junk_lines)
    note = b"".join([*junk, *fx.signed_lines(keys, claim)])  # valid claims last
    sim.write_note(repo, sim.git(repo, "rev-parse", "HEAD"), note)
    policy = fx.policy_for(ctx.root / "c6" / "policy", keys, 2)
    argv: list[str | Path] = ["git", "wotr", "verify", "--threshold", "2", "--policy", policy, *art]
    seconds = clock(cmd(argv, cwd=repo, env=ctx.env, expect=0))  # exit 0: still verified
    return Row(
        "6",
        f"verify, {len(junk)} junk lines + 3 valid",
        f"{seconds:.2f} s",
        "<= 30 s, verified",
        seconds <= 30,
        "junk: same payload, trusted key ids, BAD signatures; valid claims last",
    )


# --- 7: sign many artifacts -----------------------------------------------------------------


def case_7(ctx: Ctx) -> list[Row]:
    """The target is relative to hashing time: 64 KiB artifacts (fixed costs show) and 1 MiB."""
    sz = ctx.sizes
    return [
        _sign_case(ctx, "7", sz.artifact_size),
        _sign_case(ctx, "7b", sz.big_artifact_size),
    ]


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


def _sign_case(ctx: Ctx, number: str, size: int) -> Row:
    sz = ctx.sizes
    (key,) = ctx.keys.get(1)
    where = ctx.root / f"c{number}"
    arts = fx.write_artifacts(where / "dist", sz.artifacts, size)
    repo = sim.init_repo(where / "repo")
    env = {**ctx.env, "GNUPGHOME": str(key.home)}
    payload_file = where / "pae"
    payload_file.write_bytes(claim_mod.pae(fx.claim_for(repo, arts).payload()))
    signer: list[str | Path] = [
        "gpg", "--homedir", key.home, "--batch", "--no-tty", "--pinentry-mode", "loopback",
        "--passphrase", "", "-u", f"{key.fingerprint}!", "--yes", "--detach-sign",
        "--output", where / "pae.sig", payload_file,
    ]  # fmt: skip
    hash_all = cmd(["openssl", "dgst", "-sha256", *arts], env=ctx.env)
    t = _times(
        ctx,
        {
            "base": seq(hash_all, cmd(signer, env=env)),
            "hash": hash_all,
            "wotr": cmd(["git", "wotr", "sign", *arts], cwd=repo, env=env),
        },
    )
    lines = list(fx.iter_lines(sim.read_note(repo, sim.git(repo, "rev-parse", "HEAD"))))
    subjects = {len(claim_mod.parse_payload(claim_mod.parse_line(ln).payload).subjects)
                for ln in lines}  # fmt: skip
    if subjects != {sz.artifacts}:
        raise fx_error(f"sign made claims over {subjects} artifacts, not {sz.artifacts}")
    shutil.rmtree(where / "dist", ignore_errors=True)
    ratio = t.median("wotr") / t.median("base")
    return Row(
        number,
        f"sign {sz.artifacts} artifacts of {_size(size)} (one claim)",
        f"{ratio:.2f} x (hash+sign)",
        "<= 1.5",
        ratio <= 1.5,
        f"wotr {ms(t.median('wotr'))}, openssl hashing {ms(t.median('hash'))} + "
        f"gpg --detach-sign = {ms(t.median('base'))}",
    )


# --- 8: audit (issue 11) ------------------------------------------------------------------------


def case_8(ctx: Ctx) -> Row:
    """git wotr audit over many noted commits, against one verify of one commit: the notes that
    cannot hold a counting claim of the signer are passed over without gpg."""
    keys = ctx.keys.get(3)
    art = fx.write_artifacts(ctx.root / "c8" / "dist", 1, 4096)
    one = fx.scene(ctx.root / "c8" / "one", keys, signers=3, artifacts=art)
    repo = fx.many_commits_repo(ctx.root / "c8" / "many", ctx.sizes.audit_commits)
    head_note = b"".join(fx.signed_lines(keys, fx.claim_for(repo, art)))
    noted = fx.note_every_commit(repo, head_note, next(fx.iter_lines(one.note)) + b"\n")
    audit: list[str | Path] = ["git", "wotr", "audit", "--signer", "p00", "--policy", one.policy]
    t = _times(
        ctx,
        {
            "one": cmd(_verify(ctx, one, *art), cwd=one.repo, env=ctx.env),
            "audit": cmd(audit, cwd=repo, env=ctx.env),
        },
        reps=min(ctx.reps, 3),
    )
    per = (t.median("audit") - t.median("one")) / max(1, noted) * 1e6
    return Row(
        "8",
        f"audit over {noted} noted commits",
        f"{per:.0f} us / noted commit",
        "<= 100",
        per <= 100,
        f"audit {ms(t.median('audit'))}, one verify {ms(t.median('one'))}",
    )


CASES: list[tuple[str, Callable[[Ctx], Row | list[Row]]]] = [
    ("1", case_1),
    ("2", case_2),
    ("3", case_3),
    ("4", case_4),
    ("5", case_5),
    ("6", case_6),
    ("7", case_7),
    ("8", case_8),
]
