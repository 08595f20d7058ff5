"""The signed bytes: golden vectors, determinism and strict parsing (DESIGN §4)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from wotr import claim as c

VECTORS = Path(__file__).parent / "vectors"
COMMIT = "8f1e0c3d2b4a5968778695a4b3c2d1e0f9a8b7c6"
TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
DEB = "0123456789abcdef" * 4


def golden_claim() -> c.Claim:
    return c.Claim.build(
        commit=COMMIT,
        tree=TREE,
        role="reviewer",
        ref="refs/tags/v1.0",
        artifacts={"app_1.0_amd64.deb": DEB, "app-1.0.tar.gz": "a" * 64},
    )


def test_golden_payload_and_pae() -> None:
    """docs/format.md shows these bytes; any change to the signed bytes must be deliberate."""
    payload = (VECTORS / "claim-v1.payload.json").read_bytes()
    assert golden_claim().payload() == payload
    assert c.pae(payload) == (VECTORS / "claim-v1.pae").read_bytes()
    assert c.pae(payload).startswith(b"DSSEv1 28 application/vnd.in-toto+json 679 {")


def test_golden_payload_matches_the_documented_statement() -> None:
    """An independent spelling of the statement (as in docs/format.md) gives the same bytes."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": "app-1.0.tar.gz", "digest": {"sha256": "a" * 64}},
            {"name": "app_1.0_amd64.deb", "digest": {"sha256": DEB}},
        ],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://wotr.dev/build/v1",
                "externalParameters": {"role": "reviewer", "ref": "refs/tags/v1.0"},
                "resolvedDependencies": [{"digest": {"gitCommit": COMMIT, "gitTree": TREE}}],
            },
            "runDetails": {"builder": {"id": "https://wotr.dev/builder/v1"}},
        },
    }
    expected = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    assert golden_claim().payload() == expected
    assert b"docs" not in expected  # no per-run fields such as hosts or times
    assert (Path(__file__).parents[1] / "docs" / "format.md").read_text().count(
        expected.decode()
    ) == 1


def test_payload_is_deterministic_whatever_the_order_of_artifacts() -> None:
    a = c.Claim.build(
        commit=COMMIT, tree=TREE, role="ci", ref=None, artifacts={"b": "b" * 64, "a": "a" * 64}
    )
    b = c.Claim.build(
        commit=COMMIT, tree=TREE, role="ci", ref=None, artifacts={"a": "a" * 64, "b": "b" * 64}
    )
    assert a.payload() == b.payload()
    assert c.parse_payload(a.payload()) == a


def test_roundtrip_envelope_line() -> None:
    env = c.Envelope(golden_claim().payload(), b"\x88sig", "F" * 40)
    line = env.line()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert c.parse_line(line.rstrip(b"\n")) == env
    doc = json.loads(line)
    assert list(doc) == ["payloadType", "payload", "signatures"]


def _statement() -> dict[str, object]:
    return json.loads(golden_claim().payload())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(extra=1),
        lambda d: d["predicate"]["buildDefinition"]["externalParameters"].update(host="x"),
        lambda d: d["predicate"]["runDetails"].update(metadata={"startedOn": "2026-01-01"}),
        lambda d: d["subject"].reverse(),
        lambda d: d["subject"].append(d["subject"][0]),
        lambda d: d["subject"][0]["digest"].update(sha1="00"),
        lambda d: d["subject"][0].update(name="../etc/passwd"),
        lambda d: d["subject"][0]["digest"].update(sha256="A" * 64),
        lambda d: d.update(subject=[]),
        lambda d: d["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"].update(
            gitCommit="abc"
        ),
        lambda d: d["predicate"]["buildDefinition"]["externalParameters"].update(
            ref="refs/heads/x"
        ),
        lambda d: d["predicate"]["buildDefinition"]["externalParameters"].update(role="Root!"),
        lambda d: d.update(_type="https://in-toto.io/Statement/v0.1"),
        lambda d: d.update(predicateType="https://slsa.dev/provenance/v0.2"),
    ],
)
def test_strict_parsing_refuses_anything_else(mutate: object) -> None:
    doc = _statement()
    mutate(doc)  # type: ignore[operator]
    payload = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(c.ClaimError):
        c.parse_payload(payload)


def test_non_canonical_spelling_is_refused() -> None:
    pretty = json.dumps(_statement(), indent=1, sort_keys=True).encode()
    with pytest.raises(c.ClaimError, match="canonical"):
        c.parse_payload(pretty)


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"[]",
        b'{"payloadType":"text/plain","payload":"","signatures":[{"keyid":"","sig":""}]}',
        b'{"payloadType":"application/vnd.in-toto+json","payload":"!!","signatures":[]}',
        b'{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":'
        b'[{"keyid":"","sig":"AA=="},{"keyid":"","sig":"AA=="}]}',
        b'{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":'
        b'[{"keyid":"","sig":"%%%"}]}',
        b'{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":'
        b'[{"keyid":"","sig":"AA==","extra":1}]}',
        b"[" * 100000,
    ],
)
def test_bad_lines_are_claim_errors(line: bytes) -> None:
    with pytest.raises(c.ClaimError):
        c.parse_line(line)


def test_oversized_line_is_refused_before_parsing() -> None:
    with pytest.raises(c.ClaimError, match="limit"):
        c.parse_line(b" " * (c.MAX_LINE_BYTES + 1))


def test_pae_lengths_count_bytes_not_characters() -> None:
    payload = "é".encode()
    assert c.pae(payload) == b"DSSEv1 28 application/vnd.in-toto+json 2 \xc3\xa9"


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "a/b", "a\\b", "a\nb", "x" * 256, "app\u202egz.exe", "a\u200bb", "a\x85b"],
)
def test_artifact_names_are_plain_file_names(name: str) -> None:
    with pytest.raises(c.ClaimError):
        c.check_artifact_name(name)


def test_base64_of_payload_is_standard() -> None:
    env = c.Envelope(b"\xfb\xff", b"\xfb\xff", "k")
    doc = json.loads(env.line())
    assert doc["payload"] == base64.b64encode(b"\xfb\xff").decode() == "+/8="


@pytest.mark.parametrize(
    "line",
    [
        # non-ASCII text where base64 is expected (base64 raises ValueError, not binascii.Error)
        '{"payloadType":"application/vnd.in-toto+json","payload":"\u00e9",'
        '"signatures":[{"keyid":"x","sig":"AAAA"}]}'.encode(),
        # a lone surrogate in the keyid hint
        b'{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":'
        b'[{"keyid":"\\ud800","sig":"AAAA"}]}',
        b'{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":'
        b'[{"keyid":"\\u202e","sig":"AAAA"}]}',
    ],
)
def test_hostile_lines_are_claim_errors_not_crashes(line: bytes) -> None:
    with pytest.raises(c.ClaimError):
        c.parse_line(line)


def test_lone_surrogate_in_ref_is_a_claim_error() -> None:
    doc = _statement()
    doc["predicate"]["buildDefinition"]["externalParameters"]["ref"] = "refs/tags/\ud800"  # type: ignore[index]
    payload = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()  # \ud800 escaped
    with pytest.raises(c.ClaimError):
        c.parse_payload(payload)
