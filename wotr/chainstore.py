"""The policy chain's I/O (DESIGN §7): the ``refs/wotr/policy`` ref, gpg checks, following.

Layout of the ref (a commit; its history carries no meaning, only its tree):

    <serial>/<digest>/files/threshold.toml      the proposed policy, byte for byte
    <serial>/<digest>/files/keys/alice.asc      each key file it names, at the path it names
    <serial>/<digest>/signatures                envelope lines (update statements), sorted, unique

``digest`` is :func:`wotr.chain.digest_of` over the files; a directory whose files do not hash
to its name is skipped and reported. Two copies of the ref merge by union: files are fixed by
the digest, signature lines are a set. Reading is bounded (entries, sizes, lines) and strict;
a bound can only leave a proposal unchecked, which :func:`wotr.chain.successor` turns into a
refusal, never into a step.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import _fs, _openpgp, _sshsig, chain, git
from . import claim as claim_mod
from . import policy as policy_mod
from . import verify as verify_mod
from ._record import record
from .errors import PolicyError, SyncError

REF = "refs/wotr/policy"
MAX_TREE_ENTRIES = 8192
MAX_PROPOSALS = 256  # in the whole ref; beyond, the chain is not followed (fail closed)
MAX_SIGNATURE_BYTES = 4 * 1024 * 1024
MAX_SIGNATURE_LINES = 512  # per proposal
MAX_CHECKED_PER_STEP = 256  # signatures sent to gpg for one serial, over all its proposals
MAX_STEPS = 10_000
MAX_STORE_BYTES = 64 * 1024 * 1024  # everything the ref holds
_SERIAL = re.compile(r"[1-9][0-9]{0,9}")
_DIGEST = re.compile(r"[0-9a-f]{64}")


@record
class Proposal:
    """One proposed policy: its files (chain names), and the signature lines found for it."""

    digest: str
    files: tuple[tuple[str, bytes], ...]
    lines: tuple[bytes, ...]

    def digests(self) -> tuple[tuple[str, str], ...]:
        return tuple((n, hashlib.sha256(d).hexdigest()) for n, d in self.files)


@record
class Store:
    proposals: tuple[Proposal, ...]
    problems: tuple[str, ...] = ()
    complete: bool = True  # False: a bound left something unread


def proposal(files: Mapping[str, bytes], lines: Iterable[bytes] = ()) -> Proposal:
    named = tuple(sorted((chain.check_name(n), d) for n, d in files.items()))
    dirs = {"/".join(n.split("/")[:k]) for n, _ in named for k in range(1, n.count("/") + 1)}
    clash = sorted(dirs & {n for n, _ in named})
    if clash:  # a file and a directory of one name: no tree can hold both (a hostile tree did)
        raise PolicyError(f"policy file name {clash[0]!r} is also a directory of its files")
    digest = chain.digest_of((n, hashlib.sha256(d).hexdigest()) for n, d in named)
    return Proposal(digest, named, tuple(sorted(set(lines))))


def union(*stores: Store) -> Store:
    by: dict[str, tuple[tuple[tuple[str, bytes], ...], set[bytes]]] = {}
    for store in stores:
        for p in store.proposals:
            if p.digest in by:
                by[p.digest][1].update(p.lines)
            else:
                by[p.digest] = (p.files, set(p.lines))
    props = tuple(Proposal(d, f, tuple(sorted(lines))) for d, (f, lines) in sorted(by.items()))
    problems = tuple(x for s in stores for x in s.problems)
    return Store(props, problems, all(s.complete for s in stores))


# --- reading and writing the ref ------------------------------------------------------------


def tip(repo: git.Repo, ref: str = REF) -> str | None:
    res = git.run(repo, "rev-parse", "-q", "--verify", f"{ref}^{{commit}}")
    return res.stdout.decode().strip() if res.returncode == 0 else None


def present(common_dir: Path) -> bool:
    """Cheap: does this repository have refs/wotr/policy at all (loose or packed)?"""
    if (common_dir / REF).exists():
        return True
    try:
        packed = (common_dir / "packed-refs").read_bytes()
    except OSError:
        return False
    return b" " + REF.encode() + b"\n" in packed


def read(repo: git.Repo, ref: str = REF) -> Store:
    commit = tip(repo, ref)
    if commit is None:
        return Store(())
    res = git.run(repo, "ls-tree", "-r", "-z", "-l", commit, max_stdout=4 * 1024 * 1024)
    if res.returncode != 0 or res.truncated:  # a cut listing (git done before the kill)
        why = "its listing is over 4 MiB (flooded?)" if res.truncated else res.err_line
        return Store((), (f"{ref} cannot be listed: {why}",), False)
    entries = [e for e in res.stdout.split(b"\0") if e]
    problems: list[str] = []
    complete = True
    if len(entries) > MAX_TREE_ENTRIES:
        problems.append(f"{ref} has over {MAX_TREE_ENTRIES} files; not followed (flooded?)")
        return Store((), tuple(problems), False)
    groups: dict[tuple[str, str], dict[str, tuple[str, int]]] = {}
    for entry in entries:
        meta, _, raw_path = entry.partition(b"\t")
        fields = meta.split()
        path = raw_path.decode("utf-8", "replace")
        parts = path.split("/")
        if (
            len(fields) != 4
            or fields[1] != b"blob"
            or fields[0] not in (b"100644", b"100755")
            or not fields[3].isdigit()
            or len(parts) < 3
            or not _SERIAL.fullmatch(parts[0])
            or not _DIGEST.fullmatch(parts[1])
        ):
            problems.append(f"{ref}: {path!r} is not part of a proposal; ignored")
            continue
        rest = "/".join(parts[2:])
        if rest != "signatures" and not rest.startswith("files/"):
            problems.append(f"{ref}: {path!r} is not part of a proposal; ignored")
            continue
        groups.setdefault((parts[0], parts[1]), {})[rest] = (
            fields[2].decode("ascii"),
            int(fields[3]),
        )
    total = sum(size for files in groups.values() for _, size in files.values())
    if total > MAX_STORE_BYTES:
        problems.append(f"{ref} holds over {MAX_STORE_BYTES} bytes; not followed (flooded?)")
        return Store((), tuple(problems), False)
    if len(groups) > MAX_PROPOSALS:
        problems.append(f"{ref} holds over {MAX_PROPOSALS} proposals; not followed (flooded?)")
        return Store((), tuple(problems), False)
    props: list[Proposal] = []
    with git.ObjectReader(repo) as reader:
        for (serial, digest), files in sorted(groups.items()):
            where = f"{ref}: {serial}/{digest[:16]}"
            try:
                got = _proposal(reader, files, where)
            except PolicyError as exc:
                problems.append(str(exc))
                continue
            if got.digest != digest:
                problems.append(f"{where}: its files do not hash to its name; ignored")
                continue
            props.append(got)
    return union(Store(tuple(props), tuple(problems), complete))


def _proposal(reader: git.ObjectReader, files: Mapping[str, tuple[str, int]], where: str) -> Any:
    contents: dict[str, bytes] = {}
    lines: list[bytes] = []
    names = [n for n in files if n.startswith("files/")]
    if len(names) > chain.MAX_FILES:
        raise PolicyError(f"{where}: over {chain.MAX_FILES} files; ignored")
    for rest, (oid, size) in files.items():
        limit = MAX_SIGNATURE_BYTES if rest == "signatures" else chain.MAX_FILE_BYTES
        if size > limit:
            raise PolicyError(f"{where}/{rest} is over {limit} bytes; ignored")
        got = reader.get(oid, limit)
        if got is None:
            raise PolicyError(f"{where}/{rest} is missing; ignored")
        if rest == "signatures":
            lines = [ln for ln in got[2].split(b"\n") if ln.strip()][:MAX_SIGNATURE_LINES]
        else:
            contents[rest.removeprefix("files/")] = got[2]
    if chain.POLICY_NAME not in contents:
        raise PolicyError(f"{where} has no {chain.POLICY_NAME}; ignored")
    return proposal(contents, lines)


def write(repo: git.Repo, store: Store, old: str | None, parents: Sequence[str], msg: str) -> str:
    """Commit ``store`` as the new tip of REF, if REF still is ``old``; the new commit id."""
    import pygit2

    r = pygit2.Repository(str(repo.git_dir))
    nested: dict[str, Any] = {}
    for p in store.proposals:
        serial = str(serial_of(p) or 0)
        node = nested.setdefault(serial, {}).setdefault(p.digest, {})
        files: dict[str, Any] = node.setdefault("files", {})
        for name, data in p.files:
            parts = name.split("/")
            d = files
            for part in parts[:-1]:
                d = d.setdefault(part, {})
            d[parts[-1]] = r.create_blob(data)
        if p.lines:
            node["signatures"] = r.create_blob(b"".join(ln + b"\n" for ln in p.lines))

    def build(tree: dict[str, Any]) -> Any:
        tb = r.TreeBuilder()
        for name, value in sorted(tree.items()):
            if isinstance(value, dict):
                tb.insert(name, build(value), pygit2.GIT_FILEMODE_TREE)
            else:
                tb.insert(name, value, pygit2.GIT_FILEMODE_BLOB)
        return tb.write()

    name, email = git.identity(repo)
    sig = pygit2.Signature(name, email)
    commit = r.create_commit(
        None, sig, sig, msg, build(nested), [pygit2.Oid(hex=p) for p in parents]
    )
    res = git.run(repo, "update-ref", "-m", msg, REF, str(commit), old or "0" * len(str(commit)))
    if res.returncode != 0:
        raise SyncError(f"{REF} changed meanwhile: {res.err_line}", "run the command again")
    return str(commit)


def add(repo: git.Repo, new: Proposal, msg: str) -> None:
    """Union one proposal (or more signatures for one) into REF."""
    for _ in range(5):
        old = tip(repo)
        merged = union(read(repo), Store((new,)))
        try:
            write(repo, merged, old, [old] if old else [], msg)
            return
        except SyncError:
            continue
    raise SyncError(f"{REF} kept changing; nothing written", "run the command again")


# --- loading proposals as policies ---------------------------------------------------------


def materialize(p: Proposal, directory: Path) -> Path:
    for name, data in p.files:
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return directory / chain.POLICY_NAME


def load(p: Proposal) -> policy_mod.Policy:
    """The proposal as a checked Policy (files in a private temporary directory).

    A proposal is attacker data: every key file its TOML names must be one of its own files
    (a plain relative name), checked before anything is read, so that a proposal can never
    make wotr read a file of this machine (``keys = ["/dev/zero"]``)."""
    _own_keys_only(p)
    tmp = _fs.private_dir("wotr-policy-")
    try:
        loaded = policy_mod.load(materialize(p, tmp))
    except OSError as exc:
        raise PolicyError(f"proposal {p.digest[:16]} cannot be laid out: {exc}") from exc
    finally:
        _fs.remove_tree(tmp)
    if chain.chain_digests(loaded) != p.digests():
        raise PolicyError(
            f"proposal {p.digest[:16]} carries files its policy does not name", "remove them"
        )
    return loaded


def _own_keys_only(p: Proposal) -> None:
    import tomllib

    names = dict(p.files)
    try:
        doc = tomllib.loads(names[chain.POLICY_NAME].decode("utf-8"))
    except (KeyError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise PolicyError(f"proposal {p.digest[:16]}: no readable {chain.POLICY_NAME}") from exc
    signers = doc.get("signers")
    for entry in signers if isinstance(signers, list) else []:
        keys = entry.get("keys") if isinstance(entry, dict) else None
        for key in keys if isinstance(keys, list) else []:
            if not isinstance(key, str) or key not in names or key == chain.POLICY_NAME:
                raise PolicyError(
                    f"proposal {p.digest[:16]} names key file {key!r}, which it does not carry"
                )


# --- following the chain -----------------------------------------------------------------------


@record
class Link:
    """One step of the chain as shown: the verdict and the policy (None: unreadable)."""

    step: chain.Step
    policy: policy_mod.Policy | None
    proposal: Proposal | None
    effect: bool = False  # the step was taken


@record
class Followed:
    current: policy_mod.Policy
    digest: str
    links: tuple[Link, ...]
    pending: tuple[Link, ...]  # proposals for the serial after the current one, not yet valid
    problems: tuple[str, ...]


def votes(
    current: policy_mod.Policy, p: Proposal, budget: list[int], expected: bytes
) -> tuple[list[chain.Vote], bool]:
    """Signature lines of ``p`` judged by gpg against ``current``'s keys only (§6 rules 1-3).

    Lines signing another statement, naming no key of ``current`` or repeating a signature
    never reach gpg. ``budget`` (a one-item list) bounds gpg work; False when it ran out."""
    out: list[chain.Vote] = []
    todo: list[tuple[int, bytes, bytes]] = []
    seen: set[bytes] = set()
    complete = True
    for number, line in enumerate(p.lines, 1):
        try:
            env = claim_mod.parse_line(line)
            # OpenPGP or SSH (DESIGN §9), gated as claims are: a signer's SSH key votes too
            _, ours = verify_mod._issuers(current, env.sig)
        except (claim_mod.ClaimError, _openpgp.PacketError, _sshsig.SshFormatError) as exc:
            out.append(chain.Vote(number, b"", None, f"not a valid envelope: {exc}"))
            continue
        if env.payload != expected:  # never a vote for this step: no gpg work for it
            out.append(chain.Vote(number, env.payload, None, "signs another statement"))
            continue
        if not ours:
            out.append(chain.Vote(number, env.payload, None, "signed by a key not in the policy"))
            continue
        if env.sig in seen:
            continue
        seen.add(env.sig)
        if budget[0] <= 0:
            complete = False
            continue
        budget[0] -= 1
        todo.append((number, env.payload, env.sig))
    by_payload: dict[bytes, list[tuple[int, bytes]]] = {}
    for number, payload, sig in todo:
        by_payload.setdefault(payload, []).append((number, sig))
    if by_payload:
        jobs = [(claim_mod.pae(pl), [s for _, s in items]) for pl, items in by_payload.items()]
        checked = verify_mod._check_jobs(current, jobs)
        for (payload, items), results in zip(by_payload.items(), checked, strict=True):
            for (number, _), res in zip(items, results, strict=True):
                fpr = res.fingerprint if res.ok else None
                out.append(chain.Vote(number, payload, fpr, res.reason))
    return out, complete


def serial_of(p: Proposal) -> int | None:
    """The serial a proposal's TOML states (absent: 1), without loading its keys; None when the
    TOML cannot be read (the proposal then never is a step)."""
    import tomllib

    toml = dict(p.files).get(chain.POLICY_NAME, b"")
    try:
        serial = tomllib.loads(toml.decode("utf-8")).get("serial", 1)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):  # deep nesting
        return None
    return serial if isinstance(serial, int) and not isinstance(serial, bool) else None


def follow(start: policy_mod.Policy, store: Store) -> Followed:
    """The newest policy reachable from ``start`` by valid steps (DESIGN §7). Only proposals for
    the next serial are loaded and sent to gpg, and only their lines over the exact statement."""
    problems = list(store.problems)
    if not store.complete:
        # A bound left (part of) the store unread: it may hold a valid newer policy (one that
        # removes a key). Staying at ``start`` would be a guess; refuse (DESIGN §6 rule 8).
        raise chain.ChainError(
            "; ".join(problems[:3]) or f"{REF} could not be read completely (flooded?)",
            "remove the bogus proposals from refs/wotr/policy; until then nothing verifies",
        )
    serials = {p.digest: serial_of(p) for p in store.proposals}
    current, digest = start, chain.policy_digest(start)
    links: list[Link] = []
    pending: list[Link] = []
    for _ in range(MAX_STEPS):
        want = current.serial + 1
        cands: list[tuple[Proposal, policy_mod.Policy]] = []
        for p in store.proposals:
            if serials[p.digest] != want:
                continue
            try:
                cands.append((p, load(p)))
            except PolicyError as exc:
                problems.append(f"proposal {p.digest[:16]}: {exc}")
        if not cands:
            break
        budget = [MAX_CHECKED_PER_STEP]
        steps: list[tuple[chain.Step, policy_mod.Policy, Proposal]] = []
        complete: bool = store.complete
        for p, pol in cands:
            expected = chain.statement(chain.chain_digests(pol), want, digest)
            vs, done = votes(current, p, budget, expected)
            complete = complete and done
            steps.append((chain.judge(current, pol, vs), pol, p))
        nxt = chain.successor([s for s, _, _ in steps], complete=complete)
        if nxt is None:
            pending.extend(Link(s, pol, p) for s, pol, p in steps)
            break
        taken = next(x for x in steps if x[0].digest == nxt.digest)
        links.append(Link(taken[0], taken[1], taken[2], True))
        current, digest = taken[1], nxt.digest
    # Proposals for a serial that was passed, that are not the step taken: never a step now.
    on_path = {ln.step.digest for ln in links}
    for d, serial in serials.items():
        if d not in on_path and serial is not None and start.serial < serial <= current.serial:
            problems.append(
                f"proposal {d[:16]} has serial {serial}, not above the policy in effect "
                f"(serial {current.serial}): ignored (replayed or superseded)"
            )
    return Followed(current, digest, tuple(links), tuple(pending), tuple(problems))


# --- pin state ---------------------------------------------------------------------------------


def pin_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((state_dir / "policy.pin").read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise PolicyError(f"{state_dir / 'policy.pin'} is unreadable: {exc}") from exc
    if not isinstance(doc, dict):
        raise PolicyError(f"{state_dir / 'policy.pin'} is malformed")
    return doc


def write_pin(
    state_dir: Path, followed: Followed, p: Proposal | None, extra: Mapping[str, Any]
) -> Path:
    """Record the policy in effect; a chain policy is copied under ``state_dir``."""
    doc: dict[str, Any] = {
        **extra,
        "serial": followed.current.serial,
        "digest": followed.digest,
    }
    if p is not None:
        target = state_dir / "policy-chain" / f"{followed.current.serial}-{p.digest[:16]}"
        if not target.is_dir():
            tmp = _fs.private_dir("tmp-", state_dir)
            materialize(p, tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.rename(target)
        doc["dir"] = str(target.relative_to(state_dir))
        doc["policy"] = chain.POLICY_NAME
        doc["files"] = dict(p.digests())
    state_dir.mkdir(parents=True, exist_ok=True)
    tmpfile = state_dir / "policy.pin.tmp"
    tmpfile.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", "utf-8")
    tmpfile.replace(state_dir / "policy.pin")
    return state_dir / "policy.pin"


# --- travelling with `git wotr fetch` / `push` ----------------------------------------------------


def tracking(remote: str) -> str:
    return f"refs/wotr/remotes/{remote}/policy"


def _fetch_tip(repo: git.Repo, remote: str) -> str | None:
    res = git.fetch_into(repo, remote, REF, tracking(remote))
    if res is None:
        return None
    if res.returncode != 0:
        raise SyncError(f"cannot fetch {REF} from {remote}: {res.err_line}")
    return tip(repo, tracking(remote))


def fetch(repo: git.Repo, remote: str) -> bool:
    """Union the remote's policy chain into REF; True when something was gained."""
    theirs = _fetch_tip(repo, remote)
    if theirs is None:
        return False
    for _ in range(5):
        old = tip(repo)
        if old == theirs:
            return False
        mine = read(repo)
        other = read(repo, tracking(remote))
        merged = union(mine, other)
        if old is not None and merged.proposals == mine.proposals:
            if _has(repo, old, theirs):
                return False
            if other.complete and not other.problems and _has(repo, theirs, old):
                # the same proposals one commit on: follow it (no merge commit per clone)
                res = git.run(repo, "update-ref", REF, theirs, old)
                if res.returncode == 0:
                    return False
                continue
        # Nothing new but another history (the same signature added in two clones, a re-commit,
        # junk entries): still join the histories, or 'push' is refused for good, and with it
        # the claims pushed after it.
        try:
            write(repo, merged, old, [p for p in (old, theirs) if p], f"wotr: union with {remote}")
            return True
        except SyncError:
            continue
    raise SyncError(f"{REF} kept changing during the fetch", "run 'git wotr fetch' again")


def _has(repo: git.Repo, mine: str, theirs: str) -> bool:
    """Is ``theirs`` already in the history of ``mine`` (a push of ``mine`` fast-forwards)?"""
    return git.run(repo, "merge-base", "--is-ancestor", theirs, mine).returncode == 0


def push(repo: git.Repo, remote: str) -> bool:
    """Fetch, union and push REF without force; False when there is no chain here."""
    for _ in range(8):
        fetch(repo, remote)
        mine = tip(repo)
        if mine is None:
            return False
        res = git.run(
            repo,
            "push",
            "--porcelain",
            "--no-follow-tags",
            "--recurse-submodules=no",
            remote,
            f"{mine}:{REF}",
        )
        if res.returncode == 0:
            return True
        if b"non-fast-forward" not in res.stdout + res.stderr and b"fetch first" not in (
            res.stdout + res.stderr
        ):
            raise SyncError(f"{remote} refused {REF}: {res.err_line}")
    raise SyncError(f"{remote} kept moving {REF}", "run 'git wotr push' again")
