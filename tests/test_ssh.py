"""SSH keys and SSHSIG blobs (wotr/_sshsig.py), the policy's ``ssh`` field, wotr/ssh.py."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testing import sshkeys
from wotr import _sshsig, policy, ssh
from wotr.errors import PolicyError


def _s(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def _line(blob: bytes, written: str | None = None) -> str:
    kind = written or blob[4 : 4 + int.from_bytes(blob[:4], "big")].decode()
    return f"{kind} {base64.b64encode(blob).decode()} comment"


FIDO_ED = _s(b"sk-ssh-ed25519@openssh.com") + _s(b"\x11" * 32) + _s(b"ssh:")
FIDO_EC = (
    _s(b"sk-ecdsa-sha2-nistp256@openssh.com") + _s(b"nistp256") + _s(b"\x04" + b"\x22" * 64)
) + _s(b"ssh:")


@pytest.fixture(scope="module")
def ed() -> Iterator[sshkeys.SshKey]:
    k = sshkeys.make_key("ed")
    yield k
    sshkeys.remove(k)


def test_fingerprint_is_ssh_keygen_s(ed: sshkeys.SshKey) -> None:
    assert _sshsig.parse_key_line(ed.public_line).fingerprint == ed.fingerprint


def test_fido_keys_are_accepted() -> None:
    """FIDO keys (no hardware needed to verify): accepted in the policy; their signatures carry
    flags and a counter after the signature value."""
    for blob in (FIDO_ED, FIDO_EC):
        key = _sshsig.parse_key_line(_line(blob))
        assert key.type.startswith("sk-")
    sig = (
        _sshsig.MAGIC
        + (1).to_bytes(4, "big")
        + _s(FIDO_ED)
        + _s(b"wotr")
        + _s(b"")
        + _s(b"sha512")
        + _s(_s(b"sk-ssh-ed25519@openssh.com") + _s(b"\0" * 64) + b"\x01" + (7).to_bytes(4, "big"))
    )
    parsed = _sshsig.parse_signature(sig)
    assert parsed.key.type == "sk-ssh-ed25519@openssh.com" and parsed.hash_algorithm == "sha512"


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "DSA keys are refused"),
        (_line(_s(b"ssh-dss") + _s(b"\1") * 4), "DSA keys are refused"),
        (_line(_s(b"ssh-rsa") + _s(b"\1\0\1") + _s(b"\x7f" + b"\xff" * 127)), "under 2048 bits"),
        (_line(_s(b"ssh-ed25519-cert-v01@openssh.com") + _s(b"x")), "certificates are not"),
        (_line(_s(b"ssh-foo") + _s(b"x")), "not accepted"),
        (_line(_s(b"ssh-ed25519") + _s(b"\1" * 31)), "32 bytes"),
        (_line(_s(b"ssh-ed25519") + _s(b"\1" * 32) + b"\0"), "unexpected bytes"),
        (_line(_s(b"ssh-ed25519") + _s(b"\1" * 32), "ecdsa-sha2-nistp256"), "the line says"),
        ("ssh-ed25519 not*base64", "not valid base64"),
        ("ssh-ed25519", r"not '<type> <base64> \[comment\]'"),
        (_line(_s(b"ecdsa-sha2-nistp256") + _s(b"nistp384") + _s(b"\4" * 65)), "curve"),
    ],
)
def test_bad_key_lines_are_refused(line: str, why: str) -> None:
    with pytest.raises(_sshsig.SshFormatError, match=why):
        _sshsig.parse_key_line(line)


def test_rsa_2048_and_ecdsa_keys_are_accepted() -> None:
    for kind, bits in (("rsa", 2048), ("ecdsa", 256), ("ecdsa", 521)):
        key = sshkeys.make_key(f"{kind}{bits}", kind, bits)
        try:
            data = b"data"
            blob = sshkeys.sign_binary(key, data)
            parsed = _sshsig.parse_signature(blob)
            assert parsed.key.fingerprint == key.fingerprint
            if kind == "rsa":
                assert parsed.sig_type in ("rsa-sha2-256", "rsa-sha2-512")
            pk = _sshsig.parse_key_line(key.public_line)
            with ssh.Verifier([(pk.fingerprint, pk.line())]) as v:
                assert [c.ok for c in v.check([(data, blob), (b"other", blob)])] == [True, False]
        finally:
            sshkeys.remove(key)


def test_signature_gate(ed: sshkeys.SshKey) -> None:
    blob = sshkeys.sign_binary(ed, b"x")
    assert _sshsig.parse_signature(blob).key.fingerprint == ed.fingerprint
    with pytest.raises(_sshsig.SshFormatError, match="namespace 'git'"):
        _sshsig.parse_signature(sshkeys.sign_binary(ed, b"x", "git"))
    with pytest.raises(_sshsig.SshFormatError, match="version 2"):
        _sshsig.parse_signature(blob[:6] + (2).to_bytes(4, "big") + blob[10:])
    weak = blob.replace(_s(b"sha512"), _s(b"sha384"), 1)
    with pytest.raises(_sshsig.SshFormatError, match="is not sha512 or sha256"):
        _sshsig.parse_signature(weak)
    with pytest.raises(_sshsig.SshFormatError, match="unexpected bytes"):
        _sshsig.parse_signature(blob + blob)
    with pytest.raises(_sshsig.SshFormatError, match="no SSHSIG magic"):
        _sshsig.parse_signature(b"\x89" + blob)
    at = blob.rindex(b"ssh-ed25519")  # the signature's own type, after the key's
    wrong_type = blob[:at] + b"rsa-sha2-25" + blob[at + 11 :]
    with pytest.raises(_sshsig.SshFormatError, match="does not make 'rsa-sha2-25' signatures"):
        _sshsig.parse_signature(wrong_type)
    assert _sshsig.dearmor(sshkeys.sign(ed, b"x")) == blob
    assert _sshsig.dearmor(_sshsig.armor(blob)) == blob


def test_verifier_uses_only_the_given_keys(ed: sshkeys.SshKey) -> None:
    other = sshkeys.make_key("other")
    try:
        blob = sshkeys.sign_binary(other, b"x")
        pk = _sshsig.parse_key_line(ed.public_line)
        with ssh.Verifier([(pk.fingerprint, pk.line())]) as v:
            (res,) = v.check([(b"x", blob)])
            assert v.calls == 0
        assert not res.ok and "not in the policy" in res.reason
    finally:
        sshkeys.remove(other)


def _policy(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "threshold.toml"
    path.write_text(f"version = 1\nthreshold = 1\n{body}")
    return path


def test_policy_ssh_only_signer(tmp_path: Path, ed: sshkeys.SshKey) -> None:
    loaded = policy.load(
        _policy(tmp_path, f'[[signers]]\nname = "sam"\nssh = ["{ed.public_line}"]\n')
    )
    assert loaded.signers[0].fingerprints == frozenset({ed.fingerprint})
    assert loaded.signer_for(ed.fingerprint) == loaded.signers[0]
    assert loaded.ssh_keys == ((ed.fingerprint, ed.public_line.rsplit(" ", 1)[0]),)
    assert loaded.keyring == b""


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ('ssh = ["ssh-dss AAAA"]', r"signers\[0\]|'sam'.ssh\[0\]: not an SSH public key"),
        ('ssh = ["garbage"]', r"'sam'.ssh\[0\]: not an SSH public key"),
        ("ssh = []", r"'sam'.ssh must be a non-empty list"),
        ('ssh = "ssh-ed25519 AAAA"', r"'sam'.ssh must be a non-empty list"),
    ],
)
def test_policy_refuses_bad_ssh_fields(tmp_path: Path, body: str, why: str) -> None:
    path = _policy(tmp_path, f'[[signers]]\nname = "sam"\n{body}\n')
    with pytest.raises(PolicyError, match=why) as err:
        policy.load(path)
    assert str(path) in str(err.value)


def test_policy_refuses_one_key_under_two_signers(tmp_path: Path, ed: sshkeys.SshKey) -> None:
    body = "".join(
        f'[[signers]]\nname = "{n}"\nssh = ["{ed.public_line}"]\n' for n in ("sam", "sue")
    )
    with pytest.raises(PolicyError, match="also listed under 'sam'"):
        policy.load(_policy(tmp_path, body))
    # the same key under another comment is the same key
    other_comment = ed.public_line.rsplit(" ", 1)[0] + " laptop"
    body = (
        f'[[signers]]\nname = "sam"\nssh = ["{ed.public_line}"]\n'
        f'[[signers]]\nname = "sue"\nssh = ["{other_comment}"]\n'
    )
    with pytest.raises(PolicyError, match="also listed under 'sam'"):
        policy.load(_policy(tmp_path, body))


def test_a_signer_needs_some_key(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="fingerprints must be a non-empty list"):
        policy.load(_policy(tmp_path, '[[signers]]\nname = "sam"\n'))


def test_which_keys_mean_ssh(tmp_path: Path, ed: sshkeys.SshKey) -> None:
    assert ssh.uses_ssh(f"key::{ed.public_line}", None)
    assert ssh.uses_ssh(str(ed.public), None)
    assert ssh.uses_ssh(str(ed.private), None)
    assert not ssh.uses_ssh("D477D555F5C9AB9B22254148945692142FCF7B52", "ssh")
    assert not ssh.uses_ssh("alice@example.org", None)
    assert ssh.uses_ssh(None, "ssh") and ssh.uses_ssh(None, "SSH")
    assert not ssh.uses_ssh(None, "openpgp") and not ssh.uses_ssh(None, None)
    assert ssh.configured_key(str(ed.public), "ssh") is not None
    assert ssh.configured_key(str(ed.public), None) is None
    assert ssh.configured_key(str(tmp_path / "missing.pub"), "ssh") is None


def _blob(pub: bytes, namespace: bytes, hash_alg: bytes, value: bytes) -> bytes:
    inner = _s(b"ssh-ed25519") + _s(value)
    body = _s(pub) + _s(namespace) + _s(b"") + _s(hash_alg) + _s(inner)
    return _sshsig.MAGIC + (1).to_bytes(4, "big") + body


def _check(
    monkeypatch: pytest.MonkeyPatch, choice: str, key: _sshsig.PublicKey, cases: list[Any]
) -> tuple[list[bool], int, int]:
    monkeypatch.setenv("WOTR_SSH_VERIFIER", choice)
    with ssh.Verifier([(key.fingerprint, key.line())]) as v:
        res = v.check(cases)
        return [r.ok for r in res], v.calls, v.in_process


def test_in_process_and_ssh_keygen_agree(
    ed: sshkeys.SshKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The optional in-process ed25519 check gives ssh-keygen's answer on good signatures,
    signatures over other bytes, altered R or S, sha256 SSHSIG blobs (made here with the private
    key), a hash name that does not match the digest signed, and a rewritten namespace field."""
    import hashlib

    from cryptography.hazmat.primitives.serialization import load_ssh_private_key

    priv: Any = load_ssh_private_key(ed.private.read_bytes(), None)
    key = _sshsig.parse_key_line(ed.public_line)
    data = b"the PAE bytes"
    good = sshkeys.sign_binary(ed, data)

    def made(hash_alg: str, signed_alg: str, namespace: bytes = b"wotr") -> bytes:
        digest = hashlib.new(signed_alg, data).digest()
        signed = _sshsig.MAGIC + _s(namespace) + _s(b"") + _s(signed_alg.encode()) + _s(digest)
        return _blob(key.blob, b"wotr", hash_alg.encode(), priv.sign(signed))

    flip_r = good[:-64] + bytes([good[-64] ^ 1]) + good[-63:]
    flip_s = good[:-32] + bytes([good[-32] ^ 1]) + good[-31:]
    git_sig = sshkeys.sign_binary(ed, data, "gitx")
    renamed = git_sig.replace(_s(b"gitx"), _s(b"wotr"), 1)
    cases = [
        (data, good),
        (b"other bytes", good),
        (data, flip_r),
        (data, flip_s),
        (data, made("sha256", "sha256")),
        (data, made("sha256", "sha512")),
        (data, made("sha512", "sha512", b"git")),
        (data, renamed),
    ]
    expected = [True, False, False, False, True, False, False, False]
    fast, calls, inproc = _check(monkeypatch, "in-process", key, cases)
    ref, ref_calls, ref_inproc = _check(monkeypatch, "ssh-keygen", key, cases)
    assert fast == ref == expected
    assert (calls, inproc) == (0, len(cases)) and (ref_calls, ref_inproc) == (len(cases), 0)


def test_non_canonical_ed25519_s_is_refused(
    ed: sshkeys.SshKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S + L is a second encoding of a real signature that OpenSSH 9.2's ssh-keygen accepts;
    wotr refuses it before either verifier, so one signature has one form."""
    key = _sshsig.parse_key_line(ed.public_line)
    good = sshkeys.sign_binary(ed, b"d")
    big = int.from_bytes(good[-32:], "little") + _sshsig._ED25519_L
    malleated = good[:-32] + big.to_bytes(32, "little")
    with pytest.raises(_sshsig.SshFormatError, match="not a canonical ed25519"):
        _sshsig.parse_signature(malleated)
    for choice in ("in-process", "ssh-keygen"):
        assert _check(monkeypatch, choice, key, [(b"d", malleated)])[0] == [False]


def test_when_the_in_process_check_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset: only when ssh-keygen would need more than two rounds on every core (the import of
    cryptography costs about two processes); forced either way by $WOTR_SSH_VERIFIER."""
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.delenv("WOTR_SSH_VERIFIER", raising=False)
    assert not ssh.use_in_process(4) and ssh.use_in_process(5)
    monkeypatch.setenv("WOTR_SSH_VERIFIER", "ssh-keygen")
    assert not ssh.use_in_process(1000)
    monkeypatch.setenv("WOTR_SSH_VERIFIER", "in-process")
    assert ssh.use_in_process(1)
