"""Sharing claims through git remotes (DESIGN §3). Placeholder until the sync work lands."""

from __future__ import annotations

from . import git


def fetch_refspec(remote: str) -> str:
    return f"+{git.NOTES_REF}:refs/notes/remotes/{remote}/wotr"


def setup_remotes(repo: git.Repo) -> tuple[str, ...]:
    """Add the notes fetch refspec to every remote (never touching its push refspecs)."""
    out = git.check(repo, "remote")
    done = []
    for remote in (r for r in out.splitlines() if r):
        spec = fetch_refspec(remote)
        have = git.run(repo, "config", "--get-all", f"remote.{remote}.fetch").stdout.decode()
        if spec not in have.splitlines():
            git.check(repo, "config", "--add", f"remote.{remote}.fetch", spec)
        done.append(remote)
    return tuple(done)


def push(repo: git.Repo, remote: str) -> None:
    raise NotImplementedError("sync is being written")
