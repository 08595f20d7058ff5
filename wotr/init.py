"""``init``: write a threshold.toml skeleton (or take the existing one), check it, pin it."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from . import git, gpg, policy, ssh
from ._record import record
from .errors import BadInput, PolicyError, WotrError


@record
class Initialised:
    path: Path
    created: bool
    pinned: Path | None
    problem: str  # why it was not pinned ('' when pinned)
    loaded: policy.Policy | None
    remotes: tuple[str, ...]


def _skeleton(top: Path, repo: git.Repo, threshold: int | None) -> bytes:
    import tomli_w

    signers: list[dict[str, object]] = []
    raw_name = git.config_get(repo, "user.name") or "me"
    name = re.sub(r"[^A-Za-z0-9._@+-]+", "-", raw_name).strip("-").lower()[:64] or "me"
    spec = git.config_get(repo, "user.signingkey")
    ssh_key = ssh.configured_key(spec, git.config_get(repo, "gpg.format"))  # DESIGN §9
    fpr, armored = "", b""
    if ssh_key is not None:
        signers.append({"name": name, "ssh": [f"{ssh_key.line()} {name}"]})
    else:
        with contextlib.suppress(WotrError):
            fpr, armored = gpg.export_public(spec)
    if fpr:
        keyfile = Path("keys") / f"{name}.asc"
        (top / "keys").mkdir(exist_ok=True)
        if (top / "keys").is_symlink():
            raise BadInput(
                f"{top / 'keys'} is a symbolic link",
                "a policy's key files must be files of the working tree",
            )
        _write_new(top / keyfile, armored)
        signers.append({"name": name, "keys": [str(keyfile)], "fingerprints": [fpr]})
    doc = {"version": 1, "threshold": threshold or max(1, len(signers)), "signers": signers}
    return tomli_w.dumps(doc).encode("utf-8")


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data``; never through a link the project committed there."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError as exc:
        raise BadInput(f"{path} already exists", "remove it, or list it in threshold.toml") from exc
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def init(repo: git.Repo, *, threshold: int | None = None) -> Initialised:
    from . import sync

    if repo.top is None:
        raise BadInput("git wotr init needs a working tree", "run it in a clone, not a bare repo")
    path = repo.top / policy.WORKTREE_POLICY
    created = False
    if os.path.lexists(path):
        if threshold is not None:
            raise BadInput(
                f"{path} already exists", "edit its threshold, then run 'git wotr init' to pin it"
            )
    else:
        _write_new(path, _skeleton(repo.top, repo, threshold))
        created = True
    try:
        loaded = policy.load(path, follow_symlinks=False)  # as verify will read it
    except PolicyError as exc:
        # Not pinned: the command fails (exit 2) and, like every failed command, leaves git's
        # configuration as it was; the remotes are set up by the run that pins.
        return Initialised(path, created, None, str(exc), None, ())
    pinned = _pin_forward(repo, loaded)
    remotes = sync.setup_remotes(repo)
    return Initialised(path, created, pinned, "", loaded, remotes)


def _pin_forward(repo: git.Repo, loaded: policy.Policy) -> Path:
    """Pin ``loaded`` unless the pin already moved along the policy chain past its serial (the
    pin only moves forward, DESIGN §7); then follow the chain from the pin.

    A policy with a *higher* serial than the one pinned claims to be a successor, and a
    successor is trusted only through validly signed steps: when the chain from the pin does
    not reach its serial, it is refused (the user's review of an unsigned file must not skip
    the update signers). Re-pinning the same serial after an edit stays the user's review."""
    from . import policycmd

    chained = policy.chain_pinned(repo.common_dir)
    ahead = None
    if chained is not None:
        try:
            ahead = policy.load(chained, pin=policy.read_pin(repo.common_dir))
        except PolicyError:
            ahead = None
    if ahead is None or ahead.serial < loaded.serial:
        old = ahead.serial if ahead is not None else policycmd.pinned_serial(repo)
        if old is None and ahead is None and loaded.serial > 1 and policycmd.pin_lost(repo):
            raise BadInput(
                f"{loaded.path} is serial {loaded.serial}, but the files of the pinned policy "
                "are nowhere to be found (working tree, the copy init keeps, HEAD), so it "
                "cannot be told whether a signed policy chain leads there; not pinned",
                f"to make this file a new root of trust, remove {repo.common_dir / 'wotr'} and "
                "run 'git wotr init' again",
            )
        if old is not None and loaded.serial > old:
            followed = policycmd.refresh(repo)  # valid signed steps from the pin, if any
            reached = followed.current.serial if followed is not None else old
            if reached < loaded.serial:
                raise BadInput(
                    f"{loaded.path} is serial {loaded.serial}, but the pinned policy is serial "
                    f"{reached} and no validly signed policy chain leads to serial "
                    f"{loaded.serial}; not pinned",
                    "have it signed ('git wotr policy propose', then 'git wotr policy sign' by "
                    "the update signers, 'git wotr fetch' to get theirs); to make this file a "
                    f"new root of trust instead, remove {repo.common_dir / 'wotr'} and run "
                    "'git wotr init' again",
                )
            return repo.common_dir / "wotr" / "policy.pin"
        policy.write_pin(repo.common_dir, loaded)
        policycmd.keep_copy(repo, loaded)
    policycmd.refresh(repo)
    return repo.common_dir / "wotr" / "policy.pin"
