"""The pure counting module, table-tested without git or gpg."""

from __future__ import annotations

from pathlib import Path

import pytest

from wotr.claim import Claim
from wotr.consensus import Checked, Counted, Target, admit, decide
from wotr.policy import Policy, Signer

C = "c" * 40
T = "e" * 40
X, Y, Z = "1" * 64, "2" * 64, "3" * 64


def policy(
    threshold: int = 2,
    require: tuple[tuple[str, int], ...] = (),
    roles: dict[str, frozenset[str]] | None = None,
) -> Policy:
    roles = roles or {}
    signers = tuple(
        Signer(n, roles.get(n), frozenset({n.upper() * 40 if len(n) == 1 else n[0].upper() * 40}))
        for n in ("a", "b", "c")
    )
    return Policy(Path("p.toml"), threshold, signers, require)


def counted(
    signer: str,
    artifacts: dict[str, str],
    role: str = "author",
    ref: str | None = None,
    line: int = 1,
) -> Counted:
    claim = Claim.build(commit=C, tree=T, role=role, artifacts=artifacts, ref=ref)
    return Counted(line, signer, signer.upper() * 40, claim)


def test_threshold_counts_people() -> None:
    p = policy(2)
    r = decide(p, [counted("a", {"app": X}), counted("a", {"app": X}, role="ci")], [], None)
    assert not r.verified
    r = decide(p, [counted("a", {"app": X}), counted("b", {"app": X})], [], None)
    assert r.verified
    assert r.artifacts[0].signers == ("a", "b")


def test_all_names_must_reach_quorum_on_exactly_one_digest() -> None:
    p = policy(1)
    r = decide(p, [counted("a", {"app": X}), counted("b", {"app": Y})], [], None)
    assert not r.verified
    assert r.artifacts[0].reason == "several digests reach the quorum"
    assert r.dissent and r.dissent[0].name == "app"


def test_nothing_to_verify_is_not_verified() -> None:
    r = decide(policy(1), [], [], None)
    assert not r.verified and "no trusted signer" in r.reason


def test_targets_match_by_digest_and_report_others() -> None:
    p = policy(2)
    claims = [counted("a", {"app": X}), counted("b", {"app": X}), counted("c", {"app": Y})]
    r = decide(p, claims, [], [Target("dist/app", X)])
    assert r.verified and r.artifacts[0].signers == ("a", "b")
    assert [g.sha256 for g in r.artifacts[0].others] == [Y]
    assert decide(p, claims, [], [Target("dist/app", X)], strict=True).verified is False
    r = decide(p, claims, [], [Target("dist/app", Z)])
    assert not r.verified and r.artifacts[0].reason == "no trusted signer claimed this digest"
    assert {g.sha256 for g in r.artifacts[0].others} == {X, Y}


def test_rule7_conflicting_signer_counts_for_neither() -> None:
    p = policy(2)
    claims = [counted("a", {"app": X}), counted("a", {"app": Y}), counted("b", {"app": X})]
    r = decide(p, claims, [], [Target("app", X)])
    assert not r.verified
    assert r.artifacts[0].signers == ("b",)
    assert r.conflicts[0].signer == "a"
    # the same signer's other artifacts still count
    claims = [
        counted("a", {"app": X, "lib": Z}),
        counted("a", {"app": Y}),
        counted("b", {"lib": Z}),
    ]
    assert decide(p, claims, [], [Target("lib", Z)]).verified


def test_require_roles_on_top_of_threshold() -> None:
    p = policy(2, require=(("ci", 1),))
    claims = [counted("a", {"app": X}), counted("b", {"app": X}, role="reviewer")]
    r = decide(p, claims, [], [Target("app", X)])
    assert not r.verified and "role 'ci'" in r.artifacts[0].reason
    claims.append(counted("c", {"app": X}, role="ci"))
    assert decide(p, claims, [], [Target("app", X)]).verified


def test_require_role_counts_only_claims_of_that_digest() -> None:
    p = policy(2, require=(("ci", 1),))
    claims = [
        counted("a", {"app": X}),
        counted("b", {"app": X}),
        counted("c", {"app": Y}, role="ci"),
    ]
    assert not decide(p, claims, [], [Target("app", X)]).verified


@pytest.mark.parametrize(
    ("claim_kw", "tag", "reason"),
    [
        ({"commit": "d" * 40}, None, "not this commit"),
        ({"tree": "f" * 40}, None, "tree"),
        ({"role": "ci"}, None, "may not claim role"),
        ({}, "refs/tags/v1", "not refs/tags/v1"),
        ({"ref": "refs/tags/v0"}, "refs/tags/v1", "made for refs/tags/v0"),
    ],
)
def test_admit_rules(claim_kw: dict[str, str], tag: str | None, reason: str) -> None:
    p = policy(1, roles={"a": frozenset({"author"})})
    kw = {"commit": C, "tree": T, "role": "author", "ref": None} | claim_kw
    claim = Claim.build(artifacts={"app": X}, **kw)  # type: ignore[arg-type]
    good, bad = admit(p, [Checked(3, "A" * 40, claim)], commit=C, tree=T, tag=tag)
    assert not good
    assert reason in bad[0].reason and bad[0].signer == "a" and bad[0].line == 3


def test_admit_unknown_fingerprint() -> None:
    claim = Claim.build(commit=C, tree=T, role="author", artifacts={"app": X}, ref=None)
    good, bad = admit(policy(1), [Checked(1, "9" * 40, claim)], commit=C, tree=T, tag=None)
    assert not good and "not in the policy" in bad[0].reason


def test_admit_tag_match_counts() -> None:
    claim = Claim.build(commit=C, tree=T, role="author", artifacts={"app": X}, ref="refs/tags/v1")
    good, bad = admit(
        policy(1), [Checked(1, "A" * 40, claim)], commit=C, tree=T, tag="refs/tags/v1"
    )
    assert good and not bad


def test_an_unchecked_withdrawal_on_a_shared_issuer_id_is_taken_as_every_owner_s() -> None:
    """Policy.issuers maps an issuer id to every signer owning it (a 16-hex key id that is a
    subkey of one signer's key and another signer's primary key). A withdrawal left unchecked by
    a limit and naming that id may be either signer's: each is taken as withdrawing everything
    (before the one issuer map, withdraw kept one owner per id and the other's claims counted)."""
    from wotr import _record, withdraw

    shared = "D" * 16
    p = _record.replace(policy(1), issuers=((shared, ("a", "b")),), issuer_ids=frozenset({shared}))
    claims = [counted("a", {"app": X}, line=1), counted("b", {"app": X}, line=2)]
    applied = withdraw.apply(p, claims, [], [(3, frozenset({shared}))], commit=C, tree=T)
    assert applied.counted == ()
    assert {r.signer for r in applied.rejected} == {"a", "b"}
