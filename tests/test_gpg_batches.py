"""gpg batches (wotr/gpg.py): many signatures over one payload, good and BAD mixed in any order.

gpg stops at the first BAD signature of a batch; the rest must still be checked (no valid claim
hidden) and the number of gpg calls must stay bounded by the number of signatures.
"""

from __future__ import annotations

import random
from pathlib import Path

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


@pytest.mark.parametrize("seed", [0, 1])
def test_many_payloads_in_few_processes(seed: int) -> None:
    """check_many (offline, one job per commit): signatures over many payloads go to gpg as
    signed messages through --verify-files. Every good one is found with its own signer, every
    bad, foreign or misplaced one refused, whatever the order, and the calls stay bounded by
    the BAD signatures (gpg stops at one), not by the number of payloads."""
    keys = [gpgkeys.make_key(f"m{i}") for i in range(3)]
    try:
        rng = random.Random(seed)
        jobs: list[tuple[bytes, list[bytes]]] = []
        expect: list[list[str | None]] = []
        bad_count = 0
        for j in range(40):
            data = b"payload %d\n" % j
            sigs: list[bytes] = []
            want: list[str | None] = []
            for _ in range(rng.randint(0, 3)):
                key = rng.choice(keys[:2])
                roll = rng.random()
                sig = gpgkeys.sign_detached(key, data)
                if roll < 0.15:  # BAD: another value
                    sig, who = sig[:-2] + bytes([sig[-2] ^ 1, sig[-1]]), None
                    bad_count += 1
                elif roll < 0.25:  # good, but by a key not in the keyring
                    sig, who = gpgkeys.sign_detached(keys[2], data), None
                elif roll < 0.35:  # good, over another payload (a swapped signature)
                    sig, who = gpgkeys.sign_detached(key, b"payload %d\n" % (j + 1)), None
                    bad_count += 1
                else:
                    who = key.fingerprint
                sigs.append(sig)
                want.append(who)
            jobs.append((data, sigs))
            expect.append(want)
        with gpg.Verifier(gpgkeys.binary_keyring(*keys[:2])) as verifier:
            got = verifier.check_many(jobs)
            calls = verifier.gpg_calls
        for want, results in zip(expect, got, strict=True):
            for who, res in zip(want, results, strict=True):
                assert res.ok == (who is not None), res
                if who is not None:
                    assert res.fingerprint == who
        # one import, then per chain one call plus one per BAD signature
        assert calls <= 1 + bad_count + 2
    finally:
        for k in keys:
            gpgkeys.remove_home(k.home)


def test_many_payloads_under_a_temp_dir_whose_name_is_not_utf8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--verify-files results are tied to files by the name gpg prints (FILE_START), byte for
    byte. Under a $TMPDIR whose name is not UTF-8 (a hook's environment), that name was decoded
    with replacement characters, matched no file: every good signature was refused (the first
    file of each call settled as failed) and each call settled one file of up to 2000 (gpg
    calls and checks quadratic in the signatures)."""
    import os

    from wotr import _fs

    odd = os.fsdecode(b"/tmp/wotr-t\xff" + os.urandom(4).hex().encode())  # short: gpg.py
    os.mkdir(odd)
    request_cleanup = __import__("shutil").rmtree
    monkeypatch.setattr(_fs, "_root", [odd])
    keys = [gpgkeys.make_key("u0")]
    try:
        jobs = [(b"payload %d\n" % j, [gpgkeys.sign_detached(keys[0], b"payload %d\n" % j)])
                for j in range(6)]  # fmt: skip
        with gpg.Verifier(gpgkeys.binary_keyring(*keys)) as verifier:
            got = verifier.check_many(jobs)
            calls = verifier.gpg_calls
        assert [r.ok for (res,) in [tuple(g) for g in got] for r in [res]] == [True] * 6, got
        assert calls <= 2
    finally:
        gpgkeys.remove_home(keys[0].home)
        request_cleanup(odd, ignore_errors=True)
