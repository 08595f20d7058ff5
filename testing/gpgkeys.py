"""Throwaway OpenPGP keys and detached signatures for tests, made with the real ``gpg``.

Every gpg call is isolated: ``--homedir`` is always given, ``--batch --no-tty`` always set,
``GNUPGHOME`` (and ``GPG_AGENT_INFO``) are removed from the environment and ``LC_ALL=C``.
Homes live directly under ``/tmp`` with a short name (``/tmp/wgXXXXXXXX``) because gpg-agent
socket paths are length-limited; never put them under pytest's ``tmp_path``.

Measured times (GnuPG 2.2.40, this container): ``make_key`` about 70 ms for a plain ed25519
key (generation plus binary and armored export), about 100 ms with one signing subkey or when
revoked, about 120 ms with a revoked subkey; ``algo="rsa2048"`` about 130 ms (prime generation,
can vary up to ~1 s).  ``sign_detached`` about 7-15 ms; ``verify_status`` about 25 ms (fresh home,
import, verify, cleanup).  The whole tests/test_gpgkeys.py runs in about 3 s.

Keys are *backdated*: every key is created ``BACKDATE`` seconds (30 days) in the past with
``--faked-system-time``, so that an already-expired key (valid for one day, 30 days ago) or an
already-expired signature (made 10 days ago, valid for one day) can be made without sleeping.

Revocations are applied only to the exported public key material (``Key.public_binary``), never to
the signing home, so that a revoked key or subkey can still produce signatures (gpg refuses to sign
with a key it knows is revoked). Verifiers see the revocation because they import the public key.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BACKDATE",
    "EXPIRED_SIG_AGE",
    "GpgError",
    "Key",
    "armored_keyring",
    "binary_keyring",
    "gpg",
    "gpg_env",
    "import_keys",
    "kill_agent",
    "make_key",
    "parse_status",
    "public_armored",
    "public_binary",
    "remove_home",
    "short_home",
    "sign_detached",
    "temporary_home",
    "verify_status",
]

#: Seconds by which every generated key's creation time lies in the past.
BACKDATE = 30 * 86400
#: Age of an "expired signature" when it was made (it was valid for one day).
EXPIRED_SIG_AGE = 10 * 86400

_ALGOS = {"ed25519": "ed25519", "rsa2048": "rsa2048", "rsa3072": "rsa3072"}


class GpgError(RuntimeError):
    """A gpg command that was expected to succeed failed."""


def gpg_env() -> dict[str, str]:
    """The inherited environment without GnuPG variables, with a fixed C locale."""
    env = {k: v for k, v in os.environ.items() if k not in {"GNUPGHOME", "GPG_AGENT_INFO"}}
    env["LC_ALL"] = "C"
    return env


def gpg(
    home: Path,
    *args: str,
    input: bytes | None = None,
    check: bool = True,
    options: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``gpg --homedir HOME --batch --no-tty [--no-options] ARGS``; capture stdout/stderr.

    ``options=False`` (the default) adds ``--no-options`` so no ``gpg.conf`` is read.
    Raises :class:`GpgError` if ``check`` and gpg exits non-zero.
    """
    cmd = ["gpg", "--homedir", str(home), "--batch", "--no-tty"]
    if not options:
        cmd.append("--no-options")
    cmd.extend(args)
    proc = subprocess.run(cmd, input=input, capture_output=True, env=gpg_env(), check=False)
    if check and proc.returncode != 0:
        raise GpgError(
            f"{' '.join(cmd)} exited {proc.returncode}:\n"
            f"{proc.stdout.decode(errors='replace')}{proc.stderr.decode(errors='replace')}"
        )
    return proc


def short_home() -> Path:
    """A new, empty GnuPG home ``/tmp/wgXXXXXXXX`` with mode 0700."""
    home = Path(tempfile.mkdtemp(prefix="wg", dir="/tmp"))
    home.chmod(0o700)
    return home


def kill_agent(home: Path) -> None:
    """Stop any gpg-agent/dirmngr/keyboxd started for ``home`` (no error if none)."""
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"],
        capture_output=True,
        env=gpg_env(),
        check=False,
    )


def remove_home(home: Path) -> None:
    """Stop the home's daemons and delete it."""
    kill_agent(home)
    shutil.rmtree(home, ignore_errors=True)


@contextmanager
def temporary_home() -> Iterator[Path]:
    """Context manager: a :func:`short_home` removed (daemons killed) on exit."""
    home = short_home()
    try:
        yield home
    finally:
        remove_home(home)


@dataclass(frozen=True)
class Key:
    """A generated key. ``home`` holds its secret key (never revoked there)."""

    name: str
    home: Path
    #: primary key fingerprint, 40 upper-case hex digits
    fingerprint: str
    #: fingerprints of the signing subkeys, in creation order
    subkeys: tuple[str, ...] = ()
    algo: str = "ed25519"
    #: creation time of the primary key (seconds since the epoch; backdated)
    created: int = 0
    expired: bool = False
    revoked: bool = False
    #: signing subkeys that are revoked in the public key material
    revoked_subkeys: tuple[str, ...] = ()
    #: ``gpg --export`` of this key as a verifier should see it (with revocations)
    public_binary: bytes = field(default=b"", repr=False)
    #: the same, ASCII-armored
    public_armor: bytes = field(default=b"", repr=False)

    @property
    def uid(self) -> str:
        return f"{self.name} <{self.name}@wotr.invalid>"


def _fingerprints(home: Path, ident: str) -> tuple[str, list[str]]:
    """(primary fpr, [subkey fprs in listing order]) of the key ``ident`` in ``home``."""
    out = gpg(home, "--with-colons", "--fixed-list-mode", "--list-keys", ident).stdout.decode()
    primary = ""
    subs: list[str] = []
    last = ""
    for line in out.splitlines():
        fields = line.split(":")
        if fields[0] in {"pub", "sub"}:
            last = fields[0]
        elif fields[0] == "fpr":
            if last == "pub" and not primary:
                primary = fields[9]
            elif last == "sub":
                subs.append(fields[9])
    if not primary:
        raise GpgError(f"no key {ident!r} in {home}")
    return primary, subs


def _copy_home(home: Path) -> Path:
    """A scratch copy of a home (key material only; sockets skipped)."""
    scratch = short_home()
    for entry in home.iterdir():
        if entry.name.startswith("S.") or entry.name.endswith(".lock"):
            continue
        if entry.is_dir():
            shutil.copytree(entry, scratch / entry.name)
        elif entry.is_file():
            shutil.copy2(entry, scratch / entry.name)
    return scratch


def _revocation_cert(home: Path, fpr: str) -> bytes:
    """The revocation certificate gpg stored at key generation, with its guard colon removed."""
    text = (home / "openpgp-revocs.d" / f"{fpr}.rev").read_bytes()
    lines = [ln[1:] if ln.startswith(b":-----") else ln for ln in text.splitlines(keepends=True)]
    return b"".join(lines)


def make_key(
    name: str,
    *,
    home: Path | None = None,
    algo: str = "ed25519",
    signing_subkeys: int = 0,
    expired: bool = False,
    revoked: bool = False,
    revoked_subkey: bool = False,
) -> Key:
    """Generate a sign-only key ``NAME <NAME@wotr.invalid>`` without passphrase.

    - ``home``: generate into this home (default: a new :func:`short_home`). Several keys may share
      one home; the caller removes it (:func:`remove_home`).
    - ``algo``: ``"ed25519"`` (fast) or ``"rsa2048"`` (needed for SHA-1 signatures).
    - ``signing_subkeys``: number of additional sign-only subkeys (same algo).
    - ``expired``: the key (primary expiry) was valid for one day, 30 days ago.
    - ``revoked``: the exported public key carries gpg's own revocation certificate.
    - ``revoked_subkey``: the exported public key carries a revocation of ``subkeys[0]``
      (implies ``signing_subkeys >= 1``; one subkey is added if none was asked for).
    """
    if algo not in _ALGOS:
        raise ValueError(f"unsupported algo {algo!r}")
    if revoked_subkey and signing_subkeys < 1:
        signing_subkeys = 1
    home = home if home is not None else short_home()
    created = int(time.time()) - BACKDATE
    uid = f"{name} <{name}@wotr.invalid>"
    base = ("--pinentry-mode", "loopback", "--passphrase", "")
    gpg(
        home,
        *base,
        "--faked-system-time",
        f"{created}!",
        "--quick-gen-key",
        uid,
        _ALGOS[algo],
        "sign",
        "1d" if expired else "never",
    )
    fpr, _ = _fingerprints(home, f"={uid}")
    for i in range(signing_subkeys):
        gpg(
            home,
            *base,
            "--faked-system-time",
            f"{created + 60 * (i + 1)}!",
            "--quick-add-key",
            fpr,
            _ALGOS[algo],
            "sign",
            "never",
        )
    _, subs = _fingerprints(home, fpr)
    revoked_subs: tuple[str, ...] = ()

    # Public key material as verifiers see it: revocations live only here.
    public = gpg(home, "--export", fpr).stdout
    if revoked or revoked_subkey:
        scratch = _copy_home(home)
        try:
            if revoked_subkey:
                script = "key 1\nrevkey\ny\n0\n\ny\nsave\n"
                gpg(scratch, *base, "--command-fd", "0", "--edit-key", fpr, input=script.encode())
                revoked_subs = (subs[0],)
            if revoked:
                gpg(scratch, "--import", input=_revocation_cert(home, fpr))
            public = gpg(scratch, "--export", fpr).stdout
        finally:
            remove_home(scratch)
    with temporary_home() as pub:
        gpg(pub, "--no-autostart", "--import", input=public)
        armor = gpg(pub, "--armor", "--export", fpr).stdout
    return Key(
        name=name,
        home=home,
        fingerprint=fpr,
        subkeys=tuple(subs),
        algo=algo,
        created=created,
        expired=expired,
        revoked=revoked,
        revoked_subkeys=revoked_subs,
        public_binary=public,
        public_armor=armor,
    )


def public_armored(key: Key) -> bytes:
    """ASCII-armored public key (``-----BEGIN PGP PUBLIC KEY BLOCK-----``), with revocations."""
    return key.public_armor


def public_binary(key: Key) -> bytes:
    """Binary public key (``gpg --export``), with revocations."""
    return key.public_binary


def binary_keyring(*keys: Key) -> bytes:
    """Concatenated binary exports: a keyring usable with ``--keyring`` or ``--import``."""
    return b"".join(k.public_binary for k in keys)


def armored_keyring(*keys: Key) -> bytes:
    """One armored block holding every key (as ``gpg --armor --export A B ...`` writes it)."""
    with temporary_home() as pub:
        import_keys(pub, *keys)
        return gpg(pub, "--armor", "--export", *(k.fingerprint for k in keys)).stdout


def import_keys(home: Path, *keys: Key) -> None:
    """Import the public keys (with revocations) into ``home``.

    ``--no-autostart``: a plain ``--import`` would start a gpg-agent for ``home``.
    """
    gpg(home, "--no-autostart", "--import", input=binary_keyring(*keys))


def sign_detached(
    key: Key,
    data: bytes,
    *,
    subkey: str | None = None,
    digest_algo: str | None = None,
    expired_signature: bool = False,
) -> bytes:
    """A binary detached signature of ``data``.

    - ``subkey``: fingerprint of a signing subkey to use (``FPR!``); default: the primary key
      (also ``FPR!`` -- without ``!`` gpg would pick the newest signing subkey).
    - ``digest_algo``: e.g. ``"SHA1"``, ``"SHA512"``, ``"MD5"`` (gpg 2.2.40 makes SHA-1 signatures
      with ed25519 keys too; MD5 needs an RSA key).
    - ``expired_signature``: the signature was made 10 days ago and expired a day later.

    Signatures by an ``expired`` key are made one hour after the key's creation, while it was valid.
    """
    signer = f"{subkey or key.fingerprint}!"
    args: list[str] = ["--pinentry-mode", "loopback", "--passphrase", "", "-u", signer]
    if digest_algo is not None:
        args += ["--digest-algo", digest_algo]
    if key.expired:
        args += ["--faked-system-time", f"{key.created + 3600}!"]
    elif expired_signature:
        args += ["--faked-system-time", f"{int(time.time()) - EXPIRED_SIG_AGE}!"]
    if expired_signature:
        args += ["--default-sig-expire", "1d"]
    with tempfile.TemporaryDirectory(prefix="wgs", dir="/tmp") as tmp:
        src = Path(tmp) / "data"
        out = Path(tmp) / "data.sig"
        src.write_bytes(data)
        gpg(key.home, *args, "--detach-sign", "--output", str(out), str(src))
        return out.read_bytes()


def verify_status(
    keys: Sequence[Key], sig: bytes, data: bytes, *extra: str, keyring: bool = False
) -> tuple[int, list[list[str]]]:
    """Verify in a fresh home holding only ``keys``; return (exit code, status lines split).

    ``keyring=False``: the keys are ``--import``-ed into the fresh home (copies of one key merge).
    ``keyring=True``: the home stays empty and read-only; the keys are passed as a binary keyring
    file with ``--no-default-keyring --keyring FILE`` (copies of one key do NOT merge: the first
    copy in the file wins).  ``extra`` goes before ``--verify`` (e.g. ``"--weak-digest", "SHA1"``).
    Each status line ``[GNUPG:] KEYWORD ARGS`` is returned as ``["KEYWORD", *ARGS]``.
    """
    with temporary_home() as home, tempfile.TemporaryDirectory(prefix="wgv", dir="/tmp") as tmp:
        sig_path = Path(tmp) / "sig"
        data_path = Path(tmp) / "data"
        sig_path.write_bytes(sig)
        data_path.write_bytes(data)
        source: list[str] = []
        if keyring:
            ring = Path(tmp) / "k.gpg"
            ring.write_bytes(binary_keyring(*keys))
            source = ["--no-default-keyring", "--keyring", str(ring)]
            home.chmod(0o500)
        elif keys:
            import_keys(home, *keys)
        proc = gpg(
            home,
            *source,
            "--no-autostart",
            "--disable-dirmngr",
            "--no-auto-key-retrieve",
            "--trust-model",
            "always",
            "--status-fd",
            "1",
            *extra,
            "--verify",
            str(sig_path),
            str(data_path),
            check=False,
        )
        home.chmod(0o700)
    return proc.returncode, parse_status(proc.stdout)


def parse_status(out: bytes) -> list[list[str]]:
    """Split ``[GNUPG:] ...`` lines of status output into token lists."""
    rows: list[list[str]] = []
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("[GNUPG:] "):
            rows.append(line[len("[GNUPG:] ") :].split(" "))
    return rows
