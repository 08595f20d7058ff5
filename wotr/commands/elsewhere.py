"""Where claims are when the commit asked about has none: the newest tag whose commit has some.

"no claims on this commit — did you run 'git wotr fetch'?" also appeared when HEAD had only
moved past a signed tag. Bounded work, only on that path: one list of the noted commits (capped
in bytes) and the newest tags (capped in number), two git processes.
"""

from __future__ import annotations

from typing import Any

MAX_TAGS = 500  # the newest tags looked at
MAX_NOTES_LIST = 8 * 1024 * 1024  # bytes of `git notes list` read (~90,000 noted commits)


def tagged_claims(repo: Any, commit: str) -> tuple[str, str] | None:
    """(tag name, commit) of the newest tag, other than at ``commit``, whose commit has a note
    under refs/notes/wotr; None when there is none or it cannot be told cheaply."""
    from ..git import NOTES_REF, run

    notes = run(repo, "notes", f"--ref={NOTES_REF}", "list", max_stdout=MAX_NOTES_LIST)
    if notes.returncode != 0 and not notes.truncated:
        return None
    lines = notes.stdout.decode("ascii", "replace").splitlines()
    if notes.truncated:
        lines = lines[:-1]  # cut mid-line: the noted commits read so far
    noted = {line.split()[-1] for line in lines if line.strip()}
    noted.discard(commit)
    if not noted:
        return None
    tags = run(
        repo,
        "for-each-ref",
        "--sort=-creatordate",
        f"--count={MAX_TAGS}",
        "--format=%(objectname) %(*objectname) %(refname)",
        "refs/tags/",
    )
    if tags.returncode != 0:
        return None
    for line in tags.stdout.decode("utf-8", "surrogateescape").splitlines():
        obj, _, rest = line.partition(" ")
        peeled, _, ref = rest.partition(" ")
        target = peeled or obj  # an annotated tag names its commit through *objectname
        if target in noted:
            return ref.removeprefix("refs/tags/"), target
    return None


def hint(repo: Any, commit: str) -> str:
    """The line a report shows instead of a bare "no claims on this commit"."""
    found = tagged_claims(repo, commit)
    if found is None:
        from ..render import NO_CLAIMS

        return NO_CLAIMS
    tag, at = found
    return f"no claims on this commit; claims exist for {tag} at {at[:12]}: pass --rev {tag}"
