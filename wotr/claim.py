"""The claim (in-toto Statement v1 + SLSA Provenance v1) and its DSSE envelope (DESIGN §4).

The signed bytes are defined here and nowhere else. A claim is *deterministic*: the same
commit, tree, ref, role and artifacts give byte-identical payloads on any machine, so
agreement between signers is byte equality. Parsing is strict: a payload is accepted only
if re-encoding the parsed claim gives back exactly the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from ._record import record

TYPE_CHECKING = False  # typing itself is not imported at run time (verify's start-up)
if TYPE_CHECKING:
    from typing import Any

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://wotr.dev/build/v1"
BUILDER_ID = "https://wotr.dev/builder/v1"

MAX_LINE_BYTES = 16 * 1024 * 1024  # a claim over 100,000 artifacts still fits
MAX_SIG_BYTES = 64 * 1024

_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_HEX = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ROLE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_BAD_NAME_CHAR = re.compile(r"[\x00-\x1f\x7f/\\]")  # control characters and path separators
_REF = re.compile(r"refs/tags/[^\x00-\x20\x7f~^:?*\[\\]{1,240}")


class ClaimError(ValueError):
    """A note line or payload is not a valid wotr envelope or claim; the text says why."""


def check_role(role: str) -> str:
    if not _ROLE.fullmatch(role):
        raise ClaimError(
            f"role {role!r} is not valid: use lowercase letters, digits, '.', '_' or '-'"
        )
    return role


def _invisible(name: str) -> bool:
    import unicodedata  # only for names that are not plain ASCII (not on the common path)

    return any(unicodedata.category(c) in _INVISIBLE for c in name)


def check_artifact_name(name: str) -> str:
    if (
        not name
        or name in (".", "..")
        or len(name.encode("utf-8", "surrogatepass")) > 255
        or _BAD_NAME_CHAR.search(name)
    ):
        raise ClaimError(f"artifact name {name!r} is not a plain file name")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ClaimError(f"artifact name {name!r} is not valid UTF-8") from exc
    if not name.isascii() and _invisible(name):
        # C1 controls, bidi overrides, zero-width and line separators would let a name
        # print as another one in a report.
        raise ClaimError(f"artifact name {name!r} holds invisible or control characters")
    return name


@record(order=True)
class Subject:
    name: str
    sha256: str

    def __post_init__(self) -> None:
        check_artifact_name(self.name)
        if not _SHA256.fullmatch(self.sha256):
            raise ClaimError(f"{self.sha256!r} is not a lowercase hex sha256 digest")


@record
class Claim:
    """'commit C (tree T), built for ref R in role X, produced these artifacts'."""

    commit: str
    tree: str
    role: str
    subjects: tuple[Subject, ...]
    ref: str | None = None

    def __post_init__(self) -> None:
        for what, value in (("commit", self.commit), ("tree", self.tree)):
            if not _HEX.fullmatch(value):
                raise ClaimError(f"{what} id {value!r} is not a full lowercase hex object id")
        check_role(self.role)
        if self.ref is not None and not _REF.fullmatch(self.ref):
            raise ClaimError(f"ref {self.ref!r} is not a tag ref (refs/tags/...)")
        if not self.subjects:
            raise ClaimError("a claim names at least one artifact")
        names = [s.name for s in self.subjects]
        if names != sorted(names):
            raise ClaimError("subjects are not sorted by name")
        if len(set(names)) != len(names):
            raise ClaimError("two subjects share one name")

    @classmethod
    def build(
        cls, *, commit: str, tree: str, role: str, artifacts: dict[str, str], ref: str | None
    ) -> Claim:
        subjects = tuple(sorted(Subject(n, d) for n, d in artifacts.items()))
        return cls(commit=commit, tree=tree, role=role, subjects=subjects, ref=ref)

    def statement(self) -> dict[str, Any]:
        external: dict[str, Any] = {"role": self.role}
        if self.ref is not None:
            external["ref"] = self.ref
        return {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": s.name, "digest": {"sha256": s.sha256}} for s in self.subjects],
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "buildDefinition": {
                    "buildType": BUILD_TYPE,
                    "externalParameters": external,
                    "resolvedDependencies": [
                        {"digest": {"gitCommit": self.commit, "gitTree": self.tree}}
                    ],
                },
                "runDetails": {"builder": {"id": BUILDER_ID}},
            },
        }

    def payload(self) -> bytes:
        return canonical_json(self.statement())

    def digests_by_name(self) -> dict[str, str]:
        return {s.name: s.sha256 for s in self.subjects}


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no insignificant white space, UTF-8: one byte string per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def pae(payload: bytes, payload_type: str = PAYLOAD_TYPE) -> bytes:
    """DSSE v1 pre-authentication encoding: the exact bytes that are signed."""
    ptype = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)


def _exact_keys(obj: Any, keys: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ClaimError(f"{where} is not an object")
    if set(obj) != keys:
        raise ClaimError(f"{where} has fields {sorted(obj)}, expected {sorted(keys)}")
    return obj


def _str(value: Any, where: str) -> str:
    """A JSON string that is also valid Unicode text (no lone surrogates)."""
    if not isinstance(value, str):
        raise ClaimError(f"{where} is not a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ClaimError(f"{where} is not valid Unicode") from exc
    return value


def parse_payload(payload: bytes) -> Claim:
    """The claim a payload states; :class:`ClaimError` unless it is exactly canonical.

    Hostile input raises nothing else: any other error of the standard library on odd data
    (Unicode, recursion, numbers) is turned into a ClaimError too, so one line can never
    stop a caller from reading the next one (DESIGN §6 rule 8).
    """
    try:
        return _parse_payload(payload)
    except ClaimError:
        raise
    except (ValueError, UnicodeError, RecursionError, TypeError, KeyError, OverflowError) as exc:
        raise ClaimError(f"payload is not a valid claim: {type(exc).__name__}") from exc


def _parse_payload(payload: bytes) -> Claim:
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise ClaimError(f"payload is not JSON: {exc}") from exc
    top = _exact_keys(doc, {"_type", "subject", "predicateType", "predicate"}, "statement")
    if top["_type"] != STATEMENT_TYPE:
        raise ClaimError(f"statement type {top['_type']!r} is not {STATEMENT_TYPE}")
    if top["predicateType"] != PREDICATE_TYPE:
        raise ClaimError(f"predicate type {top['predicateType']!r} is not {PREDICATE_TYPE}")
    if not isinstance(top["subject"], list):
        raise ClaimError("subject is not a list")
    subjects = []
    for i, item in enumerate(top["subject"]):
        subj = _exact_keys(item, {"name", "digest"}, f"subject[{i}]")
        digest = _exact_keys(subj["digest"], {"sha256"}, f"subject[{i}].digest")
        subjects.append(
            Subject(_str(subj["name"], f"subject[{i}].name"), _str(digest["sha256"], "sha256"))
        )
    pred = _exact_keys(top["predicate"], {"buildDefinition", "runDetails"}, "predicate")
    bdef = _exact_keys(
        pred["buildDefinition"],
        {"buildType", "externalParameters", "resolvedDependencies"},
        "buildDefinition",
    )
    ext = bdef["externalParameters"]
    if not isinstance(ext, dict) or not {"role"} <= set(ext) <= {"role", "ref"}:
        raise ClaimError("externalParameters must hold 'role' and optionally 'ref'")
    deps = bdef["resolvedDependencies"]
    if not isinstance(deps, list) or len(deps) != 1:
        raise ClaimError("resolvedDependencies must hold exactly the source commit")
    dep = _exact_keys(deps[0], {"digest"}, "resolvedDependencies[0]")
    git = _exact_keys(dep["digest"], {"gitCommit", "gitTree"}, "resolvedDependencies[0].digest")
    ref = ext.get("ref")
    claim = Claim(
        commit=_str(git["gitCommit"], "gitCommit"),
        tree=_str(git["gitTree"], "gitTree"),
        role=_str(ext["role"], "role"),
        subjects=tuple(subjects),
        ref=None if ref is None else _str(ref, "ref"),
    )
    if claim.payload() != payload:
        raise ClaimError("payload is not in canonical form (or carries unknown fields)")
    return claim


@record
class Envelope:
    """A DSSE envelope with exactly one signature."""

    payload: bytes
    sig: bytes
    keyid: str
    payload_type: str = PAYLOAD_TYPE

    def line(self) -> bytes:
        """One note line: compact JSON, no newline inside, ending in ``\\n``."""
        doc = {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "signatures": [{"keyid": self.keyid, "sig": base64.b64encode(self.sig).decode()}],
        }
        return json.dumps(doc, separators=(",", ":")).encode("ascii") + b"\n"

    def signed_bytes(self) -> bytes:
        return pae(self.payload, self.payload_type)


def _b64(value: Any, where: str) -> bytes:
    text = _str(value, where)
    if not text.isascii():
        raise ClaimError(f"{where} is not base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ClaimError(f"{where} is not base64") from exc


def _keyid(value: Any) -> str:
    keyid = _str(value, "keyid")
    if len(keyid) > 256 or not keyid.isascii() or not keyid.isprintable():
        raise ClaimError("keyid is not a short printable ASCII hint")
    return keyid


def parse_line(line: bytes) -> Envelope:
    """One envelope from one note line; :class:`ClaimError` says why a line is not one."""
    try:
        return _parse_line(line)
    except ClaimError:
        raise
    except (ValueError, UnicodeError, RecursionError, TypeError, KeyError, OverflowError) as exc:
        raise ClaimError(f"not a valid envelope: {type(exc).__name__}") from exc


def _parse_line(line: bytes) -> Envelope:
    if len(line) > MAX_LINE_BYTES:
        raise ClaimError(f"line is {len(line)} bytes, over the {MAX_LINE_BYTES}-byte limit")
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ClaimError("not JSON") from exc
    env = _exact_keys(doc, {"payloadType", "payload", "signatures"}, "envelope")
    if env["payloadType"] != PAYLOAD_TYPE:
        raise ClaimError(f"payloadType {env['payloadType']!r} is not {PAYLOAD_TYPE}")
    sigs = env["signatures"]
    if not isinstance(sigs, list) or len(sigs) != 1:
        raise ClaimError("an envelope must carry exactly one signature")
    sig = _exact_keys(sigs[0], {"keyid", "sig"}, "signature")
    raw_sig = _b64(sig["sig"], "sig")
    if len(raw_sig) > MAX_SIG_BYTES:
        raise ClaimError("signature is implausibly large")
    return Envelope(
        payload=_b64(env["payload"], "payload"),
        sig=raw_sig,
        keyid=_keyid(sig["keyid"]),
    )
