"""gpg batches (wotr/gpg.py): many signatures over one payload, good and BAD mixed in any order.

gpg stops at the first BAD signature of a batch; the rest must still be checked (no valid claim
hidden) and the number of gpg calls must stay bounded by the number of signatures.
"""

from __future__ import annotations

import random

import pytest

from testing import gpgkeys
from wotr import gpg

DATA = b"the payload"


@pytest.fixture(scope="module")
def material() -> tuple[bytes, list[bytes], list[bytes], list[str]]:
    keys = [gpgkeys.make_key(f"b{i}") for i in range(3)]
    try:
        good = [gpgkeys.sign_detached(k, DATA) for k in keys]
        other = gpgkeys.sign_detached(keys[0], DATA + b"!")
        # Distinct BAD signatures: the signature value changed, the packet still well-formed.
        bad = [other[:-2] + bytes([other[-2] ^ (i + 1), other[-1]]) for i in range(20)]
        return gpgkeys.binary_keyring(*keys), good, bad, [k.fingerprint for k in keys]
    finally:
        for k in keys:
            gpgkeys.remove_home(k.home)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("merge", [False, True])
def test_every_signature_judged_whatever_the_order(
    material: tuple[bytes, list[bytes], list[bytes], list[str]], seed: int, merge: bool
) -> None:
    keyring, good, bad, fprs = material
    sigs = good * 4 + bad  # 12 good (several per key), 20 bad: more than one chain
    random.Random(seed).shuffle(sigs)
    with gpg.Verifier(keyring, merge_copies=merge) as verifier:
        results = verifier.check(DATA, sigs)
        calls = verifier.gpg_calls
    for sig, res in zip(sigs, results, strict=True):
        if sig in good:
            assert res.ok and res.fingerprint == fprs[good.index(sig)]
        else:
            assert not res.ok and res.reason.startswith("bad signature")
    assert calls <= len(bad) + 2  # each call settles a prefix ending at (at most) one BAD


def test_bad_signatures_first_still_bounded(
    material: tuple[bytes, list[bytes], list[bytes], list[str]],
) -> None:
    keyring, good, bad, _ = material
    with gpg.Verifier(keyring) as verifier:
        results = verifier.check(DATA, bad + good)
        assert verifier.gpg_calls <= len(bad) + 2
    assert [r.ok for r in results] == [False] * len(bad) + [True] * len(good)
