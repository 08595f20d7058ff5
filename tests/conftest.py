"""Shared fixtures: throwaway keys made once per session (per xdist worker), worlds per test."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing import gpgkeys, sim

# Prepared policies (wotr/prepared.py) of the tests' wotr processes go to a directory of this
# session, not the user's ~/.cache (sim.base_env drops WOTR_* variables, not XDG_CACHE_HOME).
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="wotr-test-cache-")


class Keys:
    """Lazily generated keys; each kind is made once per session."""

    def __init__(self) -> None:
        self._cache: dict[str, gpgkeys.Key] = {}
        self.homes: list[Path] = []

    def get(self, name: str, **kw: object) -> gpgkeys.Key:
        tag = name + repr(sorted(kw.items()))
        if tag not in self._cache:
            key = gpgkeys.make_key(name, **kw)  # type: ignore[arg-type]
            self.homes.append(key.home)
            self._cache[tag] = key
        return self._cache[tag]


@pytest.fixture(scope="session")
def keys() -> Iterator[Keys]:
    k = Keys()
    yield k
    for home in k.homes:
        gpgkeys.remove_home(home)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temporary directory (gpg homes and sockets need short paths)."""
    path = Path(tempfile.mkdtemp(prefix="wt", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def world(short_tmp: Path, keys: Keys) -> sim.World:
    """alice, bob and carol with real keys, a repository and dist/app.tar.gz."""
    w = sim.make_world(short_tmp, keys={n: keys.get(n) for n in ("alice", "bob", "carol")})
    w.artifact("app.tar.gz", b"release bytes\n")
    return w
