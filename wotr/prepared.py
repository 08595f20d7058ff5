"""Prepared policies: a checked policy kept between runs, so that a verify need not parse TOML.

A verify that an installer hook starts for every package pays for ``tomllib`` (with ``typing``,
``datetime`` and ``string``) and for parsing the key files each time, though the policy rarely
changes. This module keeps what :func:`wotr.policy.load` derived from a policy's files, under
the conditions that keep DESIGN §6 rule 1 (nothing outside the policy influences the keys):

- **derived from the policy's files alone**: an entry holds only what ``load`` computed from the
  bytes of ``threshold.toml`` and its key files; it is named by the sha256 of the TOML bytes and
  of the code that derives it (wotr's version and the size and time of its deriving modules), and
  records the sha256 of every key file it was derived from;
- **checked before every use**: ``load`` still reads every file (the same bounded reads, the same
  pin checks) and uses an entry only when all of those digests match; otherwise it derives the
  policy again and replaces the entry;
- **stored where only the user can write**: ``$WOTR_CACHE_DIR``, else ``$XDG_CACHE_HOME/wotr``,
  else ``~/.cache/wotr``; the directory and each entry must belong to the effective user and be
  writable by nobody else, and are opened without following a symbolic link. Anything else, an
  unreadable or malformed entry, or ``WOTR_NO_CACHE=1``, and the policy is derived as before.

Only policies that a verify uses are kept (not the candidates of a policy chain), at most
:data:`MAX_ENTRIES` of them.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat

FORMAT = "https://wotr.dev/prepared-policy/v1"
MAX_ENTRIES = 32
MAX_ENTRY_BYTES = 64 * 1024 * 1024
_SUFFIX = ".policy.json"
# the modules whose code turns a policy's bytes into the entry
_DERIVING = ("policy.py", "prepared.py", "_openpgp.py", "_sshsig.py", "claim.py")

_derivation: list[str] = []


def directory() -> str | None:
    """Where entries are kept, or None when the cache is off or has no home."""
    if os.environ.get("WOTR_NO_CACHE"):
        return None
    named = os.environ.get("WOTR_CACHE_DIR")
    if named:
        return os.path.abspath(named)
    base = os.environ.get("XDG_CACHE_HOME")
    if not (base and os.path.isabs(base)):
        home = os.environ.get("HOME")
        if not (home and os.path.isabs(home)):
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "wotr")


def derivation() -> str:
    """Names the code that derives entries: another wotr, or changed code, finds no entry."""
    if not _derivation:
        from . import __version__

        here = os.path.dirname(os.path.abspath(__file__))
        parts = [FORMAT, __version__]
        for name in _DERIVING:
            try:
                st = os.stat(os.path.join(here, name))
                parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
            except OSError:
                parts.append(f"{name}:-")
        _derivation.append("|".join(parts))
    return _derivation[0]


def entry_name(policy_sha256: str) -> str:
    from .hashing import sha256_hex

    return sha256_hex(f"{derivation()}\0{policy_sha256}".encode()) + _SUFFIX


def _private(st: os.stat_result) -> bool:
    """Belongs to the effective user and nobody else may write it."""
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _open_dir(path: str) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    if _private(os.fstat(fd)):
        return fd
    os.close(fd)
    return None


def lookup(policy_sha256: str) -> dict[str, object] | None:
    """The entry for a policy whose TOML has this sha256, if a usable one is kept."""
    where = directory()
    if where is None:
        return None
    dfd = _open_dir(where)
    if dfd is None:
        return None
    try:
        name = entry_name(policy_sha256)
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
        with open(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not (stat.S_ISREG(st.st_mode) and _private(st)) or st.st_size > MAX_ENTRY_BYTES:
                return None
            doc = json.loads(f.read(MAX_ENTRY_BYTES + 1))
    except (OSError, ValueError):
        return None
    finally:
        os.close(dfd)
    ok = (
        isinstance(doc, dict)
        and doc.get("format") == FORMAT
        and doc.get("derivation") == derivation()
        and doc.get("policy_sha256") == policy_sha256
    )
    return doc if ok else None


def store(policy_sha256: str, body: dict[str, object]) -> None:
    """Keep ``body`` (what load derived) for this policy; failing to is not an error."""
    where = directory()
    if where is None:
        return
    try:
        os.makedirs(where, mode=0o700, exist_ok=True)
    except OSError:
        return
    dfd = _open_dir(where)
    if dfd is None:
        return
    try:
        doc = {"format": FORMAT, "derivation": derivation(), "policy_sha256": policy_sha256}
        data = json.dumps({**doc, **body}, sort_keys=True, separators=(",", ":")).encode()
        name = entry_name(policy_sha256)
        tmp = f".{name}.{os.urandom(6).hex()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o600, dir_fd=dfd)
        try:
            with open(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            return
        _evict(dfd)
    except OSError:
        return
    finally:
        os.close(dfd)


def _evict(dfd: int) -> None:
    """Keep the MAX_ENTRIES entries written last."""
    found: list[tuple[int, str]] = []
    for name in os.listdir(dfd):
        if name.endswith(_SUFFIX):
            with contextlib.suppress(OSError):
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                found.append((st.st_mtime_ns, name))
    found.sort(reverse=True)
    for _, name in found[MAX_ENTRIES:]:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dfd)
