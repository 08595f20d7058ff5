#!/usr/bin/env python3
"""Remove each counting rule of DESIGN §6 in turn and check that some test fails.

A test that cannot fail is a defect. For each mutation below, a scratch copy of the repository
gets the rule deleted from the source, the security tests run against that copy, and the
mutation must be *killed* (some test fails). Usage: ``python3 tools/mutate_rules.py [NAME...]``.
Takes a few minutes; not part of ``make test``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = [
    "tests/test_attacks.py",
    "tests/test_consensus.py",
    "tests/test_policy.py",
    "tests/test_openpgp.py",
    "tests/test_gpg_status.py",
    "tests/test_claim.py",
    "tests/test_notes.py",
    "tests/test_bundle.py",
    "tests/test_ssh.py",
    "tests/test_ssh_attacks.py",
]


@dataclass(frozen=True)
class Mutation:
    name: str
    rule: str
    file: str
    edits: tuple[tuple[str, str], ...]


MUTATIONS = [
    Mutation(
        "user-gnupghome",
        "1",
        "wotr/gpg.py",
        (
            (
                '"--homedir",\n            str(home or self._home),',
                '"--homedir",\n            os.environ.get("GNUPGHOME", str(home or self._home)),',
            ),
            (
                'self._keyring_args = ["--no-default-keyring", "--keyring", str(keyfile)]',
                "self._keyring_args = []",
            ),
        ),
    ),
    Mutation(
        "subkey-not-primary",
        "2",
        "wotr/gpg.py",
        (("(valid[9] if len(valid) >= 10 else valid[0])", "valid[0]"),),
    ),
    Mutation(
        "count-signatures",
        "2",
        "wotr/consensus.py",
        (
            (
                "counted.append(Counted(item.line, signer.name, item.fingerprint, claim))",
                "counted.append(Counted(item.line, signer.name + '#' + str(item.line), "
                "item.fingerprint, claim))",
            ),
        ),
    ),
    Mutation(
        "unlisted-keys-in-keyring",
        "2",
        "wotr/policy.py",
        (
            (
                '            keyring += b"".join(found[fpr])\n',
                '            keyring += b"".join(b"".join(v) for v in found.values())\n',
            ),
            (
                "        for fpr in fprs:\n            if fpr not in found:",
                "        for fpr in fprs:\n            if False:",
            ),
        ),
    ),
    Mutation(
        "unlisted-keys-count",
        "2",
        "wotr/consensus.py",
        (
            (
                "        signer = policy.signer_for(item.fingerprint)\n        if signer is None:",
                "        signer = policy.signer_for(item.fingerprint) or policy.signers[0]\n"
                "        if signer is None:",
            ),
        ),
    ),
    *[
        Mutation(f"taint-{kw}", "3", "wotr/gpg.py", ((f'    "{kw}": ', f'    "X{kw}": '),))
        for kw in ("BADSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG")
    ],
    Mutation(
        "one-goodsig",
        "3",
        "wotr/gpg.py",
        (
            (
                'counts.count("GOODSIG") != 1 or counts.count("VALIDSIG") != 1 or "NODATA" in kws',
                "False",
            ),
        ),
    ),
    Mutation("sig-class", "3", "wotr/gpg.py", (('    if valid[8] != "00":', "    if False:"),)),
    Mutation(
        "sig-class-packet", "3", "wotr/_openpgp.py", (("    if body[1] != 0x00:", "    if False:"),)
    ),
    Mutation(
        "weak-digest",
        "3",
        "wotr/gpg.py",
        (
            ('"--weak-digest",\n                "SHA1",', ""),
            ("int(valid[7]) in _openpgp.WEAK_HASHES", "False"),
        ),
    ),
    Mutation(
        "weak-digest-packet",
        "3",
        "wotr/_openpgp.py",
        (("    if body[3] in WEAK_HASHES:", "    if False:"),),
    ),
    Mutation(
        "several-sigs-in-blob",
        "3",
        "wotr/_openpgp.py",
        (("    if len(packets) != 1:", "    if not packets:"),),
    ),
    Mutation(
        "key-copies-not-merged",
        "3",
        "wotr/policy.py",
        (("            copies = copies or len(found[fpr]) > 1", "            copies = False"),),
    ),
    Mutation(
        "copied-claim",
        "4",
        "wotr/consensus.py",
        (("        if claim.commit != commit:", "        if False:"),),
    ),
    Mutation(
        "copied-claim-early",
        "4",
        "wotr/verify.py",
        (
            (
                "        if parsed.commit != ctx.commit or parsed.tree != ctx.tree:",
                "        if False:",
            ),
        ),
    ),
    Mutation(
        "wrong-tree",
        "4",
        "wotr/consensus.py",
        (("        elif claim.tree != tree:", "        elif False:"),),
    ),
    Mutation(
        "role",
        "5",
        "wotr/policy.py",
        (("return self.roles is None or role in self.roles", "return True"),),
    ),
    Mutation(
        "tag",
        "6",
        "wotr/consensus.py",
        (("        elif tag is not None and claim.ref != tag:", "        elif False:"),),
    ),
    Mutation(
        "two-digests",
        "7",
        "wotr/consensus.py",
        (("        if len(digests) > 1\n", "        if False\n"),),
    ),
    Mutation(
        "garbage-stops-scan",
        "8",
        "wotr/verify.py",
        (
            (
                '            sink.drop(number, f"not a valid wotr claim: {exc}")\n            continue',
                '            sink.drop(number, f"not a valid wotr claim: {exc}")\n            break',
            ),
        ),
    ),
    Mutation(
        "tag-peel",
        "6",
        "wotr/git.py",
        (('    base = _SAME_COMMIT.sub("", rev) or rev', "    base = rev"),),
    ),
    Mutation(
        "tag-ambiguous",
        "6",
        "wotr/git.py",
        (("    if not full:\n", "    if False:\n"),),
    ),
    Mutation(
        "gpg-home-without-signatures",
        "8",
        "wotr/verify.py",
        (
            (
                "    if groups:\n        with gpg.Verifier(",
                "    if True:\n        with gpg.Verifier(",
            ),
        ),
    ),
    Mutation(
        "bundle-bytes-uncapped",
        "8",
        "wotr/offline.py",
        (("        if read_bytes + size > MAX_BUNDLE_BYTES_PER_RUN:", "        if False:"),),
    ),
    Mutation(
        "gate-in-note-order",
        "8",
        "wotr/verify.py",
        (
            (
                "    order = [q[i] for i in range(rounds) for q in queues.values() if i < len(q)]",
                "    order = sorted((x for q in queues.values() for x in q), key=lambda x: x[1][0])",
            ),
        ),
    ),
    Mutation(
        "issuer-gate",
        "8",
        "wotr/verify.py",
        (("            ours = ids & policy.issuer_ids", "            ours = ids or {'none'}"),),
    ),
    Mutation(
        "signature-budget",
        "8",
        "wotr/verify.py",
        (("        if budget == 0:", "        if False:"),),
    ),
    Mutation(
        "run-budget",
        "8",
        "wotr/verify.py",
        (("        if run is not None and run.left == 0:", "        if False:"),),
    ),
    Mutation(
        "huge-note-counts",
        "8",
        "wotr/verify.py",
        (("    if notes.too_large(note):", "    if False:"),),
    ),
    Mutation(
        "note-read-uncapped",
        "8",
        "wotr/notes.py",
        (('"show", commit, max_stdout=MAX_NOTE_BYTES)', '"show", commit)'),),
    ),
    Mutation(
        "rejections-unlisted-cap",
        "8",
        "wotr/verify.py",
        (("        if len(self.rejected) >= MAX_LISTED_REJECTIONS:", "        if False:"),),
    ),
    Mutation(
        "no-line-limit",
        "8",
        "wotr/claim.py",
        (("    if len(line) > MAX_LINE_BYTES:", "    if False:"),),
    ),
    Mutation(
        "unpinned-policy",
        "§5",
        "wotr/policy.py",
        (("        if pin is not None and pin.get(rel) != digest:", "        if False:"),),
    ),
    # DESIGN §9: SSH claims (wotr/_sshsig.py, wotr/ssh.py, the policy's ssh field).
    Mutation(
        "ssh-namespace",
        "9",
        "wotr/_sshsig.py",
        (("    if namespace != NAMESPACE.encode():", "    if False:"),),
    ),
    Mutation(
        "ssh-issuer-gate",
        "8",
        "wotr/verify.py",
        (
            (
                "        ours = frozenset({fpr}) if any(f == fpr for f, _ in policy.ssh_keys) else frozenset()",
                "        ours = frozenset({fpr})",
            ),
        ),
    ),
    Mutation(
        "ssh-one-queue",
        "8",
        "wotr/verify.py",
        (("        ours = frozenset({fpr}) if any(", '        ours = frozenset({"ssh"}) if any('),),
    ),
    Mutation(
        "ssh-trailing-bytes",
        "3",
        "wotr/_sshsig.py",
        (("    inner = _Reader(r.string())\n    r.end()\n", "    inner = _Reader(r.string())\n"),),
    ),
    Mutation(
        "ssh-bad-signature-counts",
        "3",
        "wotr/ssh.py",
        (
            (
                '        if res.returncode == 0 and good.startswith(expected) and good.endswith(f" key {fpr}"):',
                "        if True:",
            ),
        ),
    ),
    Mutation(
        "ssh-rsa-bits",
        "9",
        "wotr/_sshsig.py",
        (("        if bits < MIN_RSA_BITS:", "        if False:"),),
    ),
    Mutation("ssh-dsa", "9", "wotr/_sshsig.py", (('    "ssh-dss": "DSA', '    "ssh-dsx": "DSA'),)),
    Mutation(
        "ssh-inprocess-accepts",
        "3",
        "wotr/ssh.py",
        (("            key.verify(sig.value, sig.signed_data(message))", "            pass"),),
    ),
    Mutation(
        "ssh-ed25519-canonical",
        "3",
        "wotr/_sshsig.py",
        (('int.from_bytes(value[32:], "little") >= _ED25519_L', "False"),),
    ),
    Mutation(
        "ssh-key-two-signers",
        "9",
        "wotr/policy.py",
        (("        if key.fingerprint in owner:", "        if False:"),),
    ),
]


def run(mutation: Mutation, scratch: Path) -> bool:
    """True when the mutation is killed (some test fails)."""
    target = scratch / mutation.file
    original = (ROOT / mutation.file).read_text()
    text = original
    for old, new in mutation.edits:
        if old not in text:
            raise SystemExit(f"{mutation.name}: pattern not found in {mutation.file}: {old!r}")
        text = text.replace(old, new)
    target.write_text(text)
    try:
        env = {**os.environ, "PYTHONPATH": str(scratch)}
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-x",
                "-q",
                "-n",
                "2",
                "-p",
                "no:cacheprovider",
                *TESTS,
            ],
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return res.returncode != 0
    finally:
        target.write_text(original)


def missing_patterns(mutations: list[Mutation]) -> list[str]:
    out = []
    for m in mutations:
        text = (ROOT / m.file).read_text()
        out += [f"{m.name}: {old!r} not in {m.file}" for old, _ in m.edits if old not in text]
    return out


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTATIONS if not argv or m.name in argv]
    missing = missing_patterns(chosen)
    if missing:
        print("the source changed; update these mutations:", *missing, sep="\n  ")
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="wotr-mut-"))
    try:
        shutil.copytree(
            ROOT,
            scratch,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.pyc"),
        )
        survived = []
        for m in chosen:
            killed = run(m, scratch)
            print(
                f"rule {m.rule:>3}  {m.name:<28} {'killed' if killed else 'SURVIVED'}", flush=True
            )
            if not killed:
                survived.append(m.name)
        print(f"{len(chosen) - len(survived)}/{len(chosen)} mutations killed")
        return 1 if survived else 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
