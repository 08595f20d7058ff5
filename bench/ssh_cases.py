"""SSH claims in the bench (issue 14): case 1 with SSH signers and with a mixed policy, and the
marginal cost of one more SSH claim against one ``ssh-keygen -Y verify`` process."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import tomli_w

from testing import gpgkeys, sim, sshkeys
from wotr import claim as claim_mod

from . import fixtures as fx
from .cases import Ctx, Row, _gpg_floor, _times, _verify, ms
from .timing import BenchError, Thunk, cmd, seq

_made: list[sshkeys.SshKey] = []


def _keys(n: int) -> list[sshkeys.SshKey]:
    while len(_made) < n:
        _made.append(sshkeys.make_key(f"ssh{len(_made):02d}"))
    return _made[:n]


def close() -> None:
    for key in _made:
        sshkeys.remove(key)
    _made.clear()


def _line(key: sshkeys.SshKey, claim: claim_mod.Claim) -> bytes:
    payload = claim.payload()
    sig = sshkeys.sign_binary(key, claim_mod.pae(payload))
    return claim_mod.Envelope(payload=payload, sig=sig, keyid=key.fingerprint).line()


def _scene(
    root: Path, gpg: Sequence[gpgkeys.Key], ssh: Sequence[sshkeys.SshKey], art: Sequence[Path]
) -> fx.Scene:
    repo = sim.init_repo(root / "repo")
    policy = fx.policy_for(root / "policy", gpg, 2) if gpg else root / "policy" / "threshold.toml"
    policy.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = (
        tomllib.loads(policy.read_text()) if gpg else {"version": 1, "signers": []}
    )
    doc["signers"] += [{"name": f"s{i:02d}", "ssh": [k.public_line]} for i, k in enumerate(ssh)]
    doc["threshold"] = 2
    policy.write_text(tomli_w.dumps(doc))
    claim = fx.claim_for(repo, art)
    note = b"".join([*fx.signed_lines(gpg, claim), *(_line(k, claim) for k in ssh)])
    sim.write_note(repo, sim.git(repo, "rev-parse", "HEAD"), note)
    return fx.Scene(repo, policy, tuple(art), claim, tuple(gpg), note)


class _SshFloor:
    """An allowed-signers file with the scene's SSH keys and their armored signatures."""

    def __init__(self, root: Path, keys: Sequence[sshkeys.SshKey], data: bytes) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.data = root / "data"
        self.data.write_bytes(data)
        self.allowed = root / "allowed"
        self.allowed.write_text(
            "".join(f'k{i} namespaces="wotr" {k.public_line}\n' for i, k in enumerate(keys))
        )
        self.sigs = []
        for i, k in enumerate(keys):
            path = root / f"sig{i}"
            path.write_bytes(sshkeys.sign(k, data))
            self.sigs.append(path)

    def verify(self, i: int, env: dict[str, str]) -> Thunk:
        argv = ["ssh-keygen", "-Y", "verify", "-f", str(self.allowed), "-I", f"k{i}", "-n", "wotr"]

        def go() -> None:
            with open(self.data, "rb") as data:
                fx_run([*argv, "-s", str(self.sigs[i])], data, env)

        return go


def fx_run(argv: list[str], stdin: BinaryIO, env: dict[str, str]) -> None:
    res = subprocess.run(argv, stdin=stdin, env=env, capture_output=True, check=False)
    if res.returncode != 0:
        raise BenchError(f"ssh-keygen -Y verify failed: {res.stderr.decode()[-200:]}")


def case_1s(ctx: Ctx) -> list[Row]:
    """Case 1 with three SSH signers, and with a mixed policy (two OpenPGP + one SSH)."""
    art = fx.write_artifacts(ctx.root / "c1s" / "dist", 1, 4096)
    rows = []
    for label, n_gpg, n_ssh in (("1s", 0, 3), ("1m", 2, 1)):
        gpg, ssh = ctx.keys.get(n_gpg) if n_gpg else [], _keys(n_ssh)
        scene = _scene(ctx.root / f"c{label}", gpg, ssh, art)
        pae = claim_mod.pae(scene.claim.payload())
        sfloor = _SshFloor(ctx.root / f"c{label}" / "floor-ssh", ssh, pae)
        floor = _gpg_floor(ctx, f"c{label}-gpg", scene) if gpg else None
        gpg_sigs = [fx.sig_of(ln) for ln in fx.iter_lines(scene.note)][:n_gpg]
        parts: list[Thunk] = [
            cmd([sys.executable, "-I", "-c", "pass"], env=ctx.env),
            cmd(["git", "notes", "--ref=wotr", "show", "HEAD"], cwd=scene.repo, env=ctx.env),
            *(cmd(floor.verify_argv(s, f"sig{i}")) for i, s in enumerate(gpg_sigs) if floor),
            *(sfloor.verify(i, ctx.env) for i in range(n_ssh)),
        ]
        try:
            t = _times(
                ctx,
                {
                    "floor": seq(*parts),
                    "wotr": cmd(_verify(ctx, scene, *art), cwd=scene.repo, env=ctx.env),
                },
            )
        finally:
            if floor is not None:
                floor.close()
        ratio = t.median("wotr") / t.median("floor")
        what = "3 SSH claims" if label == "1s" else "2 OpenPGP + 1 SSH claims"
        rows.append(
            Row(
                label,
                f"verify, {what}, 1 artifact",
                f"{ratio:.2f} x floor",
                "<= 2.5",
                ratio <= 2.5,
                f"wotr {ms(t.median('wotr'))}, floor {ms(t.median('floor'))}",
            )
        )
    return rows


def case_2s(ctx: Ctx) -> list[Row]:
    """Per extra SSH claim (30 vs 3) against one ssh-keygen -Y verify process: with the
    in-process ed25519 check (when cryptography is installed) and with ssh-keygen only."""
    art = fx.write_artifacts(ctx.root / "c2s" / "dist", 1, 4096)
    keys = _keys(30)
    s3 = _scene(ctx.root / "c2s" / "n3", [], keys[:3], art)
    s30 = _scene(ctx.root / "c2s" / "n30", [], keys, art)
    sfloor = _SshFloor(ctx.root / "c2s" / "floor", keys[:1], claim_mod.pae(s3.claim.payload()))
    ref = {**ctx.env, "WOTR_SSH_VERIFIER": "ssh-keygen"}
    t = _times(
        ctx,
        {
            "keygen": sfloor.verify(0, ctx.env),
            "3": cmd(_verify(ctx, s3, *art), cwd=s3.repo, env=ctx.env),
            "30": cmd(_verify(ctx, s30, *art), cwd=s30.repo, env=ctx.env),
            "3k": cmd(_verify(ctx, s3, *art), cwd=s3.repo, env=ref),
            "30k": cmd(_verify(ctx, s30, *art), cwd=s30.repo, env=ref),
        },
    )
    rows = []
    for label, suffix, how in (("2s", "", "default verifier"), ("2k", "k", "ssh-keygen only")):
        marginal = (t.median("30" + suffix) - t.median("3" + suffix)) / 27
        ratio = marginal / t.median("keygen")
        rows.append(
            Row(
                label,
                f"verify, 30 SSH claims vs 3 (per extra claim), {how}",
                f"{ratio:.2f} x ssh-keygen",
                "<= 0.5",
                ratio <= 0.5,
                f"30: {ms(t.median('30' + suffix))}, 3: {ms(t.median('3' + suffix))}, "
                f"+{ms(marginal)}/claim, ssh-keygen -Y verify {ms(t.median('keygen'))}",
            )
        )
    return rows


CASES: list[tuple[str, Callable[[Ctx], Row | list[Row]]]] = [("1s", case_1s), ("2s", case_2s)]
