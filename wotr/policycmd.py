"""``git wotr policy propose|sign|show|pin|export``: the policy-chain command bodies (§7)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from . import _fs, chain, chainstore, git, gpg, ssh
from . import claim as claim_mod
from . import policy as policy_mod
from ._record import record
from .errors import BadInput, PolicyError

INSTALLER_STATE = Path("/var/lib/wotr/policy")


def state_dir(repo: git.Repo) -> Path:
    return repo.common_dir / "wotr"


def pinned(repo: git.Repo) -> policy_mod.Policy:
    """The policy the repository's pin names (the start, or where the chain took it)."""
    _secure(repo)
    return policy_mod.find(None, top=repo.top, common_dir=repo.common_dir, config_value=None)


def _secure(repo: git.Repo) -> None:
    """Copy a working-tree pin's files under .git/wotr/ so that editing thresh.toml for the next
    proposal does not change the policy in effect. The bytes come from the working tree, else
    from HEAD; each must match its pinned sha256, or nothing is done (verify then says why)."""
    import hashlib

    if repo.top is None or policy_mod.chain_pinned(repo.common_dir) is not None:
        return
    try:
        pin = policy_mod.read_pin(repo.common_dir)
    except PolicyError:
        return
    if not pin:
        return
    files: dict[str, bytes] = {}
    for rel, sha in pin.items():
        data = _read_pinned(repo.top / rel, follow_symlinks=False)  # the project's content
        if hashlib.sha256(data).hexdigest() != sha:
            data = _read_pinned(state_dir(repo) / "pinned-files" / rel, follow_symlinks=True)
        if hashlib.sha256(data).hexdigest() != sha:
            res = git.run(repo, "show", f"HEAD:{rel}", max_stdout=policy_mod.MAX_POLICY_FILE)
            data = res.stdout if res.returncode == 0 and not res.truncated else b""
        if hashlib.sha256(data).hexdigest() != sha:
            return
        files[chain.POLICY_NAME if rel == policy_mod.WORKTREE_POLICY else rel] = data
    try:
        p = chainstore.proposal(files)
        pol = chainstore.load(p)
    except PolicyError:
        return
    chainstore.write_pin(state_dir(repo), chainstore.Followed(pol, p.digest, (), (), ()), p, {})


def pinned_serial(repo: git.Repo) -> int | None:
    """The serial of the policy the repository's pin names, or None when nothing is pinned or
    its pinned bytes can be found nowhere (working tree, the copy init keeps, HEAD)."""
    import tomllib

    chained = policy_mod.chain_pinned(repo.common_dir)
    try:
        pin = policy_mod.read_pin(repo.common_dir)
    except PolicyError:
        return None
    if not pin or chained is not None:  # a chain pin that does not load: as before, re-pin
        return None
    rel = policy_mod.WORKTREE_POLICY
    data = _pinned_bytes(repo, rel, pin.get(rel, ""))
    try:
        serial = tomllib.loads(data.decode("utf-8")).get("serial", 1) if data else None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None
    return serial if isinstance(serial, int) and not isinstance(serial, bool) else None


def pin_lost(repo: git.Repo) -> bool:
    """A working-tree pin exists but the bytes it was taken of are nowhere to be found (a pin
    made before init kept a copy, then the file and HEAD moved on): its serial is unknown."""
    if policy_mod.chain_pinned(repo.common_dir) is not None:
        return False
    try:
        pin = policy_mod.read_pin(repo.common_dir)
    except PolicyError:
        return False
    rel = policy_mod.WORKTREE_POLICY
    return pin is not None and bool(pin) and not _pinned_bytes(repo, rel, pin.get(rel, ""))


def _pinned_bytes(repo: git.Repo, rel: str, sha: str) -> bytes:
    """The bytes of the pinned file ``rel`` (sha256 ``sha``): from the working tree, else the
    copy ``init`` keeps, else HEAD; b"" when none matches."""
    import hashlib

    if repo.top is not None:
        data = _read_pinned(repo.top / rel, follow_symlinks=False)  # the project's content
        if hashlib.sha256(data).hexdigest() == sha:
            return data
    data = _read_pinned(state_dir(repo) / "pinned-files" / rel, follow_symlinks=True)
    if hashlib.sha256(data).hexdigest() == sha:
        return data
    res = git.run(repo, "show", f"HEAD:{rel}", max_stdout=policy_mod.MAX_POLICY_FILE)
    data = res.stdout if res.returncode == 0 and not res.truncated else b""
    return data if hashlib.sha256(data).hexdigest() == sha else b""


def keep_copy(repo: git.Repo, pol: policy_mod.Policy) -> None:
    """Keep a copy of the files ``init`` pinned, so that the pinned policy survives an edit of
    the working-tree file for the next proposal (see :func:`_secure`)."""
    import hashlib

    if repo.top is None:
        return
    target = state_dir(repo) / "pinned-files"
    _fs.remove_tree(target)
    for rel, sha in pol.digests:
        try:
            chain.check_name(rel)
        except PolicyError:
            return
        data = _read_pinned(repo.top / rel, follow_symlinks=False)
        if hashlib.sha256(data).hexdigest() == sha:
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            (target / rel).write_bytes(data)


def _read_pinned(path: Path, *, follow_symlinks: bool) -> bytes:
    """A file that must match its pin: a regular file of bounded size, read once (a link to
    /dev/zero, a named pipe or a huge file reads as empty, i.e. as not matching); never a hang
    or a read without limit."""
    try:
        return _fs.read_regular(path, policy_mod.MAX_POLICY_FILE, follow_symlinks=follow_symlinks)
    except OSError:
        return b""


def _seen(repo: git.Repo, tip: str | None) -> str:
    """What a follow depends on: the chain's tip and the pin as it stands."""
    import hashlib

    try:
        pin = (state_dir(repo) / "policy.pin").read_bytes()
    except OSError:
        pin = b""
    return f"{tip} {hashlib.sha256(pin).hexdigest()}\n"


def refresh(repo: git.Repo, *, force: bool = True) -> chainstore.Followed | None:
    """Follow refs/wotr/policy from the pin; move the pin forward when a step is valid.

    None when the repository has no policy chain, or (``force=False``, verify's case) when
    neither the chain nor the pin changed since the last follow that succeeded. Forks and
    floods raise every time (fail closed): only a success is remembered."""
    if not chainstore.present(repo.common_dir):
        return None
    tip = chainstore.tip(repo)
    seen = state_dir(repo) / "policy-chain.seen"
    if not force:
        try:
            if seen.read_text("ascii") == _seen(repo, tip):
                return None
        except (OSError, UnicodeDecodeError):
            pass
    start = pinned(repo)
    followed = chainstore.follow(start, chainstore.read(repo))
    if followed.links:
        state_dir(repo).mkdir(parents=True, exist_ok=True)
        with _pin_lock(state_dir(repo)):
            # Another verify may have moved the pin meanwhile (a fetch between them): follow
            # again from where it is now, so that a pin is never written back (DESIGN §7).
            now = pinned(repo)
            if chain.policy_digest(now) != chain.policy_digest(start):
                followed = chainstore.follow(now, chainstore.read(repo))
            if followed.links:
                chainstore.write_pin(
                    state_dir(repo), followed, followed.links[-1].proposal, _history(repo, followed)
                )
    seen.parent.mkdir(parents=True, exist_ok=True)
    seen.write_text(_seen(repo, tip), "ascii")
    return followed


def _history(repo: git.Repo, followed: chainstore.Followed) -> dict[str, Any]:
    """The steps taken so far, kept in the pin for 'policy show' (the pin forgets old files)."""
    doc = chainstore.pin_state(state_dir(repo)) or {}
    old = doc.get("history")
    history = [h for h in old if isinstance(h, dict)] if isinstance(old, list) else []
    history += [_link(link) for link in followed.links]
    return {"history": history[-1000:]}


def current(repo: git.Repo) -> tuple[policy_mod.Policy, chainstore.Followed | None]:
    followed = refresh(repo)
    return (followed.current if followed else pinned(repo)), followed


@record
class Signed:
    serial: int
    digest: str
    fingerprint: str
    signer: str | None
    followed: chainstore.Followed | None
    proposed: policy_mod.Policy


def _sign_into(
    repo: git.Repo,
    cur: policy_mod.Policy,
    p: chainstore.Proposal,
    new: policy_mod.Policy,
    key: str | None,
    verb: str,
) -> Signed:
    payload = chain.statement(p.digests(), new.serial, chain.policy_digest(cur))
    key = key or git.config_get(repo, "user.signingkey")
    with_ssh = ssh.uses_ssh(key, git.config_get(repo, "gpg.format"))  # DESIGN §9, as `sign`
    sig = (ssh.sign if with_ssh else gpg.sign)(claim_mod.pae(payload), key)
    line = claim_mod.Envelope(payload=payload, sig=sig.sig, keyid=sig.fingerprint).line()
    chainstore.add(
        repo,
        chainstore.Proposal(p.digest, p.files, (line.rstrip(b"\n"),)),
        f"wotr: {verb} policy {new.serial} ({p.digest[:16]})",
    )
    who = cur.signer_for(sig.fingerprint)
    return Signed(
        new.serial, p.digest, sig.fingerprint, who.name if who else None, refresh(repo), new
    )


def propose(repo: git.Repo, *, key: str | None = None) -> Signed:
    if repo.top is None:
        raise BadInput("git wotr policy propose needs a working tree")
    path = repo.top / policy_mod.WORKTREE_POLICY
    new = policy_mod.load(path)
    cur, _ = current(repo)
    if new.serial != cur.serial + 1:
        raise PolicyError(
            f"{path}: serial is {new.serial}, but the policy in effect is serial {cur.serial}",
            f"set serial = {cur.serial + 1} in the proposed policy",
        )
    files: dict[str, bytes] = {}
    for name, _sha in chain.chain_digests(new):
        source = path if name == chain.POLICY_NAME else path.parent / name
        try:  # bounded, as load() read it: the file may have been swapped since
            data = _fs.read_regular(source, policy_mod.MAX_POLICY_FILE, follow_symlinks=True)
        except OSError as exc:
            raise PolicyError(f"{source} changed while it was read: {exc}") from exc
        files[chain.check_name(name)] = data
    p = chainstore.proposal(files)
    if chain.chain_digests(chainstore.load(p)) != chain.chain_digests(new):
        raise PolicyError(f"{path} or its key files changed while they were read")
    return _sign_into(repo, cur, p, new, key, "propose")


def sign(repo: git.Repo, *, key: str | None = None, digest: str | None = None) -> Signed:
    cur, _ = current(repo)
    store = chainstore.read(repo)
    found = []
    for p in store.proposals:
        if digest and not p.digest.startswith(digest.lower()):
            continue
        try:
            pol = chainstore.load(p)
        except PolicyError:
            continue
        if pol.serial == cur.serial + 1:
            found.append((p, pol))
    if not found:
        raise BadInput(
            f"no proposal for policy {cur.serial + 1} to sign",
            "run 'git wotr fetch' to get it, or 'git wotr policy propose' to make one",
        )
    if len(found) > 1:
        raise BadInput(
            f"{len(found)} proposals for policy {cur.serial + 1}: "
            + ", ".join(p.digest[:16] for p, _ in found),
            "review them with 'git wotr policy show', then pass --digest",
        )
    p, pol = found[0]
    return _sign_into(repo, cur, p, pol, key, "sign")


# --- show -------------------------------------------------------------------------------------


def show(repo: git.Repo) -> dict[str, Any]:
    cur, followed = current(repo)
    doc: dict[str, Any] = {
        "in_effect": {
            "serial": cur.serial,
            "digest": chain.policy_digest(cur),
            "path": str(cur.path),
        },
        "steps": [],
        "pending": [],
        "problems": [],
    }
    pin = chainstore.pin_state(state_dir(repo)) or {}
    history = pin.get("history")
    doc["steps"] = [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []
    if followed is None:
        return doc
    for link in followed.pending:
        doc["pending"].append(_link(link))
    doc["problems"] = list(followed.problems)
    return doc


def _link(link: chainstore.Link) -> dict[str, Any]:
    s = link.step
    pol = link.policy
    return {
        "serial": s.serial,
        "digest": s.digest,
        "valid": s.valid,
        "signed_by": list(s.signers),
        "needed": s.needed,
        "reason": s.reason,
        "threshold": pol.threshold if pol else None,
        "signers": [x.name for x in pol.signers] if pol else [],
        "rejected": [{"line": n, "reason": r} for n, r in s.rejected],
    }


def show_text(doc: dict[str, Any]) -> str:
    eff = doc["in_effect"]
    out = [
        f"policy in effect: serial {eff['serial']}  sha256:{eff['digest'][:16]}…  ({eff['path']})"
    ]
    for st in doc["steps"]:
        out.append(
            f"  serial {st['serial']}  sha256:{st['digest'][:16]}…  signed by "
            f"{', '.join(st['signed_by'])} ({len(st['signed_by'])} of {st['needed']} needed)  "
            f"signers: {', '.join(st['signers'])}, threshold {st['threshold']}"
        )
    for st in doc["pending"]:
        who = ", ".join(st["signed_by"]) or "nobody"
        out.append(
            f"  PENDING serial {st['serial']}  sha256:{st['digest'][:16]}…  {st['reason']}"
            f" (signed by {who}); signers would be: {', '.join(st['signers'])}"
        )
        for r in st["rejected"][:10]:
            out.append(f"      signature {r['line']}: {r['reason']}")
    for p in doc["problems"][:20]:
        out.append(f"  note: {p}")
    return "\n".join(out)


# --- an installer without a repository ----------------------------------------------------------


def installer_state() -> Path:
    return Path(os.environ.get("WOTR_POLICY_STATE") or INSTALLER_STATE)


@record
class InstallerPin:
    path: Path
    kept: int | None = None  # the serial an earlier pin of this policy had reached: kept


def pin_installer(policy_path: Path, state: Path) -> InstallerPin:
    """Pin ``policy_path`` (e.g. /etc/wotr/policy.toml) as the installer's start of the chain.

    The pin only moves forward (DESIGN §7): when the state already pins this very file and the
    chain took it past the file's serial, it is kept. Re-running the pin (configuration
    management does, on every run) must not take an installer back to a policy whose removed
    keys count again until the next bundle carrying the chain comes by."""
    start = policy_mod.load(policy_path.absolute())
    state.mkdir(mode=0o755, parents=True, exist_ok=True)
    _own_state(state)
    with _pin_lock(state):  # a verify moving the pin forward meanwhile is not undone
        return _pin_installer(start, state)


def _pin_installer(start: policy_mod.Policy, state: Path) -> InstallerPin:
    try:
        doc = chainstore.pin_state(state)
    except PolicyError:
        doc = None  # unreadable state: pinned anew
    if doc is not None and _same_source(doc.get("source"), start.path):
        serial = doc.get("serial")
        if isinstance(serial, int) and not isinstance(serial, bool) and serial > start.serial:
            return InstallerPin(state / "policy.pin", serial)
    followed = chainstore.Followed(start, chain.policy_digest(start), (), (), ())
    return InstallerPin(
        chainstore.write_pin(
            state, followed, None, {"source": str(start.path), "files": dict(start.digests)}
        )
    )


def _same_source(pinned: object, path: Path) -> bool:
    """The policy file the pin was taken from, however it is spelled (``/etc/wotr/policy.toml``,
    a link to it, ``/etc/wotr/../wotr/policy.toml``): a hook configured with another spelling
    than ``wotr policy pin`` was given must not quietly stay at the pinned start."""
    if not isinstance(pinned, str):
        return False
    return pinned == str(path) or os.path.realpath(pinned) == os.path.realpath(path)


@record
class Installed:
    """The policy an offline verify uses, and what following the chain found on the way."""

    policy: policy_mod.Policy
    notes: tuple[str, ...] = ()


def installer_follow(
    given: policy_mod.Policy,
    chain_files: list[Path],
    state: Path,
    carried: Sequence[tuple[str, bytes]] = (),
) -> Installed:
    """The policy an offline verify uses: ``given`` unless the installer pinned it, then the
    newest policy reachable from the pin through the chain files found and the chains
    ``carried`` inside the bundles read ((where, chain file bytes)), all as one store (a
    union: no source can hide what another carries); and remember it (the pin moves forward).

    Every source is attacker data. A malformed one adds nothing (noted); past the bounds
    (MAX_CHAIN_FILES files, MAX_CHAIN_FILE_BYTES each, 4 x that in all, MAX_PROPOSALS in the
    union) the chain is not followed and verify refuses, since what was not read might be the
    newer policy (DESIGN §6 rule 8); a fork refuses too (chain.successor)."""
    for _ in range(PIN_RETRIES):
        try:
            return _installer_follow(given, chain_files, state, carried)
        except _PinMoved:  # another verify moved the pin meanwhile: follow from where it is
            continue
    raise chain.ChainError(
        f"{state / 'policy.pin'} kept changing while the policy chain was followed; not followed",
        "run verify again",
    )


PIN_RETRIES = 5


def _own_state(state: Path) -> None:
    """The installer's state (its directory and ``policy.pin``) must be the effective user's
    or root's, and no one else may write it: whoever can write it chooses the policy (any
    ``policy.pin``), and could plant a link where verify writes (``policy.pin.tmp``)."""
    import stat

    for path in (state, state / "policy.pin"):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise PolicyError(f"{path}: {exc.strerror}") from exc
        if st.st_uid not in (os.geteuid(), 0):
            raise PolicyError(
                f"{path} belongs to another user (uid {st.st_uid}); the installer's pin is not "
                "trusted there",
                "keep the pin state in a directory of your own or root's (WOTR_POLICY_STATE)",
            )
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise PolicyError(
                f"{path} is a pin state others may write (mode {stat.S_IMODE(st.st_mode):o}); "
                "not trusted",
                f"chmod go-w {path}",
            )


class _PinMoved(Exception):
    """The pin state changed between reading it and writing the policy followed from it."""


@contextlib.contextmanager
def _pin_lock(state: Path) -> Iterator[None]:
    """Holds the installer's pin state (``state``/policy.pin.lock, the owner's alone: a file
    only who may write the state can open) while it is compared and written, so that two runs
    at once never write a pin taken from an older one (the pin only moves forward)."""
    fd = os.open(state / "policy.pin.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _installer_follow(
    given: policy_mod.Policy,
    chain_files: list[Path],
    state: Path,
    carried: Sequence[tuple[str, bytes]],
) -> Installed:
    doc = chainstore.pin_state(state)
    if doc is None or not _same_source(doc.get("source"), given.path):
        return Installed(given)
    _own_state(state)
    where = doc.get("dir")
    if isinstance(where, str) and where.startswith("policy-chain/") and ".." not in where:
        files = doc.get("files")
        start = policy_mod.load(
            state / where / chain.POLICY_NAME, pin=files if isinstance(files, dict) else {}
        )
    else:  # the file as it was pinned (the same file as given.path, maybe spelled otherwise)
        start = policy_mod.load(Path(str(doc["source"])), pin=doc.get("files") or {})
    stores: list[chainstore.Store] = []
    if len(chain_files) > MAX_CHAIN_FILES:  # rule 8: the unread ones may hold a newer policy
        stores.append(
            chainstore.Store((), (f"over {MAX_CHAIN_FILES} chain files; not followed",), False)
        )
        chain_files = chain_files[:MAX_CHAIN_FILES]
    total = 0
    for f in chain_files:
        try:
            total += f.stat().st_size
        except OSError:
            continue
        if total > MAX_CHAIN_BYTES:  # rule 8: bounded memory; an unread file = refuse
            stores.append(chainstore.Store((), (f"{f}: not read (too many bytes)",), False))
            break
        stores.append(read_chain_file(f))
    seen: set[bytes] = set()
    for source, data in carried:
        key = hashlib.sha256(data).digest()
        if key in seen:  # the same chain in many bundles (every release carries it): once
            continue
        seen.add(key)
        total += len(data)
        if total > MAX_CHAIN_BYTES:  # rule 8, as for files: what is not read may be newer
            stores.append(
                chainstore.Store((), (f"{source}: policy chain not read (too many bytes)",), False)
            )
            break
        stores.append(parse_chain(data, f"{source} (its policy chain)"))
    if not stores:
        return Installed(start)
    merged = chainstore.union(*stores)
    if len(merged.proposals) > chainstore.MAX_PROPOSALS:  # rule 8: bounded work
        merged = chainstore.Store(
            (),
            (
                *merged.problems,
                f"over {chainstore.MAX_PROPOSALS} proposals in the chains found; not followed",
            ),
            False,
        )
    followed = chainstore.follow(start, merged)
    current = followed.current
    notes = list(followed.problems)
    if followed.links:
        try:
            with _pin_lock(state):
                if chainstore.pin_state(state) != doc:  # another run moved it since it was read
                    raise _PinMoved
                chainstore.write_pin(
                    state, followed, followed.links[-1].proposal, {"source": str(given.path)}
                )
            current = _pinned_copy(state, current)
        except OSError as exc:  # a read-only state (verify not run as its owner): not kept
            notes.append(f"serial {current.serial} is not remembered: {state}: {exc.strerror}")
    for link in followed.pending:
        why = link.step.reason or "not a valid step"
        if link.step.rejected:  # what was wrong with the first signature that did not count
            number, reason = link.step.rejected[0]
            why += f" (signature {number}: {reason})"
        step = link.step
        notes.append(f"proposal {step.digest[:16]} for serial {step.serial} not taken: {why}")
    return Installed(current, tuple(notes[:MAX_NOTES]))


def _pinned_copy(state: Path, followed: policy_mod.Policy) -> policy_mod.Policy:
    """The policy just pinned, loaded from its copy under ``state`` (what the next run uses,
    and a path that exists for the report), if it is byte for byte the one followed."""
    doc = chainstore.pin_state(state) or {}
    where, files = doc.get("dir"), doc.get("files")
    if not isinstance(where, str) or not isinstance(files, dict):
        return followed
    try:
        copy = policy_mod.load(state / where / chain.POLICY_NAME, pin=files)
    except PolicyError:
        return followed
    return copy if chain.policy_digest(copy) == chain.policy_digest(followed) else followed


# --- chain files (the chain inside exported bundles) ------------------------------------------

CHAIN_FORMAT = "https://wotr.dev/policy-chain/v1"
CHAIN_SUFFIX = ".wotr-policy"
MAX_CHAIN_FILE_BYTES = 16 * 1024 * 1024
MAX_CHAIN_BYTES = 4 * MAX_CHAIN_FILE_BYTES  # of all chain files and chains in bundles, together
MAX_CHAIN_FILES = 64  # *.wotr-policy files one offline verify reads; more: refuse
MAX_NOTES = 20


def chain_doc(store: chainstore.Store) -> dict[str, Any]:
    """The document of a chain file (and of a bundle's ``policy_chain``) for ``store``."""
    import base64

    return {
        "format": CHAIN_FORMAT,
        "proposals": [
            {
                "files": {n: base64.b64encode(d).decode() for n, d in p.files},
                "signatures": [ln.decode("ascii", "replace") for ln in p.lines],
            }
            for p in store.proposals
        ],
    }


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def export_chain(repo: git.Repo) -> bytes:
    return _encode(chain_doc(chainstore.read(repo)))


def chain_for_bundle(repo: git.Repo) -> tuple[bytes | None, str]:
    """The chain file's bytes to carry in an exported bundle, or None and why not."""
    store = chainstore.read(repo)
    if not store.complete:
        why = "; ".join(store.problems[:2]) or f"{chainstore.REF} could not be read"
        return None, f"the policy chain is not in the bundle: {why}"
    if not store.proposals:
        return None, ""
    data = _encode(chain_doc(store))
    if len(data) > MAX_CHAIN_FILE_BYTES:
        return None, (
            f"the policy chain is not in the bundle: over {MAX_CHAIN_FILE_BYTES} bytes "
            "(installers would ignore it)"
        )
    return data, ""


def read_chain_file(path: Path) -> chainstore.Store:
    """A chain file is attacker data: anything wrong makes it add nothing (reported)."""
    try:
        # a regular file only: a FIFO named *.wotr-policy must not hang verify
        data = _fs.read_regular(path, MAX_CHAIN_FILE_BYTES, follow_symlinks=True)
    except OSError as exc:
        return chainstore.Store((), (f"{path}: ignored: {exc}",), True)
    return parse_chain(data, str(path))


def parse_chain(data: bytes, source: str) -> chainstore.Store:
    """A chain file's bytes (or a bundle's chain) as a store; attacker data: anything wrong
    (over MAX_CHAIN_FILE_BYTES, not the format, too many proposals or signatures) makes it add
    nothing, reported with ``source``."""
    import base64
    import binascii

    try:
        if len(data) > MAX_CHAIN_FILE_BYTES:
            raise ValueError(f"over {MAX_CHAIN_FILE_BYTES} bytes")
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != CHAIN_FORMAT:
            raise ValueError("not a wotr policy chain file")
        raw = doc.get("proposals")
        if not isinstance(raw, list) or len(raw) > chainstore.MAX_PROPOSALS:
            raise ValueError("bad or too many proposals")
        props = []
        for item in raw:
            files = item["files"]
            sigs = item["signatures"]
            if not isinstance(files, dict) or not isinstance(sigs, list):
                raise ValueError("bad proposal")
            if len(files) > chain.MAX_FILES or len(sigs) > chainstore.MAX_SIGNATURE_LINES:
                raise ValueError("proposal too large")
            if chain.POLICY_NAME not in files or not all(isinstance(x, str) for x in sigs):
                raise ValueError(f"a proposal without {chain.POLICY_NAME}, or a bad signature")
            decoded = {str(n): base64.b64decode(str(v), validate=True) for n, v in files.items()}
            if any(len(d) > chain.MAX_FILE_BYTES for d in decoded.values()):  # as in the ref
                raise ValueError(f"a policy file over {chain.MAX_FILE_BYTES} bytes")
            props.append(chainstore.proposal(decoded, [str(s).encode("ascii") for s in sigs]))
        return chainstore.union(chainstore.Store(tuple(props)))
    except (
        ValueError,
        KeyError,
        TypeError,
        RecursionError,
        binascii.Error,
        UnicodeError,
        PolicyError,
    ) as exc:
        return chainstore.Store((), (f"{source}: ignored: {_clip(str(exc))}",), True)


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def signed_text(done: Signed, verb: str) -> str:
    who = done.signer or f"key {done.fingerprint} (not a signer of the policy in effect!)"
    out = [
        f"{verb} policy {done.serial}  sha256:{done.digest[:16]}…  as {who}",
        f"  signers: {', '.join(s.name for s in done.proposed.signers)}; "
        f"threshold {done.proposed.threshold}",
    ]
    f = done.followed
    if f is not None and f.current.serial >= done.serial:
        out.append(f"policy {done.serial} is now in effect")
    elif f is not None:
        for link in f.pending:
            if link.step.digest == done.digest:
                out.append(f"  pending: {link.step.reason}")
    return "\n".join(out)
