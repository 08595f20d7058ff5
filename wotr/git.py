"""The only module that runs the git program: small functions that turn failures into errors.

Network operations go through the user's own git, so ssh config and credential helpers work
exactly as for ``git push``. Inherited ``GIT_*`` variables are stripped in ``_proc``; every
user-supplied revision is refused if it could be read as an option.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import _proc
from .errors import BadInput, EnvironmentProblem, WotrError

NOTES_REF = "refs/notes/wotr"


class GitError(WotrError):
    """A git command failed; the message carries git's own last line."""


@dataclass(frozen=True)
class Repo:
    git_dir: Path
    common_dir: Path
    top: Path | None  # None for a bare repository

    @property
    def cwd(self) -> Path:
        return self.top or self.git_dir


@dataclass(frozen=True)
class Revision:
    commit: str
    tree: str
    tag: str | None  # full ref name when the revision named a tag, e.g. refs/tags/v1.0
    spelled: str


def run(
    repo: Repo | Path | None,
    *args: str,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
) -> _proc.Result:
    cwd = repo.cwd if isinstance(repo, Repo) else repo
    return _proc.run(["git", *args], cwd=cwd, env=env, input=input)


def check(
    repo: Repo | Path | None,
    *args: str,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    hint: str | None = None,
) -> str:
    """Run git; its stdout (stripped) on success, :class:`GitError` naming the command if not."""
    res = run(repo, *args, env=env, input=input)
    if res.returncode != 0:
        raise GitError(f"git {args[0]} failed: {res.err_line}", hint)
    return res.stdout.decode("utf-8", "surrogateescape").strip()


def open_repo(where: Path | None = None) -> Repo:
    cwd = where or Path.cwd()
    # One process answers all four questions in a work tree (the common case, e.g. verify);
    # in a bare repository --show-toplevel fails after printing the first three answers.
    res = _proc.run(
        [
            "git",
            "rev-parse",
            "--path-format=absolute",
            "--git-dir",
            "--git-common-dir",
            "--is-bare-repository",
            "--show-toplevel",
        ],
        cwd=cwd,
    )
    lines = res.stdout.decode("utf-8", "surrogateescape").splitlines()
    if len(lines) < 3:
        if b"not a git repository" in res.stderr:
            raise BadInput(
                f"{cwd} is not inside a git repository",
                "run wotr from a clone of the project (or use --bundle)",
            )
        raise EnvironmentProblem(f"git does not work here: {res.err_line}")
    git_dir, common, bare = lines[:3]
    top = None
    if bare != "true":
        if res.returncode == 0 and len(lines) >= 4:
            top = Path(lines[3])
        else:
            top = Path(check(cwd, "rev-parse", "--show-toplevel"))  # its error, as git says it
    return Repo(Path(git_dir), Path(common), top)


def _check_rev(rev: str) -> str:
    if not rev or rev.startswith("-") or any(c in rev for c in "\n\r\0"):
        raise BadInput(f"{rev!r} is not a revision", "give a commit, tag or branch name")
    return rev


# Suffixes that name the same commit as what they follow (peeling a tag, zero steps back).
_SAME_COMMIT = re.compile(r"(?:\^\{(?:|commit|tag|object)\}|\^0|~0)+$")


def resolve(repo: Repo, rev: str) -> Revision:
    """Commit, tree and (for a tag) full tag ref of ``rev``; tags are peeled to commits.

    ``v1.0^{}``, ``v1.0^0``, ``v1.0~0`` and ``v1.0^{commit}`` name tag v1.0 too (DESIGN §6
    rule 6 must not be skipped by spelling the tag peeled).
    """
    _check_rev(rev)
    base = _SAME_COMMIT.sub("", rev) or rev
    res = run(
        repo, "rev-parse", f"{rev}^{{commit}}", f"{rev}^{{tree}}", "--symbolic-full-name", base
    )
    lines = res.stdout.decode("utf-8", "surrogateescape").splitlines()
    if res.returncode != 0 or len(lines) < 2:
        raise BadInput(
            f"unknown revision {rev!r} (not a commit in {repo.cwd})",
            "check the name with 'git rev-parse', or fetch it",
        )
    full = lines[2] if len(lines) > 2 else ""
    tag = full if full.startswith("refs/tags/") else None
    return Revision(commit=lines[0], tree=lines[1], tag=tag, spelled=rev)


def head_commit(repo: Repo) -> str | None:
    res = run(repo, "rev-parse", "--verify", "-q", "HEAD^{commit}")
    return res.stdout.decode().strip() if res.returncode == 0 else None


def is_dirty(repo: Repo) -> list[str]:
    """Tracked files with uncommitted changes (staged or not)."""
    if repo.top is None:
        return []
    out = check(repo, "status", "--porcelain=v1", "-z", "--untracked-files=no")
    return [entry[3:] for entry in out.split("\0") if len(entry) > 3]


def config_get(repo: Repo | None, key: str) -> str | None:
    res = run(repo, "config", "--get", key)
    return (
        res.stdout.decode("utf-8", "surrogateescape").strip() or None
        if res.returncode == 0
        else None
    )


def tags_at(repo: Repo, commit: str) -> list[str]:
    out = check(repo, "tag", "--points-at", commit)
    return [t for t in out.splitlines() if t]


def identity_env(repo: Repo) -> dict[str, str]:
    """Committer identity for notes commits: the user's, else a clearly-labelled fallback."""
    env: dict[str, str] = {}
    if not (os.environ.get("GIT_COMMITTER_NAME") or config_get(repo, "user.name")):
        env["GIT_COMMITTER_NAME"] = env["GIT_AUTHOR_NAME"] = "wotr"
    if not (os.environ.get("GIT_COMMITTER_EMAIL") or config_get(repo, "user.email")):
        env["GIT_COMMITTER_EMAIL"] = env["GIT_AUTHOR_EMAIL"] = "wotr@localhost"
    return env
