"""Prepared policies (wotr/prepared.py, issue 17): a policy kept between runs is used only while
it is exactly what the policy's files give, and only from a place nobody else can write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testing import gpgkeys, sim, sshkeys
from tests.test_policy import base, pin_of, write
from wotr import policy, prepared
from wotr.errors import PolicyError


@pytest.fixture
def cache(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = short_tmp / "cache"
    monkeypatch.setenv("WOTR_CACHE_DIR", str(where))
    monkeypatch.delenv("WOTR_NO_CACHE", raising=False)
    return where


@pytest.fixture
def setup(short_tmp: Path, keys: Any) -> tuple[Path, dict[str, gpgkeys.Key]]:
    ks = {n: keys.get(n) for n in ("alice", "bob", "carol")}
    (short_tmp / "keys").mkdir()
    for name, key in ks.items():
        (short_tmp / "keys" / f"{name}.asc").write_bytes(gpgkeys.public_armored(key))
    return short_tmp, ks


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.policy.json"))


def tamper(entry: Path, **fields: Any) -> None:
    doc = json.loads(entry.read_bytes())
    doc.update(fields)
    entry.write_text(json.dumps(doc))


def test_a_kept_policy_is_exactly_the_derived_one(
    setup: tuple[Path, dict[str, gpgkeys.Key]], cache: Path
) -> None:
    d, ks = setup
    dave = sshkeys.make_key("dave")
    doc = base(ks)
    doc["serial"] = 3
    doc["threshold"] = 2
    doc["require"] = {"author": 2}
    doc["update"] = {"threshold": 2, "signers": ["alice", "bob"]}
    doc["signers"][2].pop("roles")
    doc["signers"].append({"name": "dave", "ssh": [dave.public_line]})
    # a second copy of carol's key: the keyring must be merged by a real import (copies)
    (d / "keys" / "carol.asc").write_bytes(gpgkeys.public_armored(ks["carol"]) * 2)
    path = write(d, doc)
    derived = policy.load(path)
    first = policy.load(path, prepared=True)
    assert len(entries(cache)) == 1
    kept = policy.load(path, prepared=True)
    assert derived == first == kept
    assert kept.keyring == derived.keyring and kept.keyring_has_copies
    assert kept.digests == derived.digests
    owners = kept.issuer_signers()
    assert owners[dave.fingerprint] == ("dave",)
    for name in ("alice", "carol"):
        fpr = ks[name].fingerprint
        assert owners[fpr] == owners[fpr[-16:]] == (name,)


def test_a_changed_key_file_is_derived_again(
    setup: tuple[Path, dict[str, gpgkeys.Key]], cache: Path, keys: Any
) -> None:
    """The entry records the sha256 of every key file: a key file that no longer holds the
    listed key fails as it would without an entry (a wrong yes otherwise)."""
    d, ks = setup
    path = write(d, base(ks))
    policy.load(path, prepared=True)
    assert entries(cache)
    (d / "keys" / "bob.asc").write_bytes(gpgkeys.public_armored(keys.get("mallory")))
    with pytest.raises(PolicyError, match="does not count"):
        policy.load(path, prepared=True)
    # a key file that still serves: the entry is rebuilt from the new bytes
    extra = gpgkeys.public_armored(ks["bob"]) + gpgkeys.public_binary(keys.get("mallory"))
    (d / "keys" / "bob.asc").write_bytes(extra)
    again = policy.load(path, prepared=True)
    assert again == policy.load(path)
    (entry,) = entries(cache)
    recorded = {rel: sha for _, rel, sha in json.loads(entry.read_bytes())["keys"]}
    assert recorded["keys/bob.asc"] == dict(again.digests)["keys/bob.asc"]


def test_pins_are_checked_as_before(
    setup: tuple[Path, dict[str, gpgkeys.Key]], cache: Path, short_tmp: Path
) -> None:
    d, ks = setup
    path = write(d, base(ks))
    pin = pin_of(path, short_tmp / "gitdir")
    policy.load(path, pin=pin, prepared=True)
    policy.load(path, pin=pin, prepared=True)
    (d / "keys" / "bob.asc").write_bytes(gpgkeys.public_binary(ks["bob"]))  # same key, new bytes
    with pytest.raises(PolicyError, match="changed since the policy was pinned"):
        policy.load(path, pin=pin, prepared=True)


def _threshold_one_entry(
    setup: tuple[Path, dict[str, gpgkeys.Key]], cache: Path
) -> tuple[Path, Path]:
    """A policy of threshold 2 whose kept entry someone changed to threshold 1."""
    d, ks = setup
    path = write(d, base(ks))
    policy.load(path, prepared=True)
    (entry,) = entries(cache)
    tamper(entry, threshold=1)
    return path, entry


def test_an_entry_others_may_write_is_not_used(
    setup: tuple[Path, dict[str, gpgkeys.Key]], cache: Path
) -> None:
    path, entry = _threshold_one_entry(setup, cache)
    entry.chmod(0o620)
    assert policy.load(path, prepared=True).threshold == 2
    # and it was replaced by a private one
    (entry,) = entries(cache)
    assert entry.stat().st_mode & 0o777 == 0o600
    assert json.loads(entry.read_bytes())["threshold"] == 2


def test_a_directory_others_may_write_is_not_used(
    setup: tuple[Path, dict[str, gpgkeys.Key]], cache: Path
) -> None:
    path, _entry = _threshold_one_entry(setup, cache)
    cache.chmod(0o777)
    assert policy.load(path, prepared=True).threshold == 2
    cache.chmod(0o700)


def test_a_directory_reached_through_a_link_is_not_used(
    setup: tuple[Path, dict[str, gpgkeys.Key]], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _entry = _threshold_one_entry(setup, cache)
    link = cache.parent / "cache-link"
    link.symlink_to(cache)
    monkeypatch.setenv("WOTR_CACHE_DIR", str(link))
    assert policy.load(path, prepared=True).threshold == 2


def test_an_entry_linked_from_elsewhere_is_not_used(
    setup: tuple[Path, dict[str, gpgkeys.Key]], cache: Path
) -> None:
    path, entry = _threshold_one_entry(setup, cache)
    elsewhere = cache.parent / "planted.json"
    entry.rename(elsewhere)
    entry.symlink_to(elsewhere)
    assert policy.load(path, prepared=True).threshold == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_an_entry_of_another_user_is_not_used(
    setup: tuple[Path, dict[str, gpgkeys.Key]], cache: Path
) -> None:
    path, entry = _threshold_one_entry(setup, cache)
    os.chown(entry, 65534, 65534)
    assert policy.load(path, prepared=True).threshold == 2


def test_an_entry_of_other_code_is_not_used(
    setup: tuple[Path, dict[str, gpgkeys.Key]], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, entry = _threshold_one_entry(setup, cache)
    tamper(entry, derivation="wotr 0.0.1")
    assert policy.load(path, prepared=True).threshold == 2
    # another wotr (or changed code) looks for another name
    _, entry = _threshold_one_entry(setup, cache)
    monkeypatch.setattr(prepared, "_derivation", ["another wotr"])
    assert policy.load(path, prepared=True).threshold == 2


def test_malformed_entries_are_derived_again(
    setup: tuple[Path, dict[str, gpgkeys.Key]], cache: Path
) -> None:
    d, ks = setup
    path = write(d, base(ks))
    want = policy.load(path)
    for junk in (b"", b"[]", b"{", b'{"format": 1}'):
        policy.load(path, prepared=True)
        (entry,) = entries(cache)
        entry.write_bytes(junk)
        assert policy.load(path, prepared=True) == want
    for change in ({"signers": [["alice", None, "not a list"]]}, {"keyring": "%%"}, {"keys": 7}):
        (entry,) = entries(cache)
        tamper(entry, **change)
        assert policy.load(path, prepared=True) == want


def test_off_switches(
    setup: tuple[Path, dict[str, gpgkeys.Key]], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d, ks = setup
    path = write(d, base(ks))
    monkeypatch.setenv("WOTR_NO_CACHE", "1")
    policy.load(path, prepared=True)
    assert not cache.exists()
    monkeypatch.delenv("WOTR_NO_CACHE")
    monkeypatch.delenv("WOTR_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("HOME", raising=False)
    assert prepared.directory() is None  # no home: nothing kept, nothing in the working directory
    monkeypatch.setenv("HOME", "relative/home")
    assert prepared.directory() is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    assert prepared.directory() == str(cache / "wotr")


def test_only_the_newest_entries_are_kept(cache: Path) -> None:
    for i in range(prepared.MAX_ENTRIES + 8):
        prepared.store(f"{i:064x}", {"keys": []})
    assert len(entries(cache)) == prepared.MAX_ENTRIES
    assert prepared.lookup(f"{prepared.MAX_ENTRIES + 7:064x}") is not None


def test_a_verify_with_a_prepared_policy_reads_no_toml(world: sim.World) -> None:
    """The point of it: from the second verify on, no tomllib (nor typing, datetime)."""
    art = world.root / "dist" / "app.tar.gz"
    world.policy(2)
    for name in ("alice", "bob"):
        world.sign(name, art)
    probe = (
        "import sys; from wotr.entry import main; code = main(sys.argv[1:]); "
        "print(code, 'tomllib' in sys.modules, 'typing' in sys.modules)"
    )
    given = str(world.policy_dir / "threshold.toml")
    argv = [sys.executable, "-c", probe, "verify", "--policy", given]
    env = sim.base_env()
    env["XDG_CACHE_HOME"] = str(world.root / "cache")  # not an entry another test prepared
    seen = []
    for _ in range(2):
        res = subprocess.run(
            [*argv, str(art)],
            cwd=world.repo,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seen.append(res.stdout.splitlines()[-1])
        assert res.returncode == 0, res.stderr
    assert seen == ["0 True True", "0 False False"]
