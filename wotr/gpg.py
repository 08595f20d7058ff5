"""The only module that talks to GnuPG.

Verification (DESIGN §6 rules 1-3) runs gpg directly and reads its ``--status-fd`` output:
- in an isolated temporary home holding only a keyring file with the policy's keys
  (``--no-options``: the user's gpg.conf, keyring, trust database, agent and network are
  never consulted);
- only a *clean* good signature counts: GOODSIG and VALIDSIG and nothing else that taints
  it (bad, expired or revoked key, expired signature, missing key, weak digest);
- the signer is the primary-key fingerprint, the last field of VALIDSIG;
- all signatures over one payload are checked in one gpg call; gpg stops at the first bad
  signature, so the rest are retried in a fresh call (never assumed good).

Signing runs the user's gpg directly too; key export for ``init`` uses python-gnupg (imported
lazily: it is on neither the verify nor the sign path).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path

from . import _fs, _openpgp, _proc
from ._record import record
from ._threads import Running, join_all, started
from .errors import EnvironmentProblem, SignError

TYPE_CHECKING = False  # typing itself is not imported at run time (verify's start-up)
if TYPE_CHECKING:
    from typing import Any

# Status keywords that make a signature not count even next to GOODSIG. gpg reports the state
# of the key that made the signature in place of GOODSIG (EXPKEYSIG, REVKEYSIG, EXPSIG), and
# exactly one GOODSIG is required. KEYEXPIRED / KEYREVOKED are NOT taints: gpg prints them for
# any expired or revoked subkey of the key, also when the primary key signed validly.
_TAINTS = {
    "BADSIG": "bad signature: the claim or the signature was altered",
    "EXPSIG": "the signature has expired",
    "EXPKEYSIG": "the signing key has expired",
    "REVKEYSIG": "the signing key has been revoked",
}


# Signatures per gpg process before a second process on another core pays for its start-up:
# with the keyring given as --keyring, gpg spends ~4 ms per signature (it re-checks the key's
# self-signatures on every lookup) against ~3 ms to start.
_PER_CHAIN = 2

# check_many: from this many signatures on, the policy keys are imported into a keybox first
# (one gpg process, then ~1 ms less per signature); payloads over this size are checked
# detached (one copy of the data per signature would cost too much); files per gpg call.
_IMPORT_AT = 24
_MESSAGE_DATA_MAX = 256 * 1024
_FILES_PER_CALL = 2000


@record
class SigCheck:
    ok: bool
    fingerprint: str | None  # primary fingerprint from VALIDSIG; None when gpg gave none
    reason: str = ""
    signing_key: str = ""  # fingerprint of the (sub)key that made it (VALIDSIG, first field)


def _short_tmp() -> str | None:
    """A temp dir short enough for gpg's socket paths (in case gpg ever makes one there)."""
    tmp = _fs.temp_root()
    return tmp if len(tmp) <= 40 else "/tmp"


def _gpg_program() -> str:
    return os.environ.get("WOTR_GPG", "gpg")


def _judge(block: list[tuple[str, list[str]]]) -> SigCheck:
    kws = {kw: args for kw, args in block}
    counts = [kw for kw, _ in block]
    valid = kws.get("VALIDSIG")
    fpr = None
    if valid:
        fpr = (valid[9] if len(valid) >= 10 else valid[0]).upper()
    for kw, why in _TAINTS.items():
        if kw in kws:
            return SigCheck(False, fpr, why)
    if "ERRSIG" in kws:
        args = kws["ERRSIG"]
        rc = args[5] if len(args) > 5 else ""
        keyid = args[6] if len(args) > 6 and args[6] != "-" else args[0] if args else "?"
        if rc == "9" or "NO_PUBKEY" in kws:
            return SigCheck(False, None, f"signed by key {keyid}, which is not in the policy")
        return SigCheck(
            False,
            None,
            f"gpg cannot check this signature (error {rc or '?'}; "
            "weak digest or unsupported algorithm)",
        )
    if counts.count("GOODSIG") != 1 or counts.count("VALIDSIG") != 1 or "NODATA" in kws:
        return SigCheck(False, fpr, "gpg did not report exactly one good signature")
    if valid is None or fpr is None:
        return SigCheck(False, fpr, "gpg did not report a good signature")
    if len(valid) < 9 or not valid[7].isdigit() or int(valid[7]) in _openpgp.WEAK_HASHES:
        return SigCheck(False, fpr, "the signature uses a weak digest")
    if valid[8] != "00":
        return SigCheck(False, fpr, f"signature class {valid[8]} is not a document signature")
    return SigCheck(True, fpr, signing_key=valid[0].upper())


def _literal(data: bytes) -> bytes:
    """An OpenPGP literal data packet (RFC 4880 §5.9): binary, no file name, date 0."""
    body = b"b\x00\x00\x00\x00\x00" + data
    return b"\xcb\xff" + len(body).to_bytes(4, "big") + body


def _file_blocks(status: bytes) -> list[tuple[str, list[list[tuple[str, list[str]]]]]]:
    """``--verify-files`` status: per file gpg named (FILE_START), one block per signature."""
    files: list[tuple[str, list[list[tuple[str, list[str]]]]]] = []
    for raw in status.splitlines():
        if not raw.startswith(b"[GNUPG:] "):
            continue
        parts = raw[9:].decode("utf-8", "replace").split(" ")
        if parts[0] == "FILE_START":
            # The name byte for byte, decoded as Python decodes file names: a temp dir whose
            # name is not UTF-8 must still match (else no result is ever tied to its file).
            fields = raw[9:].split(b" ", 2)
            name = fields[2] if len(fields) == 3 else b""
            files.append((os.fsdecode(name), []))
        elif parts[0] == "FILE_DONE" or not files:
            continue
        elif parts[0] == "NEWSIG":
            files[-1][1].append([])
        elif files[-1][1]:
            files[-1][1][-1].append((parts[0], parts[1:]))
    return files


def _blocks(status: bytes) -> list[list[tuple[str, list[str]]]]:
    """Split gpg status output into one block per signature (each starts at NEWSIG)."""
    blocks: list[list[tuple[str, list[str]]]] = []
    for raw in status.splitlines():
        if not raw.startswith(b"[GNUPG:] "):
            continue
        parts = raw[9:].decode("utf-8", "replace").split(" ")
        if parts[0] == "NEWSIG":
            blocks.append([])
        elif blocks:
            blocks[-1].append((parts[0], parts[1:]))
    return blocks


class Verifier(_fs.PrivateHome):
    """A temporary GnuPG home whose only keys are ``keyring`` (binary OpenPGP key packets)."""

    def __init__(self, keyring: bytes, *, merge_copies: bool = False) -> None:
        super().__init__("wotr-", _short_tmp())
        with self._setting_up():
            keyfile = self._home / "policy.gpg"
            keyfile.write_bytes(keyring)
            self._calls = 0
            self._lock = threading.Lock()
            # gpg reads a --keyring file as is, and when one key appears twice only the first
            # copy counts (a stripped copy could hide a revocation). Copies are merged by import.
            self._keyring_args = ["--no-default-keyring", "--keyring", str(keyfile)]
            self._imported = False
            if merge_copies:
                self._import()

    def _import(self) -> None:
        """Import the policy keys into this home's keybox, and check against that from now on.

        gpg reads a ``--keyring`` file of key packets again on every key lookup (~3 ms per
        signature more); a keybox it looks up fast. Import also merges copies of one key, so a
        revocation in any copy stands. The keybox is only read afterwards, so the sibling homes
        of parallel chains share it as they share the key file."""
        if self._imported:
            return
        keyfile = self._home / "policy.gpg"
        res = _proc.run([_gpg_program(), *self._base_args(), "--import", str(keyfile)])
        if res.returncode not in (0, 2) or not (self._home / "pubring.kbx").is_file():
            self.close()
            raise EnvironmentProblem(f"gpg cannot import the policy keys: {res.err_line}")
        self._keyring_args = ["--no-default-keyring", "--keyring", str(self._home / "pubring.kbx")]
        self._imported = True

    def _base_args(self, home: Path | None = None) -> list[str]:
        return [
            "--homedir",
            str(home or self._home),
            "--no-options",
            "--batch",
            "--no-tty",
            "--no-autostart",
            "--disable-dirmngr",
            "--no-auto-key-retrieve",
        ]

    @property
    def gpg_calls(self) -> int:
        return self._calls

    def _run(self, data: Path, sigs: Path, home: Path | None = None) -> _proc.Result:
        return self._gpg(home, "--verify", str(sigs), str(data))

    def _gpg(self, home: Path | None, *args: str) -> _proc.Result:
        with self._lock:
            self._calls += 1
        # ``home``: a sibling home of a parallel chain; the keyring file (read-only) is shared.
        return _proc.run(
            [
                _gpg_program(),
                *self._base_args(home),
                *self._keyring_args,
                "--trust-model",
                "always",
                "--weak-digest",
                "SHA1",
                "--status-fd",
                "1",
                *args,
            ]
        )

    def check(self, data: bytes, sigs: Sequence[bytes]) -> list[SigCheck]:
        """One :class:`SigCheck` per signature in ``sigs``, each a detached sig over ``data``.

        gpg checks a file of signatures one after the other and stops at the first BAD one;
        the signatures after it go to a fresh call (never assumed good). Each call settles at
        least one signature and no signature is checked twice, so n signatures cost at most
        n calls whatever their order (DESIGN §6 rule 8). Many signatures are split into one
        chain per core, run side by side (each gpg call is single-threaded).
        """
        results: list[SigCheck | None] = [None] * len(sigs)
        pending: list[int] = []
        for i, sig in enumerate(sigs):
            try:
                _openpgp.check_single_signature(sig)
            except _openpgp.PacketError as exc:
                results[i] = SigCheck(False, None, str(exc))
            else:
                pending.append(i)
        if pending:
            if len(pending) >= _IMPORT_AT:
                self._import()
            work = _fs.private_dir("v", self._home)
            data_file = work / "data"
            data_file.write_bytes(data)
            chains = self._chains(pending)
            if len(chains) == 1:
                self._chain(data_file, sigs, chains[0], results, work, None)
            else:
                homes = [None, *(self._sibling_home(work, n) for n in range(1, len(chains)))]
                running: list[Running[None]] = []
                try:
                    for chain, home in zip(chains, homes, strict=True):
                        running.append(
                            started(self._chain, data_file, sigs, chain, results, work, home)
                        )
                finally:
                    join_all(running)  # every chain ends before the home can be removed
        return [r if r is not None else SigCheck(False, None, "not checked") for r in results]

    def check_many(self, jobs: Sequence[tuple[bytes, Sequence[bytes]]]) -> list[list[SigCheck]]:
        """:meth:`check` of several (data, signatures) jobs, in this one isolated home.

        Offline, one verify may ask about thousands of commits, each with its own payload. A
        detached check needs one gpg process per payload; instead each signature becomes a
        signed message of its own (the signature packet, then a literal data packet holding
        the payload: what gpg hashes for a binary signature is the same bytes) and
        ``gpg --verify-files`` checks many such files in one process. gpg names each file
        (FILE_START) before its signature's status, so a result is tied to its signature by
        the file gpg read, never by position. As with :meth:`check`, gpg stops at a BAD
        signature and the files after it go to a fresh call; each call settles at least one.
        """
        results: list[list[SigCheck | None]] = [[None] * len(sigs) for _, sigs in jobs]
        pending: list[tuple[int, int]] = []
        for j, (data, sigs) in enumerate(jobs):
            if len(jobs) == 1 or len(data) > _MESSAGE_DATA_MAX:
                results[j] = list(self.check(data, sigs))  # one payload: detached, data once
                continue
            for i, sig in enumerate(sigs):
                try:
                    _openpgp.check_single_signature(sig)
                except _openpgp.PacketError as exc:
                    results[j][i] = SigCheck(False, None, str(exc))
                else:
                    pending.append((j, i))
        if pending:
            if len(pending) >= _IMPORT_AT:
                self._import()
            work = _fs.private_dir("m", self._home)
            files: dict[str, tuple[int, int]] = {}
            names: list[str] = []
            for n, (j, i) in enumerate(pending):
                name = str(work / f"m{n}")
                with open(name, "xb") as f:
                    f.write(jobs[j][1][i])
                    f.write(_literal(jobs[j][0]))
                files[name] = (j, i)
                names.append(name)
            chains = self._chains(list(range(len(names))))
            homes = [None, *(self._sibling_home(work, n) for n in range(1, len(chains)))]
            running: list[Running[None]] = []
            try:
                for chain, home in zip(chains, homes, strict=True):
                    part = [names[k] for k in chain]
                    running.append(started(self._file_chain, part, files, results, home))
            finally:
                join_all(running)  # every chain ends before the home can be removed
        return [
            [r if r is not None else SigCheck(False, None, "not checked") for r in job]
            for job in results
        ]

    def _file_chain(
        self,
        names: list[str],
        files: dict[str, tuple[int, int]],
        results: list[list[SigCheck | None]],
        home: Path | None,
    ) -> None:
        while names:
            batch = names[:_FILES_PER_CALL]
            where = {name: k for k, name in enumerate(batch)}
            res = self._gpg(home, "--verify-files", "--", *batch)
            seen = _file_blocks(res.stdout)
            done: set[str] = set()
            for name, blocks in seen:
                if name not in where or name in done:
                    continue  # never a file of this call: ignore (cannot settle anything)
                done.add(name)
                j, i = files[name]
                if len(blocks) == 1:
                    results[j][i] = _judge(blocks[0])
                else:
                    why = f"gpg reported {len(blocks)} signatures for one signature"
                    results[j][i] = SigCheck(False, None, why)
            if not done:
                if res.returncode not in (0, 1) and not res.stdout:
                    self._environment_check(res)
                j, i = files[batch[0]]
                results[j][i] = SigCheck(False, None, f"gpg: {res.err_line}")
                done.add(batch[0])
            # gpg goes through the files in order and stops after a BAD one: the next call
            # starts after the last file it named.
            last = max(where[name] for name in done)
            names = names[last + 1 :]

    def _chains(self, pending: list[int]) -> list[list[int]]:
        """Contiguous runs of ``pending``: one per core, of about _PER_CHAIN signatures or more."""
        n = max(1, min(os.cpu_count() or 1, -(-len(pending) // _PER_CHAIN)))
        size = -(-len(pending) // n)
        return [pending[k : k + size] for k in range(0, len(pending), size)]

    def _sibling_home(self, work: Path, n: int) -> Path:
        home = work / f"h{n}"
        home.mkdir(mode=0o700)
        return home

    def _chain(
        self,
        data_file: Path,
        sigs: Sequence[bytes],
        pending: list[int],
        results: list[SigCheck | None],
        work: Path,
        home: Path | None,
    ) -> None:
        sig_file = work / f"sigs{pending[0]}"
        while pending:
            sig_file.write_bytes(b"".join(sigs[i] for i in pending))
            res = self._run(data_file, sig_file, home)
            blocks = _blocks(res.stdout)
            if not blocks:
                if res.returncode not in (0, 1) and not res.stdout:
                    self._environment_check(res)
                results[pending[0]] = SigCheck(False, None, f"gpg: {res.err_line}")
                pending = pending[1:]
                continue
            for i, block in zip(pending, blocks, strict=False):
                results[i] = _judge(block)
            pending = pending[len(blocks) :]

    def _environment_check(self, res: _proc.Result) -> None:
        """gpg printed no status at all: is gpg itself broken? (exit 3, not 'not verified')."""
        probe = _proc.run([_gpg_program(), "--homedir", str(self._home), "--version"])
        if probe.returncode != 0:
            raise EnvironmentProblem(
                f"gpg does not work: {res.err_line}", "check the GnuPG installation (gpg --version)"
            )


# --- signing ------------------------------------------------------------------------------------
#
# The user's own gpg signs (their home, agent, pinentry and gpg.conf), called directly: one process
# that signs, one that exports the public key of the key that signed, and the isolated Verifier
# checks the new signature before wotr writes anything. python-gnupg (an import of ~30 ms plus a
# `gpg --list-config` and a `--list-secret-keys` process) stays for key handling in ``init``.

# --key given as a full fingerprint (optionally 0x-prefixed, optionally with gpg's "exactly this
# subkey" '!'): it names one key, so no listing is needed to know which key must have signed.
_FULL_FPR = r"(?:0[xX])?([0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})!?"  # sign only: compiled on use


def _user_gpg(*args: str, input: bytes | None = None) -> _proc.Result:
    """Run the user's gpg (GNUPGHOME honoured, their gpg.conf and agent in use), status on fd 2."""
    home = os.environ.get("GNUPGHOME")
    argv = [_gpg_program(), "--status-fd", "2", "--no-tty", "--batch"]
    if home:
        argv += ["--homedir", home]
    return _proc.run([*argv, *args], input=input)


def _status(res: _proc.Result) -> list[tuple[str, list[str]]]:
    out = []
    for raw in res.stderr.splitlines():
        if raw.startswith(b"[GNUPG:] "):
            parts = raw[9:].decode("utf-8", "replace").split(" ")
            out.append((parts[0], parts[1:]))
    return out


def _gpg_message(res: _proc.Result) -> str:
    """gpg's last human-readable line (status lines left out), for one-line errors."""
    lines = [
        ln.strip()
        for ln in res.stderr.decode("utf-8", "replace").splitlines()
        if ln.strip() and not ln.startswith("[GNUPG:] ")
    ]
    return lines[-1].removeprefix("gpg: ") if lines else f"exit status {res.returncode}"


@record
class Signature:
    sig: bytes
    fingerprint: str  # primary fingerprint, as checked by verifying the new signature


def _secret_key(key: str) -> str:
    """Primary fingerprint of the one secret key that ``key`` (a user id or key id) names."""
    res = _user_gpg("--with-colons", "--fixed-list-mode", "--list-secret-keys", "--", key)
    found: list[str] = []
    record = ""
    for line in res.stdout.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if fields[0] == "fpr" and record == "sec" and len(fields) > 9:
            found.append(fields[9].upper())  # the fingerprint right after a "sec" record
        record = fields[0]
    if not found:
        raise SignError(
            f"gpg could not sign: no secret key matching {key}",
            "check 'gpg --list-secret-keys', or pass --key FINGERPRINT",
        )
    if len(found) > 1:
        raise SignError(
            f"--key {key} matches {len(found)} secret keys",
            "pass the full fingerprint of the key to use",
        )
    return found[0]


def sign(data: bytes, key: str | None) -> Signature:
    """Sign ``data`` (detached, binary) with ``key`` or gpg's default key, then check it.

    ``--local-user`` (not ``--default-key``, which gpg silently replaces by another secret key
    when the named one is missing or unusable) makes gpg fail unless the named key signs.
    """
    who = f"key {key}" if key else "the default key"
    full = re.fullmatch(_FULL_FPR, key) if key else None
    expected = full[1].upper() if full else _secret_key(key) if key else None
    args = ["--local-user", key] if key else []
    res = _user_gpg(*args, "--digest-algo", "SHA512", "--detach-sign", "--output", "-", input=data)
    status = _status(res)
    created = [a for kw, a in status if kw == "SIG_CREATED"]
    if res.returncode != 0 or len(created) != 1 or not res.stdout:
        raise SignError(
            f"gpg could not sign with {who}: {_gpg_message(res)}",
            "check the key with 'gpg --list-secret-keys' (is it present, unexpired, unrevoked?)",
        )
    sig = res.stdout
    signer = created[0][5].upper() if len(created[0]) > 5 else ""
    public = _user_gpg("--export", "--", signer).stdout if signer else b""
    if not public:
        raise SignError(f"cannot export the public key of {signer or who} to check the signature")
    with Verifier(public) as verifier:
        (check,) = verifier.check(data, [sig])
    if not check.ok or check.fingerprint is None:
        raise SignError(
            f"the new signature does not verify: {check.reason}",
            "the key may be expired or revoked, or gpg.conf forces a weak digest",
        )
    if expected is not None and expected not in (check.fingerprint, check.signing_key):
        raise SignError(
            f"gpg signed with key {check.fingerprint}, not with the requested {key}",
            "check the key with 'gpg --list-secret-keys'",
        )
    return Signature(sig, check.fingerprint)


# --- key handling (python-gnupg) ------------------------------------------------------------------


def _gnupg() -> Any:
    try:
        import gnupg
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise EnvironmentProblem(
            "python-gnupg is not installed", "pip install python-gnupg"
        ) from exc
    try:
        return gnupg.GPG(gpgbinary=_gpg_program(), gnupghome=os.environ.get("GNUPGHOME"))
    except (OSError, ValueError, RuntimeError) as exc:
        raise EnvironmentProblem(
            f"cannot run gpg: {exc}", "install GnuPG (apt-get install gnupg)"
        ) from exc


def export_public(key: str | None) -> tuple[str, bytes]:
    """(primary fingerprint, armored public key) of ``key`` or gpg's default secret key."""
    g = _gnupg()
    secret = g.list_keys(secret=True, keys=key) if key else g.list_keys(secret=True)
    if not secret:
        raise SignError(
            f"no secret key {'matching ' + key if key else 'in the keyring'}",
            "create one with 'gpg --quick-gen-key' or pass --key",
        )
    fpr = str(secret[0]["fingerprint"]).upper()
    armored = g.export_keys(fpr)
    return fpr, armored.encode("ascii") if isinstance(armored, str) else bytes(armored)


def own_public(key: str | None) -> tuple[str, bytes] | None:
    """(primary fingerprint, binary public key) of the key ``sign`` would use; None when gpg
    has no such single secret key. Used to recognise one's own claims (``follow``)."""
    try:
        fpr = _secret_key(key) if key else export_public(None)[0]
    except (SignError, EnvironmentProblem):
        return None
    public = _user_gpg("--export", "--", fpr).stdout
    return (fpr, public) if public else None
