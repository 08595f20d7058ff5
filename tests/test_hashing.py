"""wotr/hashing.py: whichever implementation hashes, the digests are hashlib's."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from wotr import hashing


@pytest.mark.parametrize("name", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("size", [0, 1, 4096, hashing.SMALL, hashing.SMALL + 1])
def test_the_same_digests_as_hashlib(name: str, size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    want = hashlib.new(name, data).hexdigest()
    monkeypatch.delitem(sys.modules, "hashlib")  # as in a verify that has not imported it
    made = hashing.hasher(name, size)
    assert made(data).hexdigest() == want
    builtin = made.__module__ if hasattr(made, "__module__") else ""
    assert (size <= hashing.SMALL) == (builtin in {"_sha1", "_sha256", "_sha512", "_sha2"})


@pytest.mark.parametrize("size", [0, 100, hashing.SMALL, hashing.SMALL + 1, 3 << 20])
def test_files_hash_as_hashlib_does(
    tmp_path: Path, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f"
    data = (b"wotr" * (size // 4 + 1))[:size]
    path.write_bytes(data)
    monkeypatch.delitem(sys.modules, "hashlib")
    assert hashing.sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert hashing.sha256_hex(data) == hashlib.sha256(data).hexdigest()
