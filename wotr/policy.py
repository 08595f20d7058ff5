"""``threshold.toml`` -> a frozen, checked :class:`Policy` (DESIGN §5).

The policy fails closed: anything unexpected is an error naming the file and the field.
Key files are parsed here (no gpg process): each listed fingerprint must be the primary
fingerprint of a key in *that signer's* key files, and only the listed keys reach the
keyring that signatures are checked against.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from . import _openpgp, _record, _sshsig, hashing
from ._record import field, record
from .claim import ClaimError, check_role
from .errors import PolicyError

TYPE_CHECKING = False  # typing itself is not imported at run time (verify's start-up)
if TYPE_CHECKING:
    from typing import Any

# patterns as strings, compiled (and cached by re) on first use: a verify whose policy is
# prepared (wotr/prepared.py) never needs them
_FPR = r"[0-9A-F]{40}"
_SHORT_ID = r"(0x)?([0-9A-Fa-f]{8}|[0-9A-Fa-f]{16})"
_NAME = r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}"
_TOP_FIELDS = {"version", "serial", "threshold", "signers", "require", "update"}
_UPDATE_FIELDS = {"threshold", "signers"}
MAX_SERIAL = 2**31 - 1
_SIGNER_FIELDS = {"name", "roles", "keys", "fingerprints", "ssh"}


@record
class Signer:
    name: str
    roles: frozenset[str] | None  # None: any role
    fingerprints: frozenset[str]

    def may_claim(self, role: str) -> bool:
        return self.roles is None or role in self.roles


@record
class Policy:
    path: Path
    threshold: int
    signers: tuple[Signer, ...]
    require: tuple[tuple[str, int], ...] = ()
    keyring: bytes = field(default=b"", repr=False)  # binary OpenPGP keys of listed fprs only
    # A listed key appears more than once in the key files (e.g. an old copy and a copy with
    # a revocation). gpg's --keyring would use only the first copy, so such keyrings are
    # merged by a real import instead (DESIGN §6 rule 3: a revocation must never be hidden).
    keyring_has_copies: bool = False
    # Fingerprints (40 hex) and key ids (16 hex) of the listed keys and all their subkeys:
    # signatures naming no such issuer are refused before any gpg call (DESIGN §6 rule 8).
    issuer_ids: frozenset[str] = frozenset()
    # Who owns each issuer id: the ids above and the "SHA256:…" fingerprints of the SSH keys,
    # each with the names of the signers holding such a key (several only when ids collide).
    issuers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    digests: tuple[tuple[str, str], ...] = ()  # (file, sha256) of the policy and key files read
    # The policy chain (DESIGN §7): this policy's place in it, and who may sign the next one.
    serial: int = 1
    update_threshold: int = 1
    update_signers: tuple[str, ...] = ()
    # SSH keys of the signers (DESIGN §9): ("SHA256:…" fingerprint, "<type> <base64>") each.
    # Signer.fingerprints holds the same "SHA256:…" strings, so signer_for serves both kinds.
    ssh_keys: tuple[tuple[str, str], ...] = ()

    def signer_for(self, fingerprint: str) -> Signer | None:
        for signer in self.signers:
            if fingerprint in signer.fingerprints:
                return signer
        return None

    def issuer_signers(self) -> dict[str, tuple[str, ...]]:
        """Issuer id (OpenPGP fingerprint or 16-hex key id of a listed key or subkey, or an
        SSH key's ``SHA256:`` fingerprint) -> the signers owning such a key."""
        return dict(self.issuers)

    def with_threshold(self, threshold: int | None) -> Policy:
        if threshold is None:
            return self
        _check_threshold(threshold, len(self.signers), f"{self.path}: --threshold")
        return _record.replace(self, threshold=threshold)


def _check_threshold(value: Any, n_signers: int, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise PolicyError(f"{where}: threshold must be a whole number")
    if not 1 <= value <= n_signers:
        raise PolicyError(
            f"{where}: threshold {value} is out of range",
            f"it must be at least 1 and at most the number of signers ({n_signers})",
        )
    return value


def _str_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where} must be a non-empty list of strings")
    return list(value)


# A policy file and each key file are read whole, once, and only when they are regular files of
# at most this size (key files of keys with many certifications run to a few hundred KiB).
MAX_POLICY_FILE = 16 * 1024 * 1024


def load(
    path: Path,
    *,
    pin: Mapping[str, str] | None = None,
    follow_symlinks: bool = True,
    prepared: bool = False,
    worktree: Path | None = None,
) -> Policy:
    """Read and check a policy file. With ``pin``, every file read must match its pinned sha256.

    Each file is read once (the same bytes are hashed and parsed) and only when it is a regular
    file of at most MAX_POLICY_FILE bytes; ``follow_symlinks=False`` (a working-tree policy,
    whose files are the project's content) refuses a symbolic link too. A pinned file that is
    not such a file is reported as changed since pinned, before any of it is read.

    ``prepared=True`` (the policy a verify uses): what this function derives is kept between
    runs and used again while every file read has the same sha256 (``wotr/prepared.py``), never
    from a cache directory inside ``worktree`` (the work tree being verified: a commit's files).
    """
    where = str(path)
    digests: dict[str, str] = {}
    read_digests: list[str] = []  # of each file read, in order

    def read(file: Path, label: str) -> bytes:
        from . import _fs

        rel = str(file.relative_to(path.parent)) if file.is_relative_to(path.parent) else str(file)
        try:
            data = _fs.read_regular(file, MAX_POLICY_FILE, follow_symlinks=follow_symlinks)
        except _fs.NotRegular as exc:
            if pin is not None:
                raise _changed(file, f"it is now {exc.why}") from exc
            raise PolicyError(
                f"{label}: {file} is {exc.why}",
                f"a policy and its key files must be regular files of at most "
                f"{MAX_POLICY_FILE} bytes",
            ) from exc
        except OSError as exc:
            if pin is not None:
                raise _changed(file, f"cannot read it: {exc.strerror}") from exc
            raise PolicyError(f"{label}: cannot read {file}: {exc.strerror}") from exc
        digest = hashing.sha256_hex(data)
        if pin is not None and pin.get(rel) != digest:
            raise _changed(file)
        digests[rel] = digest
        read_digests.append(digest)
        return data

    raw = read(path, where)
    toml_sha256 = read_digests[-1]
    if prepared:
        from . import prepared as prepared_mod

        kept = _from_prepared(
            prepared_mod.lookup(toml_sha256, worktree), path, where, read, read_digests
        )
        if kept is not None:
            return _record.replace(kept, digests=tuple(sorted(digests.items())))
        digests.clear()  # only the TOML's own: the key files are read again below
        digests[path.name] = toml_sha256
    import tomllib

    key_reads: list[tuple[str, str, str]] = []  # (signer, key file as written, sha256)
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise PolicyError(f"{where}: not valid TOML: {exc}") from exc

    unknown = set(doc) - _TOP_FIELDS
    if unknown:
        raise PolicyError(
            f"{where}: unknown field {sorted(unknown)[0]!r}", "see threshold.example.toml"
        )
    if doc.get("version") != 1:
        raise PolicyError(f"{where}: version must be 1 (found {doc.get('version')!r})")
    raw_signers = doc.get("signers")
    if not isinstance(raw_signers, list) or not raw_signers:
        raise PolicyError(f"{where}: [[signers]] must list at least one signer")

    signers: list[Signer] = []
    owner: dict[str, str] = {}
    keyring = bytearray()
    owners_of: dict[str, set[str]] = {}  # issuer id -> signers; its keys are the issuer ids
    subs_of: dict[str, set[str]] = {}
    copies = False
    ssh_keys: list[tuple[str, str]] = []
    for i, entry in enumerate(raw_signers):
        at = f"{where}: signers[{i}]"
        if not isinstance(entry, dict):
            raise PolicyError(f"{at} is not a table")
        unknown = set(entry) - _SIGNER_FIELDS
        if unknown:
            raise PolicyError(f"{at}: unknown field {sorted(unknown)[0]!r}")
        name = entry.get("name")
        if not isinstance(name, str) or not re.fullmatch(_NAME, name):
            raise PolicyError(f"{at}.name must be a short name (letters, digits, ._@+-)")
        at = f"{where}: signer {name!r}"
        if any(s.name == name for s in signers):
            raise PolicyError(f"{at}: the name is used twice", "signer names must be unique")
        roles: frozenset[str] | None = None
        if "roles" in entry:
            try:
                roles = frozenset(check_role(r) for r in _str_list(entry["roles"], f"{at}.roles"))
            except ClaimError as exc:
                raise PolicyError(f"{at}.roles: {exc}") from exc
        ssh_fprs = _ssh_keys(entry, at, owner, name, ssh_keys)
        if ssh_fprs and "keys" not in entry and "fingerprints" not in entry:
            signers.append(Signer(name, roles, frozenset(ssh_fprs)))
            continue
        fprs: list[str] = []
        for fpr in _str_list(entry.get("fingerprints"), f"{at}.fingerprints"):
            if re.fullmatch(_SHORT_ID, fpr):
                raise PolicyError(
                    f"{at}.fingerprints: {fpr!r} is a short key id",
                    "give the full 40-hex primary fingerprint (gpg --fingerprint)",
                )
            norm = fpr.upper()
            if not re.fullmatch(_FPR, norm):
                raise PolicyError(f"{at}.fingerprints: {fpr!r} is not a 40-hex fingerprint")
            if norm in owner:
                raise PolicyError(
                    f"{at}.fingerprints: {norm} is also listed under {owner[norm]!r}",
                    "a key belongs to exactly one signer",
                )
            owner[norm] = name
            fprs.append(norm)
        found: dict[str, list[bytes]] = {}
        subkeys: set[str] = set()
        for rel in _str_list(entry.get("keys"), f"{at}.keys"):
            key_path = _key_path(path, rel)
            data = read(key_path, f"{at}.keys")
            key_reads.append((name, rel, read_digests[-1]))
            try:
                for key in _openpgp.public_keys(data):
                    found.setdefault(key.fingerprint, []).append(key.raw)
                    subkeys.update(key.subkeys)
                    subs_of.setdefault(key.fingerprint, set()).update(key.subkeys)
            except _openpgp.PacketError as exc:
                raise PolicyError(
                    f"{at}.keys: {key_path} is not an OpenPGP public key: {exc}"
                ) from exc
        for fpr in fprs:
            if fpr not in found:
                why = (
                    "it is a subkey; list the primary fingerprint"
                    if fpr in subkeys
                    else ("it is not in the signer's key files")
                )
                raise PolicyError(f"{at}.fingerprints: {fpr} does not count: {why}")
            keyring += b"".join(found[fpr])
            for listed in (fpr, *sorted(subs_of.get(fpr, ()))):
                for one in (listed, listed[-16:]):
                    owners_of.setdefault(one, set()).add(name)
            copies = copies or len(found[fpr]) > 1
        signers.append(Signer(name, roles, frozenset(fprs + ssh_fprs)))

    threshold = _check_threshold(doc.get("threshold"), len(signers), where)
    require: list[tuple[str, int]] = []
    raw_require = doc.get("require", {})
    if not isinstance(raw_require, dict):
        raise PolicyError(f"{where}: [require] must be a table of role = count")
    for role, count in sorted(raw_require.items()):
        at = f"{where}: require.{role}"
        try:
            check_role(role)
        except ClaimError as exc:
            raise PolicyError(f"{at}: {exc}") from exc
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise PolicyError(f"{at} must be a whole number of at least 1")
        able = sum(1 for s in signers if s.may_claim(role))
        if count > able:
            raise PolicyError(
                f"{at} = {count} can never be met", f"only {able} signer(s) may claim role {role!r}"
            )
        require.append((role, count))

    serial, update_threshold, update_signers = _chain_fields(doc, signers, threshold, where)
    issuer_ids = frozenset(owners_of)  # OpenPGP ids only: SSH fingerprints join the map next
    issuers = _issuers(owners_of, ssh_keys, signers)
    policy = Policy(
        path=path,
        threshold=threshold,
        signers=tuple(signers),
        require=tuple(require),
        keyring=bytes(keyring),
        keyring_has_copies=copies,
        issuer_ids=issuer_ids,
        issuers=issuers,
        digests=tuple(sorted(digests.items())),
        serial=serial,
        update_threshold=update_threshold,
        update_signers=update_signers,
        ssh_keys=tuple(ssh_keys),
    )
    if prepared:
        prepared_mod.store(toml_sha256, _to_prepared(policy, key_reads), worktree)
    return policy


def _issuers(
    owners_of: dict[str, set[str]], ssh_keys: list[tuple[str, str]], signers: list[Signer]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    for fpr, _ in ssh_keys:
        owners_of.setdefault(fpr, set()).update(s.name for s in signers if fpr in s.fingerprints)
    return tuple(sorted((i, tuple(sorted(names))) for i, names in owners_of.items()))


def _key_path(policy_path: Path, rel: str) -> Path:
    return (policy_path.parent / rel) if not Path(rel).is_absolute() else Path(rel)


def _to_prepared(policy: Policy, key_reads: list[tuple[str, str, str]]) -> dict[str, object]:
    return {
        "keys": [list(k) for k in key_reads],
        "threshold": policy.threshold,
        "signers": [
            [s.name, None if s.roles is None else sorted(s.roles), sorted(s.fingerprints)]
            for s in policy.signers
        ],
        "require": [list(r) for r in policy.require],
        "keyring": base64.b64encode(policy.keyring).decode("ascii"),
        "keyring_has_copies": policy.keyring_has_copies,
        "issuers": [[i, list(names)] for i, names in policy.issuers],
        "serial": policy.serial,
        "update_threshold": policy.update_threshold,
        "update_signers": list(policy.update_signers),
        "ssh_keys": [list(k) for k in policy.ssh_keys],
    }


def _from_prepared(
    doc: dict[str, Any] | None,
    path: Path,
    where: str,
    read: Callable[[Path, str], bytes],
    read_digests: list[str],
) -> Policy | None:
    """The kept policy, when every key file it was derived from still has the same sha256.
    The files are read as a full load reads them (bounded, pin-checked, the same labels)."""
    if doc is None:
        return None
    try:
        for name, rel, sha in _list(doc["keys"]):
            read(_key_path(path, rel), f"{where}: signer {name!r}.keys")
            if read_digests[-1] != sha:
                return None
        issuers = tuple((_str(i), tuple(_strs(names))) for i, names in _list(doc["issuers"]))
        return Policy(
            path=path,
            threshold=_int(doc["threshold"]),
            signers=tuple(
                Signer(
                    _str(name),
                    None if roles is None else frozenset(_strs(roles)),
                    frozenset(_strs(fprs)),
                )
                for name, roles, fprs in _list(doc["signers"])
            ),
            require=tuple((_str(role), _int(n)) for role, n in _list(doc["require"])),
            keyring=base64.b64decode(_str(doc["keyring"]), validate=True),
            keyring_has_copies=doc["keyring_has_copies"] is True,
            issuer_ids=frozenset(i for i, _ in issuers if not i.startswith("SHA256:")),
            issuers=issuers,
            serial=_int(doc["serial"]),
            update_threshold=_int(doc["update_threshold"]),
            update_signers=tuple(_strs(doc["update_signers"])),
            ssh_keys=tuple((_str(f), _str(line)) for f, line in _list(doc["ssh_keys"])),
        )
    except (KeyError, TypeError, ValueError):
        return None  # not an entry this code wrote: derive the policy again


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("not a list")
    return value


def _strs(value: Any) -> list[str]:
    return [_str(v) for v in _list(value)]


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("not an int")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a str")
    return value


def _chain_fields(
    doc: dict[str, Any], signers: list[Signer], threshold: int, where: str
) -> tuple[int, int, tuple[str, ...]]:
    """``serial`` (absent = 1) and the ``[update]`` table (DESIGN §7), checked."""
    serial = doc.get("serial", 1)
    if not isinstance(serial, int) or isinstance(serial, bool) or not 1 <= serial <= MAX_SERIAL:
        raise PolicyError(f"{where}: serial must be a whole number of at least 1")
    update = doc.get("update", {})
    if not isinstance(update, dict):
        raise PolicyError(f"{where}: [update] must be a table (threshold, signers)")
    unknown = set(update) - _UPDATE_FIELDS
    if unknown:
        raise PolicyError(f"{where}: unknown field update.{sorted(unknown)[0]}")
    names = [s.name for s in signers]
    chosen = names
    if "signers" in update:
        chosen = _str_list(update["signers"], f"{where}: update.signers")
        for name in chosen:
            if name not in names:
                raise PolicyError(
                    f"{where}: update.signers names {name!r}, which is not a signer",
                    "list names of [[signers]] entries",
                )
        if len(set(chosen)) != len(chosen):
            raise PolicyError(f"{where}: update.signers names a signer twice")
    k = _check_threshold(update.get("threshold", threshold), len(chosen), f"{where}: update")
    return serial, k, tuple(sorted(chosen))


def _ssh_keys(
    entry: dict[str, Any], at: str, owner: dict[str, str], name: str, out: list[tuple[str, str]]
) -> list[str]:
    """The signer's ``ssh`` lines, checked (DESIGN §9): their fingerprints; keys go to ``out``."""
    if "ssh" not in entry:
        return []
    fprs: list[str] = []
    for n, line in enumerate(_str_list(entry["ssh"], f"{at}.ssh")):
        try:
            key = _sshsig.parse_key_line(line)
        except _sshsig.SshFormatError as exc:
            raise PolicyError(
                f"{at}.ssh[{n}]: not an SSH public key wotr accepts: {exc}",
                "give the line of the key's .pub file ('ssh-ed25519 AAAA… comment')",
            ) from exc
        if key.fingerprint in owner:
            raise PolicyError(
                f"{at}.ssh[{n}]: key {key.fingerprint} is also listed under "
                f"{owner[key.fingerprint]!r}",
                "a key belongs to exactly one signer",
            )
        owner[key.fingerprint] = name
        fprs.append(key.fingerprint)
        out.append((key.fingerprint, key.line()))
    return fprs


def _changed(file: Path, why: str = "") -> PolicyError:
    return PolicyError(
        f"{file} changed since the policy was pinned" + (f" ({why})" if why else ""),
        "review the change, then run 'git wotr init' to pin it again",
    )


# --- where the policy comes from (DESIGN §5) ---------------------------------------------------

WORKTREE_POLICY = "threshold.toml"
INSTALLER_POLICY = Path("/etc/wotr/policy.toml")


def _pin_file(common_dir: Path) -> Path:
    return common_dir / "wotr" / "policy.pin"


def read_pin(common_dir: Path) -> dict[str, str] | None:
    import json

    from . import _fs

    try:
        raw = _fs.read_regular(_pin_file(common_dir), 1 << 20, follow_symlinks=True)
        doc = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise PolicyError(
            f"{_pin_file(common_dir)} is unreadable: {exc}",
            "run 'git wotr init' to pin the policy again",
        ) from exc
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise PolicyError(
            f"{_pin_file(common_dir)} is malformed", "run 'git wotr init' to pin the policy again"
        )
    return {str(k): v for k, v in files.items()}


def chain_pinned(common_dir: Path) -> Path | None:
    """The policy file the pin names when it moved along the policy chain (DESIGN §7)."""
    import json

    try:
        doc = json.loads(_pin_file(common_dir).read_text("utf-8"))
    except (OSError, ValueError):
        return None  # no pin, or read_pin says what is wrong with it
    where = doc.get("dir") if isinstance(doc, dict) else None
    if not isinstance(where, str) or not where.startswith("policy-chain/") or ".." in where:
        return None
    return _pin_file(common_dir).parent / where / "threshold.toml"


def write_pin(common_dir: Path, policy: Policy) -> Path:
    import json

    target = _pin_file(common_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {"policy": policy.path.name, "files": dict(policy.digests)}, indent=2, sort_keys=True
        )
        + "\n",
        "utf-8",
    )
    tmp.replace(target)
    return target


def find(
    explicit: str | None, *, top: Path | None, common_dir: Path | None, config_value: str | None
) -> Policy:
    """--policy, else $WOTR_POLICY, else git config wotr.policy, else a *pinned* threshold.toml
    at the top of the working tree; outside a repository /etc/wotr/policy.toml."""
    import os

    for source in (explicit, os.environ.get("WOTR_POLICY") or None, config_value):
        if source:
            return load(Path(source).expanduser().absolute(), prepared=True, worktree=top)
    if top is not None and common_dir is not None:
        chained = chain_pinned(common_dir)
        if chained is not None:  # the pin moved along the policy chain (wotr/chainstore.py)
            return load(chained, pin=read_pin(common_dir), prepared=True, worktree=top)
        candidate = top / WORKTREE_POLICY
        if os.path.lexists(candidate):  # a link to nowhere is a changed policy, not "none"
            pin = read_pin(common_dir)
            if pin is None:
                raise PolicyError(
                    f"{candidate} is not pinned: a policy that a commit carries is not trusted "
                    "just because the commit carries it",
                    "review it, then run 'git wotr init' to pin it (or pass --policy)",
                )
            # the project's content: a symbolic link there is no file the pin was taken of
            return load(candidate, pin=pin, follow_symlinks=False, prepared=True, worktree=top)
        raise PolicyError(
            "no policy: no --policy, $WOTR_POLICY, wotr.policy or threshold.toml",
            "run 'git wotr init' to create one, or pass --policy FILE",
        )
    if INSTALLER_POLICY.exists():
        return load(INSTALLER_POLICY, prepared=True)
    raise PolicyError(
        f"no policy: no --policy, $WOTR_POLICY or {INSTALLER_POLICY}", "pass --policy FILE"
    )
