"""The only module that runs ssh-keygen: SSH-signed claims (DESIGN §9).

Verification keeps the rules of DESIGN §6 for SSH keys:
- ``ssh-keygen -Y verify`` checks against an allowed-signers file that wotr writes in a private
  temporary directory from the policy alone (never ``~/.ssh``, never git's
  ``gpg.ssh.allowedSignersFile``), with ``HOME`` pointed at that directory; namespace ``wotr`` only;
- the signer is the public key inside the SSHSIG blob (parsed first, :mod:`wotr._sshsig`), asked
  for by its own principal with ``-I``: ssh-keygen must say ``Good "wotr" signature for <that
  principal> with … key <that fingerprint>`` and exit 0, or the signature does not count;
- ssh-keygen checks one signature per process, so the signatures are split into one chain per
  core and run side by side (each bad signature costs one process, and no more: rule 8).

Signing runs the user's ssh-keygen (their agent, their key files) as git does for
``gpg.format = ssh``: ``ssh-keygen -Y sign -n wotr -f <key>``, then checks the new signature.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from . import _fs, _proc, _sshsig
from ._record import record
from ._threads import Running, join_all, started
from .errors import EnvironmentProblem, SignError
from .gpg import SigCheck

# Importing ``cryptography`` costs about two ssh-keygen processes: below this many rounds of
# ssh-keygen per core, the processes are cheaper than the import.
_ROUNDS_BEFORE_IMPORT = 2


def use_in_process(count: int) -> bool:
    """Check ``count`` ed25519 signatures in process? ``$WOTR_SSH_VERIFIER``: ``ssh-keygen``
    never (the reference; every signature goes to it), ``in-process`` always (when
    ``cryptography`` is installed); unset, when they are more than ssh-keygen does in
    _ROUNDS_BEFORE_IMPORT rounds on every core."""
    mode = os.environ.get("WOTR_SSH_VERIFIER", "")
    if mode == "ssh-keygen":
        return False
    return mode == "in-process" or count > _ROUNDS_BEFORE_IMPORT * (os.cpu_count() or 1)


def _in_process() -> Callable[[_sshsig.Signature, bytes], bool] | None:
    """The in-process ed25519 verifier, or None when ``cryptography`` is not installed."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return None

    def verify(sig: _sshsig.Signature, message: bytes) -> bool:
        try:
            key = Ed25519PublicKey.from_public_bytes(sig.key.blob[-32:])
            key.verify(sig.value, sig.signed_data(message))
        except (InvalidSignature, ValueError):  # ValueError: 32 bytes that are no key
            return False
        return True

    return verify


def warm_up(count: int) -> None:
    """Import the in-process verifier now if ``count`` signatures will want it (a thread beside
    gpg's processes, in a mixed policy)."""
    if use_in_process(count):
        _in_process()


def _keygen() -> str:
    program = os.environ.get("WOTR_SSH_KEYGEN", "ssh-keygen")
    if os.sep not in program and _fs.which(program) is None:
        raise EnvironmentProblem(
            f"{program} is not installed or not on PATH (needed for SSH-signed claims)",
            "install OpenSSH (Debian: apt-get install openssh-client)",
        )
    return program


class Verifier(_fs.PrivateHome):
    """A private directory holding an allowed-signers file made of ``keys`` only: pairs of
    (``SHA256:`` fingerprint, ``<type> <base64>`` line), as :attr:`wotr.policy.Policy.ssh_keys`."""

    def __init__(self, keys: Sequence[tuple[str, str]]) -> None:
        super().__init__("wotr-ssh-")
        self._principal = {fpr: f"k{i}" for i, (fpr, _) in enumerate(keys)}
        self._allowed = self._home / "allowed_signers"
        with self._setting_up():
            self._allowed.write_text(
                "".join(f'k{i} namespaces="wotr" {line}\n' for i, (_, line) in enumerate(keys)),
                "ascii",
            )
        self._calls = 0
        self._in_process = 0
        self._program = ""
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        """ssh-keygen processes started."""
        return self._calls

    @property
    def in_process(self) -> int:
        """Signatures checked in process (ed25519 with ``cryptography``)."""
        return self._in_process

    def check(self, items: Sequence[tuple[bytes, bytes]]) -> list[SigCheck]:
        """One :class:`~wotr.gpg.SigCheck` per ``(data, sig)``; ``fingerprint`` is the SSH key's
        ``SHA256:`` fingerprint. Chains of signatures run side by side, one per core."""
        results: list[SigCheck | None] = [None] * len(items)
        pending: list[tuple[int, str, str]] = []  # (index, principal, fingerprint)
        known: list[tuple[int, _sshsig.Signature, str]] = []
        for i, (_, sig) in enumerate(items):
            try:
                parsed = _sshsig.parse_signature(sig)
            except _sshsig.SshFormatError as exc:
                results[i] = SigCheck(False, None, str(exc))
                continue
            fpr = parsed.key.fingerprint
            principal = self._principal.get(fpr)
            if principal is None:
                results[i] = SigCheck(False, None, f"signed by SSH key {fpr}, not in the policy")
                continue
            known.append((i, parsed, principal))
        ed25519 = sum(1 for _, parsed, _ in known if parsed.key.type == "ssh-ed25519")
        fast = _in_process() if use_in_process(ed25519) else None
        for i, parsed, principal in known:
            data, fpr = items[i][0], parsed.key.fingerprint
            if fast is not None and parsed.key.type == "ssh-ed25519":
                with self._lock:
                    self._in_process += 1
                good = fast(parsed, data)
                why = "" if good else "bad SSH signature: incorrect signature (in-process check)"
                results[i] = SigCheck(good, fpr, why, signing_key=fpr if good else "")
                continue
            pending.append((i, principal, fpr))
        if pending:
            self._program = _keygen()
            n = max(1, min(os.cpu_count() or 1, len(pending)))
            chains = [pending[k::n] for k in range(n)]
            if len(chains) == 1:
                self._chain(items, chains[0], results)
            else:
                running: list[Running[None]] = []
                try:
                    for chain in chains:
                        running.append(started(self._chain, items, chain, results))
                finally:
                    join_all(running)  # every chain ends before the directory is removed
        return [r if r is not None else SigCheck(False, None, "not checked") for r in results]

    def _chain(
        self,
        items: Sequence[tuple[bytes, bytes]],
        chain: list[tuple[int, str, str]],
        results: list[SigCheck | None],
    ) -> None:
        for i, principal, fpr in chain:
            data, sig = items[i]
            results[i] = self._one(i, data, sig, principal, fpr)

    def _one(self, i: int, data: bytes, sig: bytes, principal: str, fpr: str) -> SigCheck:
        sig_file = self._home / f"sig{i}"
        sig_file.write_bytes(_sshsig.armor(sig))
        with self._lock:
            self._calls += 1
        res = _proc.run(
            [
                self._program,
                "-Y",
                "verify",
                "-f",
                str(self._allowed),
                "-I",
                principal,
                "-n",
                _sshsig.NAMESPACE,
                "-s",
                str(sig_file),
            ],
            input=data,
            env={"HOME": str(self._home)},
        )
        good = res.stdout.decode("utf-8", "replace").strip()
        expected = f'Good "{_sshsig.NAMESPACE}" signature for {principal} with '
        if res.returncode == 0 and good.startswith(expected) and good.endswith(f" key {fpr}"):
            return SigCheck(True, fpr, signing_key=fpr)
        why = res.err_line if res.returncode != 0 else f"unexpected ssh-keygen output: {good}"
        return SigCheck(False, fpr, f"bad SSH signature: {why.removeprefix('ssh-keygen: ')}")


# --- signing ------------------------------------------------------------------------------------

_PRIVATE_MARK = b"-----BEGIN OPENSSH PRIVATE KEY-----"


def is_ssh_key(spec: str) -> bool:
    """Does ``spec`` (``--key`` or ``user.signingkey``) name an SSH key as git accepts one: a
    ``key::`` literal, or a file holding an SSH public or private key?"""
    if spec.startswith("key::") or spec.startswith(tuple(f"{t} " for t in _sshsig.KEY_TYPES)):
        return True
    path = Path(spec).expanduser()
    try:
        with path.open("rb") as fh:
            head = fh.read(64)
    except OSError:
        return spec.endswith(".pub")
    return head.startswith(_PRIVATE_MARK) or head.split(b" ", 1)[0].decode("ascii", "replace") in (
        _sshsig.KEY_TYPES | {"ssh-dss"}
    )


def uses_ssh(key: str | None, gpg_format: str | None) -> bool:
    """Sign with SSH? ``--key`` given: when it names an SSH key. Else as git decides: when
    ``gpg.format`` is ``ssh`` (``user.signingkey`` then names the SSH key)."""
    if key:
        return is_ssh_key(key)
    return (gpg_format or "").strip().lower() == "ssh"


def public_key(spec: str) -> _sshsig.PublicKey | None:
    """The public key ``spec`` names (a literal, a ``.pub`` file, or a private key file with its
    ``.pub`` beside it); None for a private key file without one."""
    literal = spec.removeprefix("key::")
    if literal != spec or literal.startswith(tuple(f"{t} " for t in _sshsig.KEY_TYPES)):
        return _checked_key(literal, "the key:: value")
    path = Path(spec).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignError(
            f"cannot read the SSH key {path}: {exc.strerror}",
            "set user.signingkey (or --key) to your SSH public key, e.g. ~/.ssh/id_ed25519.pub",
        ) from exc
    if data.startswith(_PRIVATE_MARK):
        pub = Path(str(path) + ".pub")
        return _checked_key(pub.read_text("ascii", "replace"), str(pub)) if pub.exists() else None
    return _checked_key(data.decode("ascii", "replace"), str(path))


def _checked_key(line: str, where: str) -> _sshsig.PublicKey:
    try:
        return _sshsig.parse_key_line(line)
    except _sshsig.SshFormatError as exc:
        raise SignError(f"{where} is not an SSH public key wotr accepts: {exc}") from exc


@record
class Signature:
    sig: bytes  # the binary SSHSIG blob
    fingerprint: str  # "SHA256:…" of the key that signed, as checked


def sign(data: bytes, spec: str | None) -> Signature:
    """Sign ``data`` with the SSH key ``spec`` (namespace ``wotr``), then check the signature."""
    if not spec:
        raise SignError(
            "git is set up for SSH signing (gpg.format = ssh) but names no key",
            "set user.signingkey to your SSH public key file, or pass --key",
        )
    program = _keygen()
    expected = public_key(spec)
    work = _fs.private_dir("wotr-sign-")
    try:
        argv = [program, "-Y", "sign", "-n", _sshsig.NAMESPACE, "-f"]
        if spec.startswith("key::") or not Path(spec).expanduser().exists():
            assert expected is not None  # a literal always parses to a key
            keyfile = work / "key.pub"
            keyfile.write_text(expected.line() + "\n", "ascii")
            argv += [str(keyfile), "-U"]  # as git: a literal key's private half is in the agent
        else:
            argv.append(str(Path(spec).expanduser()))
        res = _proc.run(argv, input=data)
    finally:
        _fs.remove_tree(work)
    try:
        blob = _sshsig.dearmor(res.stdout) if res.returncode == 0 else b""
        parsed = _sshsig.parse_signature(blob) if blob else None
    except _sshsig.SshFormatError as exc:
        raise SignError(f"ssh-keygen made no usable signature: {exc}") from exc
    if parsed is None:
        raise SignError(
            f"ssh-keygen could not sign with {spec}: {res.err_line}",
            "check the key (is its private half in a file beside it or in ssh-agent?)",
        )
    if expected is not None and parsed.key.fingerprint != expected.fingerprint:
        raise SignError(
            f"ssh-keygen signed with key {parsed.key.fingerprint}, not {expected.fingerprint}"
        )
    with Verifier([(parsed.key.fingerprint, parsed.key.line())]) as verifier:
        (check,) = verifier.check([(data, blob)])
    if not check.ok:
        raise SignError(f"the new SSH signature does not verify: {check.reason}")
    return Signature(blob, parsed.key.fingerprint)


def configured_key(spec: str | None, gpg_format: str | None) -> _sshsig.PublicKey | None:
    """For ``init``: the SSH public key git signs with, when git is set up for SSH signing."""
    if not spec or (gpg_format or "").strip().lower() != "ssh":
        return None
    try:
        return public_key(spec)
    except SignError:
        return None
