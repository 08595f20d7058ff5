"""gpg status parsing, table-tested on status lines recorded from gpg 2.2.40.

Each defence in wotr.gpg is tested on its own here, so removing one layer fails a test even
where another layer (the packet gate, a second status keyword) would still stop the attack.
"""

from __future__ import annotations

import pytest

from wotr import gpg

PRIMARY = "7BA9" + "0" * 32 + "035C"
SUBKEY = "9AAD" + "1" * 32 + "3D32"


def validsig(
    *, fpr: str = PRIMARY, hash_algo: str = "10", sig_class: str = "00", primary: str = PRIMARY
) -> str:
    return f"VALIDSIG {fpr} 2026-11-22 1795323924 0 4 0 22 {hash_algo} {sig_class} {primary}"


GOOD = ["NEWSIG", "SIG_ID x 2026-11-22 1795323924", "GOODSIG 927CDAAB2FFC035C alice", validsig()]


def status(*lines: str) -> bytes:
    return b"".join(b"[GNUPG:] " + ln.encode() + b"\n" for ln in lines)


def judge(*lines: str) -> gpg.SigCheck:
    (block,) = gpg._blocks(status(*lines))
    return gpg._judge(block)


def test_clean_good_signature_counts_for_the_primary() -> None:
    res = judge(*GOOD)
    assert res.ok and res.fingerprint == PRIMARY


def test_subkey_signature_is_attributed_to_the_primary() -> None:
    res = judge("NEWSIG", "GOODSIG 84D5D975D2D63D32 alice", validsig(fpr=SUBKEY))
    assert res.ok and res.fingerprint == PRIMARY


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        (["NEWSIG", "KEYEXPIRED 1792818323", "EXPKEYSIG 1 alice", validsig()], "expired"),
        (["NEWSIG", "EXPKEYSIG 1 alice", validsig()], "expired"),
        (["NEWSIG", "REVKEYSIG 1 alice", validsig()], "revoked"),
        (["NEWSIG", "EXPSIG 1 alice", validsig()], "signature has expired"),
        (["NEWSIG", "BADSIG 1 alice"], "bad signature"),
        (["NEWSIG", "GOODSIG 1 alice", validsig(hash_algo="2")], "weak digest"),
        (["NEWSIG", "GOODSIG 1 alice", validsig(hash_algo="1")], "weak digest"),
        (["NEWSIG", "GOODSIG 1 alice", validsig(hash_algo="3")], "weak digest"),
        (["NEWSIG", "GOODSIG 1 alice", validsig(sig_class="01")], "class 01"),
        (["NEWSIG", "GOODSIG 1 alice"], "exactly one good signature"),
        (["NEWSIG", validsig()], "exactly one good signature"),
        (["NEWSIG", "GOODSIG 1 a", "GOODSIG 2 b", validsig()], "exactly one good signature"),
        (
            ["NEWSIG", "GOODSIG 1 a", validsig(), validsig(primary=SUBKEY)],
            "exactly one good signature",
        ),
        (["NEWSIG", "NODATA 3", "GOODSIG 1 a", validsig()], "exactly one good signature"),
        (
            [
                "NEWSIG",
                "ERRSIG 47168752828C630A 22 8 00 1795323924 9 " + SUBKEY,
                "NO_PUBKEY 47168752828C630A",
            ],
            f"key {SUBKEY}, which is not in the policy",
        ),
        (
            ["NEWSIG", "ERRSIG 3C2203F666A6043A 1 2 00 1795323924 5 " + SUBKEY],
            "weak digest or unsupported",
        ),
    ],
)
def test_tainted_signatures_do_not_count(lines: list[str], reason: str) -> None:
    res = judge(*lines)
    assert not res.ok
    assert reason in res.reason


@pytest.mark.parametrize("other", ["KEYEXPIRED 1792818323", "KEYREVOKED"])
def test_expired_or_revoked_other_subkey_does_not_taint_a_good_signature(other: str) -> None:
    """gpg prints KEYEXPIRED/KEYREVOKED for any subkey of the key; the signing key's own state
    comes as EXPKEYSIG/REVKEYSIG instead of GOODSIG (tested above)."""
    res = judge("NEWSIG", other, "GOODSIG 927CDAAB2FFC035C alice", validsig())
    assert res.ok and res.fingerprint == PRIMARY


def test_blocks_split_on_newsig_and_ignore_other_output() -> None:
    out = b"gpg: noise\n" + status(*GOOD) + status("NEWSIG", "BADSIG 1 x") + b"tail"
    blocks = gpg._blocks(out)
    assert len(blocks) == 2
    assert gpg._judge(blocks[0]).ok and not gpg._judge(blocks[1]).ok
