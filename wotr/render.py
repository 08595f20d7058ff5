"""Turning reports into text for a person and JSON for a program (DESIGN §2)."""

from __future__ import annotations

import json

from .consensus import Result
from .verify import Report

TYPE_CHECKING = False  # typing itself is not imported at run time (verify's start-up)
if TYPE_CHECKING:
    from typing import Any


def _short(hexdigest: str) -> str:
    return f"sha256:{hexdigest[:16]}…" if hexdigest else "-"


def _head(report: Report) -> str:
    where = f"commit {report.commit[:12]}"
    if report.tag:
        where += f" ({report.tag.removeprefix('refs/tags/')})"
    if report.policy is not None:
        where += f" · policy {report.policy.path} · threshold {report.policy.threshold}"
        if report.policy.serial > 1:  # the policy chain (DESIGN §7) moved: say which serial
            serial, digest = policy_id(report.policy)
            where += f" · serial {serial} ({_short(digest)})"
    if report.repository is not None:
        where += f" · repository {report.repository}"
    return where


def policy_id(policy: Any) -> tuple[int, str]:
    """The serial and digest of the policy used (DESIGN §7), for the report and --json."""
    from .chain import policy_digest

    return policy.serial, policy_digest(policy)


NO_CLAIMS = "no claims on this commit — did you run 'git wotr fetch'?"


def verify_text(report: Report, no_claims: str = NO_CLAIMS) -> str:
    """The report for a person; ``no_claims``: what to say when the commit has no note."""
    result = report.result
    assert result is not None
    out = [_head(report)]
    width = max((len(a.name) for a in result.artifacts), default=0)
    for a in result.artifacts:
        mark = "OK  " if a.verified else "FAIL"
        who = ", ".join(a.signers) or "nobody"
        count = f"{len(a.signers)} of {result.threshold} needed"
        line = f"  {mark}  {a.name:<{width}}  {_short(a.sha256)}  {count}  {who}"
        if a.reason:
            line += f"  — {a.reason}"
        out.append(line)
        for g in a.others:
            out.append(
                f"        {'':<{width}}  {_short(g.sha256)}  claimed by {', '.join(g.signers)}"
                " (differs)"
            )
    for d in result.dissent:
        groups = "; ".join(f"{_short(g.sha256)} by {', '.join(g.signers)}" for g in d.groups)
        out.append(f"  dissent on {d.name}: {groups}")
    for c in result.conflicts:
        out.append(f"  {c.signer} claimed {len(c.digests)} digests for {c.name}: counts for none")
    for u in result.doubts:
        why = u.reason.removeprefix("not checked: ")
        out.append(
            f"  {u.signer}: {u.lines} claim(s) on {u.name} not checked ({why}): "
            "taken at their worst"
        )
    out.extend(_rejected(result))
    if not report.note_lines:
        out.append(f"  {no_claims}")
    out.append(
        "VERIFIED"
        if result.verified
        else f"NOT VERIFIED{': ' + result.reason if result.reason else ''}"
    )
    return "\n".join(out)


def _rejected(result: Result) -> list[str]:
    if not result.rejected:
        return []
    out = [f"  rejected ({len(result.rejected)}):"]
    shown = result.rejected if len(result.rejected) <= 20 else result.rejected[:20]
    for r in shown:
        who = f" [{r.signer}]" if r.signer else ""
        where = f"line {r.line}" if r.line else "note"
        out.append(f"    {where}{who}: {r.reason}")
    if len(shown) < len(result.rejected):
        out.append(f"    … and {len(result.rejected) - len(shown)} more (see --json)")
    return out


def verify_json(report: Report) -> str:
    result = report.result
    assert result is not None
    doc: dict[str, Any] = {
        "verified": result.verified,
        "commit": report.commit,
        "tag": report.tag,
        "threshold": result.threshold,
        "policy": str(report.policy.path) if report.policy else None,
        "policy_serial": policy_id(report.policy)[0] if report.policy else None,
        "policy_digest": policy_id(report.policy)[1] if report.policy else None,
        "repository": report.repository,
        "reason": result.reason,
        "artifacts": [
            {
                "name": a.name,
                "sha256": a.sha256,
                "signers": list(a.signers),
                "verified": a.verified,
                "reason": a.reason,
                "others": [{"sha256": g.sha256, "signers": list(g.signers)} for g in a.others],
            }
            for a in result.artifacts
        ],
        "dissent": [
            {
                "name": d.name,
                "groups": [{"sha256": g.sha256, "signers": list(g.signers)} for g in d.groups],
            }
            for d in result.dissent
        ],
        "conflicts": [
            {"signer": c.signer, "name": c.name, "sha256": list(c.digests)}
            for c in result.conflicts
        ],
        "rejected": [
            {"line": r.line, "reason": r.reason, "signer": r.signer, "fingerprint": r.fingerprint}
            for r in result.rejected
        ],
        "unchecked": [
            {
                "signer": u.signer,
                "name": u.name,
                "sha256": list(u.digests),
                "lines": u.lines,
                "reason": u.reason,
            }
            for u in result.doubts
        ],
    }
    withdrawn = [r for r in result.rejected if r.reason.startswith(("withdrawn", "in part:"))]
    if withdrawn:  # DESIGN §8; absent when nothing was withdrawn
        doc["withdrawn"] = [{"line": r.line, "signer": r.signer} for r in withdrawn]
    return json.dumps(doc, indent=2, ensure_ascii=False)


def show_text(report: Report, no_claims: str = NO_CLAIMS) -> str:
    out = [_head(report)]
    if not report.lines:
        out.append(f"  {no_claims}")
        return "\n".join(out)
    counted = sum(1 for ln in report.lines if ln.counts)
    out.append(f"  {len(report.lines)} claim line(s), {counted} counting")
    for ln in report.lines:
        if ln.counts and ln.claim is not None:
            head = f"  line {ln.line}: {ln.signer} ({ln.claim.role}) key {ln.fingerprint}"
        else:
            who = ln.signer or (
                f"key {ln.fingerprint}"
                if ln.fingerprint
                else f"keyid hint {ln.keyid!r}"
                if ln.keyid
                else "unknown"
            )
            label = "WITHDRAWAL" if ln.reason.startswith("withdrawal") else "REJECTED"
            head = f"  line {ln.line}: {label} {who}: {ln.reason}"
        out.append(head)
        if ln.claim is not None:
            ref = f" for {ln.claim.ref}" if ln.claim.ref else ""
            out.append(f"      role {ln.claim.role}{ref}")
            for s in ln.claim.subjects:
                out.append(f"      {s.name}  sha256:{s.sha256}")
    if report.result is not None and report.result.artifacts:
        out.append("  agreement among counting claims:")
        for a in report.result.artifacts:
            out.append(f"    {a.name}  {_short(a.sha256)}  {', '.join(a.signers)}")
            for g in a.others:
                out.append(
                    f"    {'':<{len(a.name)}}  {_short(g.sha256)}  {', '.join(g.signers)} (differs)"
                )
    return "\n".join(out)


def show_json(report: Report) -> str:
    doc = {
        "commit": report.commit,
        "tag": report.tag,
        "policy": str(report.policy.path) if report.policy else None,
        "claims": [
            {
                "line": ln.line,
                "counts": ln.counts,
                "signer": ln.signer,
                "fingerprint": ln.fingerprint,
                "keyid": ln.keyid,
                "reason": ln.reason,
                "role": ln.claim.role if ln.claim else None,
                "ref": ln.claim.ref if ln.claim else None,
                "artifacts": [
                    {"name": s.name, "sha256": s.sha256}
                    for s in (ln.claim.subjects if ln.claim else ())
                ],
            }
            for ln in report.lines
        ],
        "agreement": [
            {"name": a.name, "sha256": a.sha256, "signers": list(a.signers)}
            for a in (report.result.artifacts if report.result else ())
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)
