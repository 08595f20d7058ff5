"""Fixtures for the package-manager hook tests: the REAL `wotr verify`.

`verifier` is a testing.sandbox.Verifier: a throwaway repository whose parties (alice, bob,
carol, mallory) have the session's throwaway gpg keys (tests/conftest.py `keys`, made once per
xdist worker), an installer policy trusting alice, bob and carol with threshold 2, an empty
bundles directory, and $WOTR_VERIFY_CMD running the real `wotr verify` through
record_verify.py.  `verifier_factory` builds one with the policy, bundles directory and log
where a sandbox needs them (inside a pacman RootDir, for instance).  `buggy_verifier` is the
same real verifier behind buggy_verify.py: a parser bug that attacker-planted files
(testing.sandbox.plant_parser_bug) turn into exit 2, 3 or 70, a crash or a hang.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Protocol

import pytest

from testing import gpgkeys
from testing.sandbox import MALLORY, TRUSTED, Verifier, VerifierFactory, make_verifier

RECORDER = Path(__file__).resolve().parent / "record_verify.py"
#: $WOTR_VERIFY_CMD of the tests: the real `wotr verify`, recording its argv and cwd.
COMMAND = f"{shlex.quote(sys.executable)} {shlex.quote(str(RECORDER))}"
BUGGY = Path(__file__).resolve().parent / "buggy_verify.py"
#: The same, with a parser bug that an attacker's sidecar or bundle triggers (buggy_verify.py).
BUGGY_COMMAND = f"{shlex.quote(sys.executable)} {shlex.quote(str(BUGGY))}"


class KeySource(Protocol):
    def get(self, name: str, **kw: object) -> gpgkeys.Key: ...


@pytest.fixture
def verifier_factory(tmp_path: Path, keys: KeySource) -> VerifierFactory:
    parties = {n: keys.get(n) for n in (*TRUSTED, MALLORY)}

    def build(
        *,
        policy: Path | None = None,
        bundles: Path | None = None,
        log: Path | None = None,
        log_seen_as: str = "",
        command: str = COMMAND,
    ) -> Verifier:
        return make_verifier(
            tmp_path / "wotr",
            parties,
            policy=policy or tmp_path / "installer" / "policy.toml",
            bundles=bundles or tmp_path / "installer" / "bundles",
            command=command,
            log=log or tmp_path / "verify-calls.jsonl",
            log_seen_as=log_seen_as,
        )

    return build


@pytest.fixture
def verifier(verifier_factory: VerifierFactory) -> Verifier:
    return verifier_factory()


@pytest.fixture
def buggy_verifier(verifier_factory: VerifierFactory) -> Verifier:
    return verifier_factory(command=BUGGY_COMMAND)


@pytest.fixture
def buggy_command() -> str:
    """$WOTR_VERIFY_CMD for the real verifier with the parser bug (buggy_verify.py)."""
    return BUGGY_COMMAND
