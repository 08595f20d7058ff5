"""DESIGN §6 and §9 for SSH-signed claims, from the attacker's side (as tests/test_attacks.py
does for OpenPGP). Real ssh-keygen, real git, the CLI as a separate process."""

from __future__ import annotations

import base64
import json
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from testing import sim, sshkeys
from wotr import claim as claim_mod

APP = b"release bytes\n"


class SshKeys:
    def __init__(self) -> None:
        self._cache: dict[str, sshkeys.SshKey] = {}

    def get(self, name: str, kind: str = "ed25519", bits: int | None = None) -> sshkeys.SshKey:
        tag = f"{name}/{kind}/{bits}"
        if tag not in self._cache:
            self._cache[tag] = sshkeys.make_key(name, kind, bits)
        return self._cache[tag]

    def close(self) -> None:
        for key in self._cache.values():
            sshkeys.remove(key)


@pytest.fixture(scope="module")
def sshk() -> Iterator[SshKeys]:
    k = SshKeys()
    yield k
    k.close()


def ssh_policy(
    world: sim.World,
    threshold: int,
    gpg_names: Sequence[str],
    ssh_signers: Mapping[str, Sequence[str]],
    roles: Mapping[str, list[str]] | None = None,
) -> Path:
    """A policy with OpenPGP signers ``gpg_names`` and SSH signers (name -> key lines)."""
    path = world.policy(1, list(gpg_names)) if gpg_names else world.policy_dir / "threshold.toml"
    doc: dict[str, Any] = (
        tomllib.loads(path.read_text()) if gpg_names else {"version": 1, "signers": []}
    )
    for name, lines in ssh_signers.items():
        entry: dict[str, Any] = {"name": name, "ssh": list(lines)}
        if roles and name in roles:
            entry["roles"] = roles[name]
        doc["signers"].append(entry)
    doc["threshold"] = threshold
    path.write_text(tomli_w.dumps(doc))
    return path


def ssh_sign(world: sim.World, key: sshkeys.SshKey, *args: str | Path, ok: bool = True) -> Any:
    res = world.run("sign", "--key", key.public, *args, env={"HOME": str(key.home)})
    if ok:
        assert res.returncode == 0, res.stderr
    return res


def ssh_line(key: sshkeys.SshKey, claim: claim_mod.Claim, namespace: str = "wotr") -> bytes:
    payload = claim.payload()
    sig = sshkeys.sign_binary(key, claim_mod.pae(payload), namespace)
    return claim_mod.Envelope(payload=payload, sig=sig, keyid=key.fingerprint).line()


def add_lines(world: sim.World, commit: str, *lines: bytes) -> None:
    old = sim.read_note(world.repo, commit)
    sim.write_note(world.repo, commit, old + b"".join(ln.rstrip(b"\n") + b"\n" for ln in lines))


def verify_json(
    world: sim.World, *args: str | Path, threshold: int = 2, env: Mapping[str, str] | None = None
) -> tuple[int, Any]:
    res = world.run(
        "verify",
        "--policy",
        world.policy_dir / "threshold.toml",
        "--json",
        "--threshold",
        str(threshold),
        *args,
        env=env,
    )
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def reasons(doc: Any) -> str:
    return " | ".join(r["reason"] for r in doc["rejected"])


NO_KEYGEN = {"WOTR_SSH_KEYGEN": "/nonexistent/ssh-keygen"}  # any ssh-keygen run -> exit 3


@pytest.fixture(autouse=True, params=["in-process", "ssh-keygen"])
def verifier(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with both SSH verifiers: the in-process ed25519 check (cryptography) and
    the reference, ssh-keygen -Y verify, for every signature."""
    choice = str(request.param)
    real = sim.base_env

    def base_env(home: Path | None = None) -> dict[str, str]:
        env = real(home)
        env["WOTR_SSH_VERIFIER"] = choice
        return env

    monkeypatch.setattr(sim, "base_env", base_env)
    monkeypatch.setenv("WOTR_SSH_VERIFIER", choice)
    return str(request.param)


# --- signing and counting ---------------------------------------------------------------------


def test_ssh_signer_signs_and_counts(world: sim.World, sshk: SshKeys) -> None:
    sam = sshk.get("sam")
    ssh_policy(world, 1, [], {"sam": [sam.public_line]})
    art = world.root / "dist" / "app.tar.gz"
    res = ssh_sign(world, sam, art)
    assert sam.fingerprint in res.stdout
    line = json.loads(sim.read_note(world.repo, world.head()).splitlines()[0])
    assert line["signatures"][0]["keyid"] == sam.fingerprint
    assert base64.b64decode(line["signatures"][0]["sig"]).startswith(b"SSHSIG\0\0\0\1")
    code, doc = verify_json(world, art, threshold=1)
    assert code == 0 and doc["artifacts"][0]["signers"] == ["sam"]
    show = world.run("show", "--policy", world.policy_dir / "threshold.toml")
    assert show.returncode == 0 and "sam" in show.stdout


def test_same_payload_as_an_openpgp_signer(world: sim.World, sshk: SshKeys) -> None:
    """Deterministic claim: an SSH signer and an OpenPGP signer sign identical payload bytes."""
    sam = sshk.get("sam")
    ssh_policy(world, 2, ["alice"], {"sam": [sam.public_line]})
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    ssh_sign(world, sam, art)
    lines = [json.loads(x) for x in sim.read_note(world.repo, world.head()).splitlines()]
    assert len(lines) == 2 and lines[0]["payload"] == lines[1]["payload"]


def test_mixed_quorum_counts_two(world: sim.World, sshk: SshKeys) -> None:
    """One OpenPGP signer + one SSH signer make a quorum of 2; either alone does not."""
    sam = sshk.get("sam")
    ssh_policy(world, 2, ["alice", "bob"], {"sam": [sam.public_line]})
    art = world.root / "dist" / "app.tar.gz"
    ssh_sign(world, sam, art)
    code, doc = verify_json(world, art)
    assert code == 1 and doc["artifacts"][0]["signers"] == ["sam"]
    world.sign("alice", art)
    code, doc = verify_json(world, art)
    assert code == 0 and doc["artifacts"][0]["signers"] == ["alice", "sam"]


def test_signer_with_openpgp_and_ssh_keys_counts_once(world: sim.World, sshk: SshKeys) -> None:
    """One signer, one vote, whatever mix of its keys signed."""
    sam, sam2 = sshk.get("sam"), sshk.get("sam2")
    path = ssh_policy(world, 2, ["alice", "bob"], {})
    doc = tomllib.loads(path.read_text())
    doc["signers"][0]["ssh"] = [sam.public_line, sam2.public_line]  # alice: gpg + two ssh keys
    path.write_text(tomli_w.dumps(doc))
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    ssh_sign(world, sam, art)
    ssh_sign(world, sam2, art)
    code, out = verify_json(world, art)
    assert code == 1 and out["artifacts"][0]["signers"] == ["alice"]
    world.sign("bob", art)
    code, out = verify_json(world, art)
    assert code == 0 and out["artifacts"][0]["signers"] == ["alice", "bob"]


# --- rule 1/§9: only the policy's keys, never the user's allowed signers -------------------------


def test_user_allowed_signers_are_never_consulted(
    world: sim.World, sshk: SshKeys, short_tmp: Path
) -> None:
    sam, mallory = sshk.get("sam"), sshk.get("mallory")
    ssh_policy(world, 2, ["alice"], {"sam": [sam.public_line]})
    home = short_tmp / "home"
    (home / ".ssh").mkdir(parents=True)
    allowed = home / ".ssh" / "allowed_signers"
    allowed.write_text(f"* {mallory.public_line}\nsam {mallory.public_line}\n")
    sim.git(world.repo, "config", "gpg.ssh.allowedSignersFile", str(allowed))
    add_lines(world, world.head(), ssh_line(mallory, world.claim({"app.tar.gz": APP})))
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz", env={"HOME": str(home)})
    assert code == 1 and doc["artifacts"][0]["signers"] == ["alice"]
    assert f"signed by key {mallory.fingerprint}, which is not in the policy" in reasons(doc)


def test_untrusted_key_is_refused_before_any_process(world: sim.World, sshk: SshKeys) -> None:
    """An SSH key not in the policy is refused from the key inside the blob: no ssh-keygen run
    (a missing ssh-keygen would make verify exit 3). The keyid hint naming sam changes nothing."""
    sam, mallory = sshk.get("sam"), sshk.get("mallory")
    ssh_policy(world, 1, ["alice"], {"sam": [sam.public_line]})
    claim = world.claim({"app.tar.gz": APP})
    sig = sshkeys.sign_binary(mallory, claim_mod.pae(claim.payload()))
    lie = claim_mod.Envelope(payload=claim.payload(), sig=sig, keyid=sam.fingerprint).line()
    add_lines(world, world.head(), lie)
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz", threshold=1, env=NO_KEYGEN)
    assert code == 1
    assert "which is not in the policy" in reasons(doc)


def test_git_namespace_signature_does_not_count(world: sim.World, sshk: SshKeys) -> None:
    """A signature made for git (namespace 'git') over the very same bytes does not count, and is
    refused before ssh-keygen runs."""
    sam = sshk.get("sam")
    ssh_policy(world, 1, ["alice"], {"sam": [sam.public_line]})
    add_lines(world, world.head(), ssh_line(sam, world.claim({"app.tar.gz": APP}), "git"))
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz", threshold=1, env=NO_KEYGEN)
    assert code == 1
    assert "namespace 'git', not 'wotr'" in reasons(doc)


def test_forged_namespace_field_is_caught_by_ssh_keygen(world: sim.World, sshk: SshKeys) -> None:
    """A 'git' signature whose namespace field was rewritten to 'wotr' passes the parser's gate
    but not ssh-keygen (the namespace is inside the signed data)."""
    sam = sshk.get("sam")
    ssh_policy(world, 1, ["alice"], {"sam": [sam.public_line]})
    claim = world.claim({"app.tar.gz": APP})
    sig = sshkeys.sign_binary(sam, claim_mod.pae(claim.payload()), "gitx")
    forged = sig.replace(b"\0\0\0\4gitx", b"\0\0\0\4wotr", 1)
    assert forged != sig
    line = claim_mod.Envelope(payload=claim.payload(), sig=forged, keyid=sam.fingerprint).line()
    add_lines(world, world.head(), line)
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz", threshold=1)
    assert code == 1 and "bad SSH signature" in reasons(doc)


def test_signature_over_other_bytes(world: sim.World, sshk: SshKeys) -> None:
    """sam's real signature of another claim, put beside a claim he never signed."""
    sam = sshk.get("sam")
    ssh_policy(world, 1, ["alice"], {"sam": [sam.public_line]})
    signed = world.claim({"app.tar.gz": b"other bytes\n"})
    sig = sshkeys.sign_binary(sam, claim_mod.pae(signed.payload()))
    wanted = world.claim({"app.tar.gz": APP})
    line = claim_mod.Envelope(payload=wanted.payload(), sig=sig, keyid=sam.fingerprint).line()
    add_lines(world, world.head(), line)
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz", threshold=1)
    assert code == 1 and "bad SSH signature" in reasons(doc)
    assert doc["artifacts"][0]["signers"] == []


def test_several_blobs_or_trailing_bytes_are_refused(world: sim.World, sshk: SshKeys) -> None:
    sam = sshk.get("sam")
    ssh_policy(world, 1, ["alice"], {"sam": [sam.public_line]})
    claim = world.claim({"app.tar.gz": APP})
    sig = sshkeys.sign_binary(sam, claim_mod.pae(claim.payload()))
    for bad in (sig + sig, sig + b"\0", sig[:-1]):
        line = claim_mod.Envelope(payload=claim.payload(), sig=bad, keyid=sam.fingerprint).line()
        add_lines(world, world.head(), line)
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz", threshold=1, env=NO_KEYGEN)
    assert code == 1
    assert reasons(doc).count("unexpected bytes after the end") == 2
    assert "truncated" in reasons(doc)


# --- rule 4, 5, 6 ----------------------------------------------------------------------------


def test_copied_ssh_claim_counts_nothing_on_another_commit(world: sim.World, sshk: SshKeys) -> None:
    sam = sshk.get("sam")
    ssh_policy(world, 1, ["alice"], {"sam": [sam.public_line]})
    art = world.root / "dist" / "app.tar.gz"
    old = world.head()
    ssh_sign(world, sam, art)
    new = sim.commit(world.repo, "next")
    add_lines(world, new, sim.read_note(world.repo, old))
    code, doc = verify_json(world, art, threshold=1, env=NO_KEYGEN)
    assert code == 1 and "copied?" in reasons(doc)


def test_moved_tag_fails_for_ssh_claims(world: sim.World, sshk: SshKeys) -> None:
    sam, sue = sshk.get("sam"), sshk.get("sue")
    ssh_policy(world, 2, [], {"sam": [sam.public_line], "sue": [sue.public_line]})
    art = world.root / "dist" / "app.tar.gz"
    old = world.head()
    sim.git(world.repo, "tag", "v1.0")
    for k in (sam, sue):
        ssh_sign(world, k, "--rev", "v1.0", art)
    code, _ = verify_json(world, "--rev", "v1.0", art)
    assert code == 0
    sim.commit(world.repo, "next")
    sim.git(world.repo, "tag", "-f", "v0.9", old)
    code, doc = verify_json(world, "--rev", "v0.9", art)
    assert code == 1 and "not refs/tags/v0.9" in reasons(doc)


def test_role_limits_apply_to_ssh_signers(world: sim.World, sshk: SshKeys) -> None:
    sam = sshk.get("sam")
    ssh_policy(world, 1, ["alice"], {"sam": [sam.public_line]}, roles={"sam": ["ci"]})
    art = world.root / "dist" / "app.tar.gz"
    ssh_sign(world, sam, "--role", "author", art)
    code, doc = verify_json(world, art, threshold=1)
    assert code == 1 and "may not claim role 'author'" in reasons(doc)


def test_two_digests_from_one_ssh_signer_count_for_neither(world: sim.World, sshk: SshKeys) -> None:
    sam, sue = sshk.get("sam"), sshk.get("sue")
    ssh_policy(world, 1, [], {"sam": [sam.public_line], "sue": [sue.public_line]})
    add_lines(
        world,
        world.head(),
        ssh_line(sam, world.claim({"app.tar.gz": APP})),
        ssh_line(sam, world.claim({"app.tar.gz": b"evil\n"})),
    )
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz", threshold=1)
    assert code == 1 and doc["artifacts"][0]["signers"] == []


# --- rule 8: floods --------------------------------------------------------------------------


def _forged(key: sshkeys.SshKey, claim: claim_mod.Claim, n: int) -> list[bytes]:
    """Copies of ``key``'s real signature with the signature value changed: no private key
    needed, each names ``key`` and each costs a check."""
    sig = sshkeys.sign_binary(key, claim_mod.pae(claim.payload()))
    out = []
    for i in range(n):
        # R (the first half of the ed25519 value) changed: S stays canonical, so each copy
        # passes the parser and costs a real check.
        r = bytes(b ^ m for b, m in zip(sig[-64:-60], (i + 1).to_bytes(4, "big"), strict=True))
        bad = sig[:-64] + r + sig[-60:]
        out.append(claim_mod.Envelope(payload=claim.payload(), sig=bad, keyid="x").line())
    return out


def test_ssh_flood_naming_one_key_does_not_starve_the_others(
    world: sim.World, sshk: SshKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forged copies of sam's signature placed first use up sam's turns, not sue's or alice's;
    past the per-commit cap nothing more is checked (and nothing forged counts)."""
    from wotr import ssh as ssh_mod
    from wotr import verify as verify_mod
    from wotr.policy import load

    sam, sue = sshk.get("sam"), sshk.get("sue")
    ssh_policy(world, 2, ["alice"], {"sam": [sam.public_line], "sue": [sue.public_line]})
    claim = world.claim({"app.tar.gz": APP})
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    honest = sim.read_note(world.repo, world.head()) + ssh_line(sue, claim)
    note = b"".join(_forged(sam, claim, 30)) + honest
    monkeypatch.setattr(verify_mod, "MAX_CHECKED_SIGNATURES", 6)
    calls: list[int] = []
    real = ssh_mod.Verifier.check

    def counting(self: Any, items: Any) -> Any:
        calls.append(len(items))
        return real(self, items)

    monkeypatch.setattr(ssh_mod.Verifier, "check", counting)
    policy = load(world.policy_dir / "threshold.toml")
    ctx = verify_mod.Context(world.head(), world.tree(), None)
    report = verify_mod.evaluate(policy, note, ctx, None, strict=False)
    assert report.result is not None and report.result.verified, report.result
    assert report.result.artifacts[0].signers == ("alice", "sue")
    assert sum(calls) <= 5  # sue's and sam's turns; alice's goes to gpg
    text = " | ".join(r.reason for r in report.result.rejected)
    assert "not checked: more than 6 signatures" in text


def test_flood_of_foreign_ssh_signatures_starts_no_process(
    world: sim.World, sshk: SshKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signatures by keys outside the policy never reach a verifier (no ssh-keygen, no
    in-process check, not even the private directory)."""
    from wotr import ssh as ssh_mod
    from wotr import verify as verify_mod
    from wotr.policy import load

    sam, mallory = sshk.get("sam"), sshk.get("mallory")
    ssh_policy(world, 1, ["alice"], {"sam": [sam.public_line]})
    claim = world.claim({"app.tar.gz": APP})
    add_lines(world, world.head(), *_forged(mallory, claim, 200))
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz", threshold=1, env=NO_KEYGEN)
    assert code == 1 and reasons(doc).count("not in the policy") == 200

    def refuse(*a: Any, **kw: Any) -> None:
        raise AssertionError("an SSH verifier was set up for signatures by foreign keys")

    monkeypatch.setattr(ssh_mod.Verifier, "__init__", refuse)
    policy = load(world.policy_dir / "threshold.toml")
    ctx = verify_mod.Context(world.head(), world.tree(), None)
    report = verify_mod.evaluate(
        policy, sim.read_note(world.repo, world.head()), ctx, None, strict=False
    )
    assert report.result is not None and not report.result.verified


def test_missing_ssh_keygen_is_an_environment_error(world: sim.World, sshk: SshKeys) -> None:
    sam = sshk.get("sam")
    ssh_policy(world, 1, ["alice"], {"sam": [sam.public_line]})
    add_lines(world, world.head(), ssh_line(sam, world.claim({"app.tar.gz": APP})))
    res = world.run(
        "verify",
        "--policy",
        world.policy_dir / "threshold.toml",
        world.root / "dist" / "app.tar.gz",
        env={"WOTR_SSH_KEYGEN": "no-such-ssh-keygen", "WOTR_SSH_VERIFIER": "ssh-keygen"},
    )
    assert res.returncode == 3 and "openssh-client" in res.stderr


# --- the policy -------------------------------------------------------------------------------


def test_same_ssh_key_under_two_signers_is_refused(world: sim.World, sshk: SshKeys) -> None:
    sam = sshk.get("sam")
    ssh_policy(world, 1, ["alice"], {"sam": [sam.public_line], "sam2": [sam.public_line]})
    res = world.verify(world.root / "dist" / "app.tar.gz")
    assert res.returncode == 2
    assert "signer 'sam2'.ssh[0]" in res.stderr and "also listed under 'sam'" in res.stderr
    assert "threshold.toml" in res.stderr


@pytest.mark.parametrize(
    ("kind", "bits", "why"),
    [("rsa", 1024, "RSA keys under 2048 bits"), ("dsa", None, "DSA keys are refused")],
)
def test_weak_ssh_keys_are_refused(
    world: sim.World, sshk: SshKeys, kind: str, bits: int | None, why: str
) -> None:
    try:
        weak = sshk.get(f"weak{kind}", kind, bits)
    except Exception:
        pytest.skip(f"ssh-keygen here cannot make a {kind} key")
    ssh_policy(world, 1, ["alice"], {"weak": [weak.public_line]})
    res = world.verify(world.root / "dist" / "app.tar.gz")
    assert res.returncode == 2 and why in res.stderr and "'weak'.ssh[0]" in res.stderr


# --- everywhere else: config-driven signing, agent, init, bundles ---------------------------


def test_git_config_ssh_signing_is_followed(world: sim.World, sshk: SshKeys) -> None:
    """gpg.format = ssh and user.signingkey = a .pub path: sign uses SSH, as git would."""
    sam = sshk.get("sam")
    ssh_policy(world, 1, ["alice"], {"sam": [sam.public_line]})
    sim.git(world.repo, "config", "gpg.format", "ssh")
    sim.git(world.repo, "config", "user.signingkey", str(sam.public))
    res = world.run("sign", world.root / "dist" / "app.tar.gz", env={"HOME": str(sam.home)})
    assert res.returncode == 0, res.stderr
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz", threshold=1)
    assert code == 0 and doc["artifacts"][0]["signers"] == ["sam"]


def test_key_literal_signs_through_ssh_agent(
    world: sim.World, sshk: SshKeys, short_tmp: Path
) -> None:
    """user.signingkey = 'key::ssh-ed25519 …' with the private key only in ssh-agent."""
    import subprocess

    sam = sshk.get("sam")
    ssh_policy(world, 1, ["alice"], {"sam": [sam.public_line]})
    sock = short_tmp / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            import time

            time.sleep(0.02)
        env = {"SSH_AUTH_SOCK": str(sock), "HOME": str(short_tmp)}
        subprocess.run(
            ["ssh-add", "-q", str(sam.private)], env=env, check=True, capture_output=True
        )
        sim.git(world.repo, "config", "gpg.format", "ssh")
        sim.git(world.repo, "config", "user.signingkey", f"key::{sam.public_line}")
        res = world.run("sign", world.root / "dist" / "app.tar.gz", env=env)
        assert res.returncode == 0, res.stderr
    finally:
        agent.terminate()
        agent.wait()
    code, doc = verify_json(world, world.root / "dist" / "app.tar.gz", threshold=1)
    assert code == 0 and doc["artifacts"][0]["signers"] == ["sam"]


def test_failed_ssh_sign_leaves_the_notes_ref_alone(world: sim.World, sshk: SshKeys) -> None:
    sam = sshk.get("sam")
    art = world.root / "dist" / "app.tar.gz"
    ssh_sign(world, sam, art)
    tip = sim.notes_tip(world.repo)
    # the public half only (no private key beside it, no agent)
    lonely = world.root / "lonely.pub"
    lonely.write_text(sshk.get("sue").public_line + "\n")
    res = world.run("sign", "--key", lonely, art, env={"HOME": str(sam.home)})
    assert res.returncode == 2 and "ssh-keygen could not sign" in res.stderr
    assert "Traceback" not in res.stderr
    assert sim.notes_tip(world.repo) == tip


def test_init_offers_the_configured_ssh_key(world: sim.World, sshk: SshKeys) -> None:
    sam = sshk.get("sam")
    sim.git(world.repo, "config", "gpg.format", "ssh")
    sim.git(world.repo, "config", "user.signingkey", str(sam.public))
    res = world.run("init")
    assert res.returncode == 0, res.stderr
    doc = tomllib.loads((world.repo / "threshold.toml").read_text())
    assert doc["signers"][0]["ssh"][0].startswith(sam.public_line.rsplit(" ", 1)[0])
    # ...and the pinned policy verifies what that key signs.
    res = world.run("sign", world.root / "dist" / "app.tar.gz", env={"HOME": str(sam.home)})
    assert res.returncode == 0, res.stderr
    res = world.run("verify", world.root / "dist" / "app.tar.gz")
    assert res.returncode == 0, res.stderr


def test_bundle_with_ssh_claims_verifies_offline(world: sim.World, sshk: SshKeys) -> None:
    sam = sshk.get("sam")
    ssh_policy(world, 2, ["alice"], {"sam": [sam.public_line]})
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    ssh_sign(world, sam, art)
    bundle = world.root / "app.tar.gz.wotr"
    res = world.run("export", "-o", bundle)
    assert res.returncode == 0, res.stderr
    res = world.run(
        "verify",
        "--policy",
        world.policy_dir / "threshold.toml",
        "--bundle",
        bundle,
        art,
        cwd=world.root,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_build_sign_with_an_ssh_key(world: sim.World, sshk: SshKeys) -> None:
    """`build --sign` signs with SSH through the same sign path (here via --key)."""
    sam = sshk.get("sam")
    makefile = (
        b"dist/app.tar.gz: src/main.c\n\tmkdir -p dist\n\tgzip -n < src/main.c > dist/app.tar.gz\n"
    )
    recipe = b'[build]\ncommand = ["make"]\nartifacts = ["dist/*.tar.gz"]\n'
    sim.commit(world.repo, "project", files={"Makefile": makefile, "wotr.toml": recipe})
    policy = ssh_policy(world, 1, ["alice"], {"sam": [sam.public_line]})
    res = world.run(
        "build",
        "--build-root",
        world.root / "broot",
        "--sign",
        "--key",
        sam.public,
        "--policy",
        policy,
        env={"HOME": str(sam.home)},
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert sam.fingerprint in res.stdout
    res = world.run("verify", "--policy", policy, "--threshold", "1")
    assert res.returncode == 0, res.stdout + res.stderr


def test_verify_file_hook_with_ssh_signers(world: sim.World, sshk: SshKeys) -> None:
    """hooks/verify-file (offline, FILE.wotr beside the file, the installer's policy) counts
    SSH signers as it counts OpenPGP ones: a mixed quorum installs, one signer alone does not."""
    import os
    import subprocess
    import sys

    sam = sshk.get("sam")
    policy = ssh_policy(world, 2, ["alice"], {"sam": [sam.public_line]})
    art = world.root / "dist" / "app.tar.gz"
    ssh_sign(world, sam, art)

    def hook() -> int:
        assert world.run("export", "-o", str(art) + ".wotr").returncode == 0
        env = {k: v for k, v in sim.base_env().items() if not k.startswith("WOTR_")}
        env["WOTR_POLICY"] = str(policy)
        env["WOTR_BUNDLES"] = str(world.root / "bundles")
        (world.root / "bundles").mkdir(exist_ok=True)
        env["WOTR_VERIFY_CMD"] = f"{sys.executable} -m wotr verify"
        env["PYTHONPATH"] = os.pathsep.join(sys.path)
        repo_root = Path(__file__).resolve().parents[1]
        res = subprocess.run(
            [sys.executable, repo_root / "hooks" / "verify-file", art],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert "Traceback" not in res.stderr
        return res.returncode

    assert hook() == 1
    world.sign("alice", art)
    assert hook() == 0


# --- DESIGN §8: withdrawals signed with an SSH key ----------------------------------------------


def _ssh_withdrawal(world: sim.World, key: sshkeys.SshKey, everything: bool = True) -> bytes:
    import hashlib

    from wotr.withdraw import Withdrawal

    subjects = () if everything else (("app.tar.gz", hashlib.sha256(APP).hexdigest()),)
    wd = Withdrawal(world.head(), world.tree(), subjects, everything)
    sig = sshkeys.sign_binary(key, claim_mod.pae(wd.payload()))
    return claim_mod.Envelope(payload=wd.payload(), sig=sig, keyid=key.fingerprint).line()


def test_ssh_withdrawal_cancels_its_signers_claims(world: sim.World, sshk: SshKeys) -> None:
    sam = sshk.get("sam")
    ssh_policy(world, 2, ["alice", "bob"], {"sam": [sam.public_line]})
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    ssh_sign(world, sam, art)
    assert verify_json(world, art)[0] == 0
    add_lines(world, world.head(), _ssh_withdrawal(world, sam, everything=False))
    code, doc = verify_json(world, art)
    assert code == 1 and doc["artifacts"][0]["signers"] == ["alice"]


def test_unchecked_ssh_withdrawal_is_taken_at_its_worst(
    world: sim.World, sshk: SshKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sam withdrew (SSH key). Forged copies of sam's claim, placed before the withdrawal, push
    it past the gpg budget: an unchecked withdrawal naming sam's key must still cancel sam's
    claims (a limit turns a yes into a no, never a no into a yes). It was dropped because
    withdraw.left_out only read OpenPGP issuers, and the release verified."""
    from wotr import verify as verify_mod
    from wotr.policy import load

    sam = sshk.get("sam")
    ssh_policy(world, 2, ["alice", "bob"], {"sam": [sam.public_line]})
    claim = world.claim({"app.tar.gz": APP})
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    honest = sim.read_note(world.repo, world.head()) + ssh_line(sam, claim) + b"\n"
    withdrawal = _ssh_withdrawal(world, sam) + b"\n"
    policy = load(world.policy_dir / "threshold.toml")
    ctx = verify_mod.Context(world.head(), world.tree(), None)
    held = verify_mod.evaluate(policy, honest + withdrawal, ctx, None, strict=False).result
    assert held is not None and not held.verified
    monkeypatch.setattr(verify_mod, "MAX_CHECKED_SIGNATURES", 6)
    flood = b"".join(ln.rstrip(b"\n") + b"\n" for ln in _forged(sam, claim, 30))
    note = honest + flood + withdrawal
    report = verify_mod.evaluate(policy, note, ctx, None, strict=False)
    assert report.result is not None and not report.result.verified, report.result
    assert "sam" not in report.result.artifacts[0].signers


def test_cli_withdraw_with_an_ssh_key(world: sim.World, sshk: SshKeys) -> None:
    """An SSH signer withdraws through the CLI as it signs (--key names its SSH key); the
    command used to send every withdrawal to gpg, leaving SSH signers no way to withdraw."""
    sam = sshk.get("sam")
    ssh_policy(world, 2, ["alice", "bob"], {"sam": [sam.public_line]})
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    ssh_sign(world, sam, art)
    assert verify_json(world, art)[0] == 0
    res = world.run("withdraw", "--key", sam.public, "--all", env={"HOME": str(sam.home)})
    assert res.returncode == 0, res.stderr
    assert sam.fingerprint in res.stdout
    code, doc = verify_json(world, art)
    assert code == 1 and doc["artifacts"][0]["signers"] == ["alice"]


def test_audit_finds_the_claims_of_an_ssh_signer(world: sim.World, sshk: SshKeys) -> None:
    """git wotr audit --signer sam (an SSH signer) lists the releases that depend on sam. It
    looked for OpenPGP issuers only and said no release depended on sam (exit 0): a wrong
    all-clear after a key compromise."""
    sam = sshk.get("sam")
    pol = ssh_policy(world, 2, ["alice", "bob"], {"sam": [sam.public_line]})
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    ssh_sign(world, sam, art)
    res = world.run("audit", "--signer", "sam", "--policy", pol, "--json")
    doc = json.loads(res.stdout)
    assert res.returncode == 1, res.stdout
    assert [(r["commit"], r["verified_without"]) for r in doc["releases"]] == [
        (world.head(), False)
    ]
