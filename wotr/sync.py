"""Sharing claims through git remotes (DESIGN §3): fetch, union merge, push with retry.

- The network is the user's own ``git fetch``/``git push`` (ssh config, credential helpers).
- ``fetch`` brings the remote's ``refs/notes/wotr`` into ``refs/notes/remotes/<remote>/wotr``
  (forced: it is only a copy of what the remote has) and merges it into ``refs/notes/wotr`` as a
  union of lines, so no claim present here is ever dropped, whatever the remote's history did.
- ``push`` fetches, builds the union commit *without* moving ``refs/notes/wotr``, pushes that
  commit without force and moves the local ref only once the remote took it. A rejection
  (another party pushed first) retries fetch-merge-push with jittered exponential backoff
  within a time budget (120 s, git config ``wotr.pushTimeout``); each retry merges only what
  the remote gained since. A failed push or fetch leaves ``refs/notes/wotr`` as it was.
- ``notes.rewriteRef`` is never set: a claim names its commit and tree, so a copy on a rebased
  or amended commit would count for nothing there (and would look like a forgery).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable

from . import _proc, git, notes, notes_merge
from ._record import record
from .errors import SyncError

DEFAULT_REMOTE = "origin"
PUSH_BUDGET = 120.0  # seconds push keeps retrying (git config wotr.pushTimeout)
# After rejected try n, push sleeps uniform(0, min(cap, max(base, t) * 2**n)) seconds, t being
# how long that try took: with many pushers on a busy machine a try takes seconds, and pauses
# shorter than a try only make the pushers collide again (each losing try costs everyone CPU).
_BACKOFF_BASE = 0.05
_BACKOFF_CAP = 30.0
_RETRYABLE = (
    "fetch first",
    "non-fast-forward",
    "cannot lock ref",
    "failed to lock",
    "failed to update ref",
    "incorrect old value",
    "stale info",
)
_REMOTE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]*")


def tracking_ref(remote: str) -> str:
    return f"refs/notes/remotes/{remote}/wotr"


def fetch_refspec(remote: str) -> str:
    """The refspec ``init`` adds to each remote so that a plain ``git fetch`` brings claims.

    A glob on purpose: an exact ``refs/notes/wotr`` source makes every plain ``git fetch`` die
    with "couldn't find remote ref" while the remote has no claims yet; a glob that matches
    nothing is fine. It maps ``refs/notes/wotr`` to ``refs/notes/remotes/<remote>/wotr``.
    """
    return f"+{git.NOTES_REF}*:refs/notes/remotes/{remote}/wotr*"


def _exact_refspec(remote: str) -> str:
    return f"+{git.NOTES_REF}:{tracking_ref(remote)}"


@record
class Fetched:
    remote: str
    remote_tip: str | None  # None: the remote has no claims yet
    merged: notes_merge.Merged


@record
class Pushed:
    remote: str
    tip: str | None  # what the remote's refs/notes/wotr holds now (None: no claims anywhere)
    sent: bool  # False when the remote already had every claim
    rejections: int  # pushes refused because another party pushed first
    gained: int  # notes that gained claims from the remote on the way


# --- remotes -------------------------------------------------------------------------------------


def remotes(repo: git.Repo) -> list[str]:
    return [r for r in git.check(repo, "remote").splitlines() if r]


def _check_remote(repo: git.Repo, remote: str) -> None:
    known = remotes(repo)
    if remote in known:
        if not _REMOTE_NAME.fullmatch(remote) or ".." in remote or remote.endswith((".", "/")):
            raise SyncError(
                f"wotr cannot use the remote name {remote!r}",
                "rename it with 'git remote rename' to letters, digits, '.', '_', '-' or '/'",
            )
        return
    have = f" (remotes here: {', '.join(known)})" if known else " (this repository has none)"
    raise SyncError(
        f"no remote named {remote!r}{have}",
        f"add it with 'git remote add {remote} URL', or name another",
    )


def setup_remotes(repo: git.Repo, only: str | None = None) -> tuple[str, ...]:
    """Add the notes fetch refspec to every remote (or to ``only``), never touching push refspecs.

    Replaces the exact refspec of earlier versions, which broke plain ``git fetch`` while the
    remote had no claims.
    """
    if only is not None:
        _check_remote(repo, only)
    done = []
    for remote in [only] if only is not None else remotes(repo):
        key = f"remote.{remote}.fetch"
        have = git.run(repo, "config", "--get-all", key).stdout.decode().splitlines()
        old = _exact_refspec(remote)
        if old in have:
            git.check(repo, "config", "--fixed-value", "--unset-all", key, old)
        if fetch_refspec(remote) not in have:
            git.check(repo, "config", "--add", key, fetch_refspec(remote))
        done.append(remote)
    return tuple(done)


# --- preconditions -------------------------------------------------------------------------------


def _preflight(repo: git.Repo) -> None:
    """Refuse before touching the network when refs/notes/wotr cannot be updated safely."""
    problem = notes.locked(repo)
    if problem is not None:
        raise SyncError(problem.message, problem.hint)
    merge_ref = repo.git_dir / "NOTES_MERGE_REF"
    try:
        target = merge_ref.read_text(errors="replace").strip()
    except OSError:
        return
    if target.removeprefix("ref: ") == git.NOTES_REF:
        # 'git notes merge --commit' would later overwrite refs/notes/wotr without checking
        # what it holds, dropping whatever wotr merged in meanwhile: let the user finish first.
        raise SyncError(
            f"an unfinished 'git notes merge' into {git.NOTES_REF} is in progress ({merge_ref})",
            "finish it with 'git notes --ref=wotr merge --commit' or drop it with "
            "'git notes --ref=wotr merge --abort'",
        )


def _why(res: _proc.Result) -> str:
    """The line of git's stderr that says what went wrong (the first fatal/error line)."""
    text = res.stderr.decode("utf-8", "replace").splitlines()
    for line in text:
        if line.startswith(("fatal:", "error:")):
            return line.split(":", 1)[1].strip()
    return res.err_line


def _unreachable(remote: str, res: _proc.Result, action: str) -> SyncError:
    return SyncError(
        f"cannot {action} {remote}: {_why(res)}",
        f"check 'git remote get-url {remote}' and that 'git fetch {remote}' works; "
        "claims here are kept as they are",
    )


def _policy_chain(repo: git.Repo, remote: str, *, push: bool) -> None:
    """The policy chain (refs/wotr/policy) travels with the claims: see wotr/chainstore.py."""
    from . import chainstore

    (chainstore.push if push else chainstore.fetch)(repo, remote)


# --- fetch ---------------------------------------------------------------------------------------


def _fetch_only(repo: git.Repo, remote: str) -> str | None:
    """Copy the remote's notes into the tracking ref; its commit id, or None if it has none."""
    res = git.fetch_into(repo, remote, git.NOTES_REF, tracking_ref(remote))
    if res is None:
        return None
    if res.returncode != 0:
        raise _unreachable(remote, res, "fetch claims from")
    tip = notes_merge.tip(repo, tracking_ref(remote))
    if tip is not None and git.run(repo, "cat-file", "-t", tip).stdout.strip() != b"commit":
        raise SyncError(
            f"{remote}'s {git.NOTES_REF} is not a notes commit: no claims taken from it",
            f"whoever maintains {remote} must point it at a notes commit or delete it there",
        )
    return tip


def fetch(repo: git.Repo, remote: str = DEFAULT_REMOTE) -> Fetched:
    """Fetch the remote's claims and union them into refs/notes/wotr."""
    _check_remote(repo, remote)
    _preflight(repo)
    remote_tip = _fetch_only(repo, remote)
    _policy_chain(repo, remote, push=False)
    if remote_tip is None:
        return Fetched(remote, None, notes_merge.Merged(notes_merge.tip(repo), 0, 0, False))
    try:
        merged = notes_merge.merge_union(repo, remote_tip, f"wotr: union with {remote}")
    except notes.NotesError as exc:
        raise SyncError(f"fetched claims from {remote} but {exc.message}", exc.hint) from exc
    return Fetched(remote, remote_tip, merged)


# --- push ----------------------------------------------------------------------------------------


def _push_once(repo: git.Repo, remote: str, commit: str) -> str | None:
    """Push ``commit`` to the remote's refs/notes/wotr without force.

    None on success, the reason on a retryable rejection; :class:`SyncError` otherwise.
    """
    res = git.run(
        repo,
        "push",
        "--porcelain",
        "--no-follow-tags",
        "--recurse-submodules=no",
        remote,
        f"{commit}:{git.NOTES_REF}",
    )
    if res.returncode == 0:
        return None
    rejected = [
        ln for ln in res.stdout.decode("utf-8", "replace").splitlines() if ln.startswith("!\t")
    ]
    if not rejected:
        raise _unreachable(remote, res, "push claims to")
    summary = rejected[0].split("\t")[-1]
    reason = summary.partition("(")[2].rpartition(")")[0] or summary
    if any(word in reason for word in _RETRYABLE):
        return reason
    said = [
        ln[7:].strip()
        for ln in res.stderr.decode("utf-8", "replace").splitlines()
        if ln.startswith("remote:") and ln[7:].strip()
    ]
    raise SyncError(
        f"{remote} refused the claims: {reason}{f' ({said[0]})' if said else ''}",
        f"your claims are kept here; ask whoever runs {remote} why, then 'git wotr push {remote}'",
    )


def push_budget(repo: git.Repo) -> float:
    """Seconds ``push`` keeps retrying: git config ``wotr.pushTimeout``, else 120."""
    raw = git.config_get(repo, "wotr.pushTimeout")
    if raw is None:
        return PUSH_BUDGET
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise SyncError(
            f"git config wotr.pushTimeout is {raw!r}, not a number of seconds",
            "set it to e.g. 120 with 'git config wotr.pushTimeout 120'",
        )
    return value


def push(
    repo: git.Repo,
    remote: str = DEFAULT_REMOTE,
    *,
    budget: float | None = None,
    attempts: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Pushed:
    """Fetch, merge and push until the remote holds every local claim; never forces.

    refs/notes/wotr moves only after the remote accepted the union (to that union, or to a
    union with whatever was signed here meanwhile), so on failure it is unchanged. A rejected
    push (another party pushed first) is retried after a jittered, growing pause for up to
    ``budget`` seconds (:func:`push_budget`; ``attempts`` caps the tries too, for tests);
    each retry fetches what is new and merges it into the previous union, nothing more.
    """
    _check_remote(repo, remote)
    _preflight(repo)
    budget = push_budget(repo) if budget is None else budget
    start = clock()
    message = f"wotr: union with {remote}"
    local = notes_merge.tip(repo)  # where refs/notes/wotr was: moved only after a push
    work = local  # the union so far: local claims and every remote tip merged in
    rejections = gained = 0
    attempt = 0
    while True:
        attempt += 1
        tried = clock()
        remote_tip = _fetch_only(repo, remote)
        if attempt == 1:
            _policy_chain(repo, remote, push=True)
        target = work
        if remote_tip is not None:
            try:
                plan = notes_merge.plan_onto(repo, work, remote_tip, message)
            except notes.NotesError as exc:
                raise SyncError(exc.message, exc.hint) from exc
            target, gained = plan.tip, gained + plan.gained
        if target is None:
            return Pushed(remote, None, False, rejections, 0)  # no claims here or there
        sent = target != remote_tip
        reason = _push_once(repo, remote, target) if sent else None
        if reason is None:
            try:
                notes_merge.advance(repo, local, target, message)
            except notes.NotesError as exc:
                raise SyncError(f"pushed claims to {remote}, but {exc.message}", exc.hint) from exc
            return Pushed(remote, target, sent, rejections, gained)
        rejections += 1
        work = target
        now = clock()
        left = budget - (now - start)
        if (attempts is not None and attempt >= attempts) or left <= 0:
            break
        scale = max(_BACKOFF_BASE, now - tried) * 2**attempt
        sleep(min(left, random.uniform(0, min(_BACKOFF_CAP, scale))))  # noqa: S311
    raise SyncError(
        f"could not push claims to {remote}: rejected {rejections} times in "
        f"{clock() - start:.0f} s, others kept pushing first",
        f"your claims are kept here; run 'git wotr push {remote}' again in a moment, or "
        "allow more time with 'git config wotr.pushTimeout SECONDS'",
    )
