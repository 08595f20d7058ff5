"""wotr/hashing.py: whichever implementation hashes, the digests are hashlib's."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from wotr import hashing


@pytest.mark.parametrize("name", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("size", [0, 1, 4096, hashing.SMALL, hashing.SMALL + 1])
def test_the_same_digests_as_hashlib(name: str, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    assert hashing.hasher(name, size)(data).hexdigest() == hashlib.new(name, data).hexdigest()


@pytest.mark.parametrize("size", [0, 100, hashing.SMALL, hashing.SMALL + 1, 3 << 20])
def test_files_hash_as_hashlib_does(tmp_path: Path, size: int) -> None:
    path = tmp_path / "f"
    data = (b"wotr" * (size // 4 + 1))[:size]
    path.write_bytes(data)
    assert hashing.sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert hashing.sha256_hex(data) == hashlib.sha256(data).hexdigest()
