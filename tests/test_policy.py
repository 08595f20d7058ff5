"""threshold.toml fails closed (DESIGN §5): every refusal names the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomli_w

from testing import gpgkeys
from wotr import _openpgp, policy
from wotr.errors import PolicyError


@pytest.fixture
def setup(short_tmp: Path, keys: Any) -> tuple[Path, dict[str, gpgkeys.Key]]:
    ks = {n: keys.get(n) for n in ("alice", "bob")}
    (short_tmp / "keys").mkdir()
    for name, key in ks.items():
        (short_tmp / "keys" / f"{name}.asc").write_bytes(gpgkeys.public_armored(key))
    return short_tmp, ks


def write(directory: Path, doc: dict[str, Any]) -> Path:
    path = directory / "threshold.toml"
    path.write_bytes(tomli_w.dumps(doc).encode())
    return path


def pin_of(path: Path, gitdir: Path) -> dict[str, str]:
    """Pin the policy at ``path`` as 'git wotr init' does, in ``gitdir``; the pin read back."""
    gitdir.mkdir()
    policy.write_pin(gitdir, policy.load(path))
    pin = policy.read_pin(gitdir)
    assert pin is not None
    return pin


def base(ks: dict[str, gpgkeys.Key]) -> dict[str, Any]:
    return {
        "version": 1,
        "threshold": 2,
        "signers": [
            {
                "name": n,
                "roles": ["author"],
                "keys": [f"keys/{n}.asc"],
                "fingerprints": [k.fingerprint],
            }
            for n, k in ks.items()
        ],
    }


def test_valid_policy_loads(setup: tuple[Path, dict[str, gpgkeys.Key]]) -> None:
    d, ks = setup
    p = policy.load(write(d, base(ks)))
    assert p.threshold == 2
    assert [s.name for s in p.signers] == ["alice", "bob"]
    assert p.signer_for(ks["bob"].fingerprint).name == "bob"  # type: ignore[union-attr]
    assert {k.fingerprint for k in _openpgp.public_keys(p.keyring)} == {
        ks["alice"].fingerprint,
        ks["bob"].fingerprint,
    }


def test_example_policy_in_repo_is_documented_and_parses_as_toml() -> None:
    import tomllib

    text = (Path(__file__).parents[1] / "threshold.example.toml").read_text()
    doc = tomllib.loads(text)
    for field in ("version", "threshold", "signers", "require"):
        assert field in doc
    for field in ("name", "roles", "keys", "fingerprints"):
        assert field in doc["signers"][0]


def _mut(doc: dict[str, Any], ks: dict[str, gpgkeys.Key], case: str) -> str:
    s0 = doc["signers"][0]
    if case == "unknown_top":
        doc["treshold"] = 2
        return "unknown field 'treshold'"
    if case == "unknown_signer_field":
        s0["fingerprint"] = "x"
        return "unknown field 'fingerprint'"
    if case == "duplicate_name":
        doc["signers"][1]["name"] = "alice"
        return "used twice"
    if case == "fpr_two_signers":
        doc["signers"][1]["fingerprints"].append(ks["alice"].fingerprint)
        doc["signers"][1]["keys"].append("keys/alice.asc")
        return "also listed under 'alice'"
    if case == "fpr_missing_from_keyfile":
        s0["fingerprints"] = [ks["bob"].fingerprint]
        doc["signers"][1]["fingerprints"] = [ks["alice"].fingerprint]
        return "not in the signer's key files"
    if case == "short_keyid":
        s0["fingerprints"] = [ks["alice"].fingerprint[-16:]]
        return "short key id"
    if case == "short_keyid8":
        s0["fingerprints"] = ["0x" + ks["alice"].fingerprint[-8:]]
        return "short key id"
    if case == "not_hex":
        s0["fingerprints"] = ["Z" * 40]
        return "not a 40-hex fingerprint"
    if case == "threshold_zero":
        doc["threshold"] = 0
        return "out of range"
    if case == "threshold_too_high":
        doc["threshold"] = 3
        return "out of range"
    if case == "threshold_bool":
        doc["threshold"] = True
        return "whole number"
    if case == "threshold_missing":
        del doc["threshold"]
        return "whole number"
    if case == "require_unmeetable":
        doc["require"] = {"ci": 1}
        return "can never be met"
    if case == "require_zero":
        doc["require"] = {"author": 0}
        return "at least 1"
    if case == "version":
        doc["version"] = 2
        return "version must be 1"
    if case == "no_signers":
        doc["signers"] = []
        return "at least one signer"
    if case == "keyfile_missing":
        s0["keys"] = ["keys/nope.asc"]
        return "cannot read"
    if case == "keyfile_garbage":
        s0["keys"] = ["garbage.asc"]
        return "not an OpenPGP public key"
    if case == "empty_roles":
        s0["roles"] = []
        return "non-empty list"
    if case == "bad_role":
        s0["roles"] = ["Release Manager"]
        return "role"
    if case == "subkey_listed":
        s0["fingerprints"] = ["SUBKEY"]
        return "subkey"
    raise AssertionError(case)


CASES = [
    "unknown_top",
    "unknown_signer_field",
    "duplicate_name",
    "fpr_two_signers",
    "fpr_missing_from_keyfile",
    "short_keyid",
    "short_keyid8",
    "not_hex",
    "threshold_zero",
    "threshold_too_high",
    "threshold_bool",
    "threshold_missing",
    "require_unmeetable",
    "require_zero",
    "version",
    "no_signers",
    "keyfile_missing",
    "keyfile_garbage",
    "empty_roles",
    "bad_role",
    "subkey_listed",
]


@pytest.mark.parametrize("case", CASES)
def test_policy_fails_closed(
    setup: tuple[Path, dict[str, gpgkeys.Key]], keys: Any, case: str
) -> None:
    d, ks = setup
    (d / "garbage.asc").write_bytes(
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n"
    )
    doc = base(ks)
    expected = _mut(doc, ks, case)
    if case == "subkey_listed":
        dave = keys.get("dave", signing_subkeys=2)
        (d / "keys" / "alice.asc").write_bytes(gpgkeys.public_armored(dave))
        doc["signers"][0]["fingerprints"] = [dave.subkeys[0]]
    path = write(d, doc)
    with pytest.raises(PolicyError) as err:
        policy.load(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_invalid_toml(short_tmp: Path) -> None:
    path = short_tmp / "threshold.toml"
    path.write_text("version = \n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        policy.load(path)


def test_threshold_override_is_range_checked(setup: tuple[Path, dict[str, gpgkeys.Key]]) -> None:
    d, ks = setup
    p = policy.load(write(d, base(ks)))
    assert p.with_threshold(1).threshold == 1
    with pytest.raises(PolicyError, match="out of range"):
        p.with_threshold(3)


def test_unlisted_keys_in_a_key_file_stay_out_of_the_keyring(
    setup: tuple[Path, dict[str, gpgkeys.Key]], keys: Any
) -> None:
    d, ks = setup
    mallory = keys.get("mallory")
    (d / "keys" / "alice.asc").write_bytes(
        gpgkeys.public_armored(ks["alice"]) + gpgkeys.public_armored(mallory)
    )
    p = policy.load(write(d, base(ks)))
    assert mallory.fingerprint not in {k.fingerprint for k in _openpgp.public_keys(p.keyring)}


def test_pin_detects_changes_to_policy_and_key_files(
    setup: tuple[Path, dict[str, gpgkeys.Key]], keys: Any, short_tmp: Path
) -> None:
    d, ks = setup
    path = write(d, base(ks))
    pin = pin_of(path, short_tmp / "gitdir")
    policy.load(path, pin=pin)
    # a key file swapped for another copy of the same key (e.g. without its revocation): refused
    (d / "keys" / "bob.asc").write_bytes(gpgkeys.public_binary(ks["bob"]))
    with pytest.raises(PolicyError, match="changed since the policy was pinned"):
        policy.load(path, pin=pin)
    (d / "keys" / "bob.asc").write_bytes(gpgkeys.public_armored(ks["bob"]))
    doc = base(ks)
    doc["threshold"] = 1
    write(d, doc)
    with pytest.raises(PolicyError, match="changed since the policy was pinned"):
        policy.load(path, pin=pin)
