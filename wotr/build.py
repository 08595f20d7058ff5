"""``build``: rebuild a commit in a fresh checkout, hash the artifacts, compare with the note.

The rebuilder's whole job in one call. Nothing here touches the user's working tree, index,
HEAD or stash:

- The source is checked out with a *temporary index* (``GIT_INDEX_FILE``) by ``git read-tree``
  and ``git checkout-index`` into a directory of our own. Both only read the object database;
  no object, ref, index, worktree entry or lock is written under ``.git`` (``git worktree add``
  would register the worktree, a clone would copy the history, ``git archive`` would apply
  ``export-ignore``/``export-subst`` and so build something other than the commit's tree).
  Settings that would make git write beside the temporary index (split index, sparse index,
  fsmonitor, untracked cache) or change file bytes per user (autocrlf) are switched off.
- The build path is fixed: ``<build root>/<first 12 hex of the commit>``, by default
  ``/tmp/wotr-build/<commit12>``, the same on every machine, so a build that embeds its own
  path (debug info, ``__FILE__``) still reproduces. The price is that two builds of one commit
  would collide: a per-commit ``flock`` makes the second one fail at once (exit 3) instead of
  sharing a directory, and a directory left by a killed build is removed by the next one. The
  root must be a directory of the current user that nobody else can write to.
- The environment is normalised: ``SOURCE_DATE_EPOCH`` (committer time), ``TZ=UTC``,
  ``LC_ALL=C.UTF-8``, ``umask 022``, source mtimes set to ``SOURCE_DATE_EPOCH``, a private
  ``TMPDIR`` and only a few inherited variables (``PATH``, ``HOME``, proxies, ...).
- The artifacts are copied out before the checkout is removed (by default to
  ``.git/wotr/builds/<commit>/``, wotr's own area beside the pinned policy) and hashed as they
  are copied. ``--sign`` signs exactly those digests for exactly the commit resolved at the
  start (a branch, HEAD or tag that moves meanwhile changes nothing; a moved tag or a changed
  copy is refused before the note is touched). The checkout is removed on success, failure, Ctrl-C,
  SIGTERM and SIGHUP.

The checkout, its environment and the running command live in :mod:`wotr._workspace`.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import tomllib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from . import claim as claim_mod
from . import git, hashing, notes
from ._record import record
from ._workspace import (
    Interrupted,
    Output,
    build_env,
    checkout,
    commit_time,
    interruptible,
    remove_tree,
    run_command,
    workspace,
)
from .errors import BadInput, SignError
from .policy import Policy

if TYPE_CHECKING:
    from .sign import Signed

RECIPE_FILE = "wotr.toml"
DEFAULT_ROOT = Path("/tmp/wotr-build")
UNCHECKED = "signature not checked: no policy"  # verify.check_note's reason


class BuildFailed(BadInput):
    """The build command exited non-zero (exit 2); ``tail`` holds its last lines of output."""

    def __init__(self, message: str, hint: str | None, tail: Sequence[str], shown: bool) -> None:
        super().__init__(message, hint)
        self.tail = tuple(tail)
        self.shown = shown  # the output was already streamed to the user


# --- the recipe -----------------------------------------------------------------------------


@record
class Recipe:
    command: tuple[str, ...]
    artifacts: tuple[str, ...]
    source: str  # where it came from, for messages


def _check_globs(globs: Sequence[str], where: str) -> tuple[str, ...]:
    for pattern in globs:
        parts = PurePosixPath(pattern).parts
        if not pattern or pattern.startswith("/") or ".." in parts or "\0" in pattern:
            raise BadInput(
                f"{where}: artifact glob {pattern!r} must be a relative path inside the checkout",
                "e.g. 'dist/*.tar.gz'",
            )
    return tuple(globs)


def parse_recipe(data: bytes, where: str) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """``(command, artifacts)`` from wotr.toml bytes; either may be None when not given."""
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(f"{where}: not valid TOML: {exc}") from exc
    unknown = set(doc) - {"build"}
    if unknown:
        raise BadInput(f"{where}: unknown field {sorted(unknown)[0]!r}", "see wotr.example.toml")
    table = doc.get("build")
    if table is None:
        return None, None
    if not isinstance(table, dict):
        raise BadInput(f"{where}: build must be a table ([build])")
    unknown = set(table) - {"command", "artifacts"}
    if unknown:
        raise BadInput(
            f"{where}: unknown field build.{sorted(unknown)[0]}",
            "[build] takes only command and artifacts (see docs/build.md)",
        )
    out: list[tuple[str, ...] | None] = []
    for name in ("command", "artifacts"):
        value = table.get(name)
        if value is None:
            out.append(None)
            continue
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) and v for v in value)
        ):
            example = '["make", "dist"]' if name == "command" else '["dist/*.tar.gz"]'
            raise BadInput(
                f"{where}: build.{name} must be a non-empty list of non-empty strings",
                f"e.g. {name} = {example}"
                + ("; for a shell line use ['sh', '-c', '...']" if name == "command" else ""),
            )
        out.append(tuple(value))
    command, artifacts = out
    if artifacts is not None:
        _check_globs(artifacts, where)
    return command, artifacts


def read_recipe_file(repo: git.Repo, commit: str) -> bytes | None:
    """wotr.toml as committed in ``commit`` (never the working tree's); None if absent."""
    spec = f"{commit}:{RECIPE_FILE}"
    res = git.run(repo, "cat-file", "-t", spec)
    if res.returncode != 0:
        return None
    kind = res.stdout.decode().strip()
    if kind != "blob":
        raise BadInput(f"{RECIPE_FILE} in commit {commit[:12]} is a {kind}, not a file")
    blob = git.run(repo, "cat-file", "blob", spec)
    if blob.returncode != 0:
        raise git.GitError(f"cannot read {RECIPE_FILE} from {commit[:12]}: {blob.err_line}")
    return blob.stdout


def recipe(repo: git.Repo, commit: str, command: Sequence[str], artifacts: Sequence[str]) -> Recipe:
    """The command line wins field by field; the rest comes from the commit's wotr.toml."""
    where = f"{RECIPE_FILE} in commit {commit[:12]}"
    file_command: tuple[str, ...] | None = None
    file_artifacts: tuple[str, ...] | None = None
    if not command or not artifacts:
        data = read_recipe_file(repo, commit)
        if data is not None:
            file_command, file_artifacts = parse_recipe(data, where)
    chosen_command = tuple(command) or file_command
    chosen_artifacts = _check_globs(artifacts, "--artifact") or file_artifacts
    if not chosen_command:
        raise BadInput(
            f"no build command: none after '--' and no build.command in {where}",
            "run 'git wotr build -- make dist' or add a [build] table (see docs/build.md)",
        )
    if not chosen_artifacts:
        raise BadInput(
            f"no artifacts to hash: no --artifact and no build.artifacts in {where}",
            "pass --artifact 'dist/*.tar.gz' or add it to [build] (see docs/build.md)",
        )
    source = (
        "command line"
        if command and artifacts
        else where
        if not command and not artifacts
        else f"command line and {where}"
    )
    return Recipe(chosen_command, chosen_artifacts, source)


# --- artifacts ------------------------------------------------------------------------------


def find_artifacts(src: Path, globs: Sequence[str]) -> list[Path]:
    """Regular files inside ``src`` matched by ``globs``; each glob must match one."""
    found: dict[Path, None] = {}
    real_src = src.resolve()
    for pattern in globs:
        matched = [
            p
            for p in sorted(src.glob(pattern))
            if p.is_file() and p.resolve().is_relative_to(real_src)
        ]
        if not matched:
            parent = (src / pattern).parent
            while not parent.is_dir() and parent != src:
                parent = parent.parent
            there = sorted(p.name + ("/" if p.is_dir() else "") for p in parent.iterdir())[:8]
            rel = parent.relative_to(src).as_posix()
            raise BadInput(
                f"artifact glob {pattern!r} matched no file after the build",
                f"{rel}/ holds: {', '.join(there) or 'nothing'}"
                if rel != "."
                else f"the top holds: {', '.join(there) or 'nothing'}",
            )
        for p in matched:
            found.setdefault(p, None)
    paths = list(found)
    names = [p.name for p in paths]
    for p in paths:
        try:
            claim_mod.check_artifact_name(p.name)
        except claim_mod.ClaimError as exc:
            raise BadInput(f"artifact {p.relative_to(src)}: {exc}") from exc
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        clash = [str(p.relative_to(src)) for p in paths if p.name == dup[0]]
        raise BadInput(
            f"two artifacts share the name {dup[0]!r} ({', '.join(clash)})",
            "a claim names artifacts by file name; make the globs pick one of them",
        )
    return paths


def default_out(repo: git.Repo, commit: str) -> Path:
    return repo.common_dir / "wotr" / "builds" / commit


def _copy_hashed(src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst``; the sha256 of exactly the bytes written (one read)."""
    h = hashlib.sha256()
    with open(src, "rb", buffering=0) as fin, open(dst, "wb", buffering=0) as fout:
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while n := fin.readinto(buf):
            h.update(view[:n])
            fout.write(view[:n])
    return h.hexdigest()


def keep(paths: Sequence[Path], out: Path, *, replace: bool) -> list[tuple[Path, str]]:
    """Copy the artifacts to ``out`` (each file written atomically): (copy, sha256) of each.

    The digest is taken of the bytes as they are copied, so what is reported (and signed) is
    what the build produced, whatever later happens to the copy in ``out``.
    """
    if replace:
        remove_tree(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        copies = []
        for path in paths:
            target = out / path.name
            partial = out / f".{path.name}.wotr-partial"
            digest = _copy_hashed(path, partial)
            os.replace(partial, target)
            copies.append((target, digest))
    except OSError as exc:
        raise BadInput(
            f"cannot keep the artifacts in {out}: {exc.strerror}", "pass --out DIR"
        ) from exc
    return copies


# --- the whole build ------------------------------------------------------------------------


@record
class Artifact:
    name: str
    path: Path  # the kept copy
    built_as: str  # path relative to the checkout
    sha256: str


@record
class Built:
    commit: str
    tree: str
    tag: str | None
    rev: str
    recipe: Recipe
    build_path: Path
    epoch: int
    seconds: float
    out: Path
    artifacts: tuple[Artifact, ...]


def build(
    repo: git.Repo,
    *,
    rev: str = "HEAD",
    command: Sequence[str] = (),
    artifacts: Sequence[str] = (),
    root: Path = DEFAULT_ROOT,
    out: Path | None = None,
    output: Output | None = None,
) -> Built:
    """Check out ``rev`` at the fixed build path, run the recipe, keep and hash the artifacts."""
    revision = git.resolve(repo, rev)
    chosen = recipe(repo, revision.commit, command, artifacts)
    epoch = commit_time(repo, revision.commit)
    output = output or Output()
    old_umask = os.umask(0o022)
    try:
        with interruptible(), workspace(root, revision.commit) as ws:
            checkout(repo, revision.commit, ws, epoch)
            status, tail, seconds = run_command(
                chosen.command, ws.src, build_env(ws, epoch), output
            )
            if status != 0:
                why = f"signal {-status}" if status < 0 else f"exit status {status}"
                raise BuildFailed(
                    f"the build command failed with {why}: {shlex.join(chosen.command)} "
                    f"(recipe from {chosen.source}, built in {ws.src})",
                    "nothing was signed; fix the recipe or the build and try again",
                    tail,
                    shown=output.stream is not None,
                )
            found = find_artifacts(ws.src, chosen.artifacts)
            target = out if out is not None else default_out(repo, revision.commit)
            copies = keep(found, target, replace=out is None)
            build_path = ws.src
    finally:
        os.umask(old_umask)
    return Built(
        commit=revision.commit,
        tree=revision.tree,
        tag=revision.tag,
        rev=rev,
        recipe=chosen,
        build_path=build_path,
        epoch=epoch,
        seconds=seconds,
        out=target,
        artifacts=tuple(
            Artifact(c.name, c, f.relative_to(build_path).as_posix(), d)
            for f, (c, d) in zip(found, copies, strict=True)
        ),
    )


# --- signing what was built -----------------------------------------------------------------


def _still_as_built(repo: git.Repo, built: Built) -> None:
    """Refuse (before anything is written) when what is about to be signed is no longer
    what was built and reported: the tag moved, or a kept artifact changed."""
    if built.tag is not None:
        res = git.run(
            repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{built.tag}^{{commit}}"
        )
        now = res.stdout.decode("ascii", "replace").strip() if res.returncode == 0 else ""
        if now != built.commit:
            tag = built.tag.removeprefix("refs/tags/")
            where = f"now points at {now[:12]}" if now else "is gone"
            raise SignError(
                f"tag {tag} {where}, but {built.commit[:12]} was built: nothing was signed",
                f"build the tag again, or sign the commit with --rev {built.commit}",
            )
    paths = [a.path for a in built.artifacts]
    try:
        now_digests = hashing.sha256_files(paths)
    except BadInput as exc:
        raise SignError(f"a kept artifact is gone or unreadable: {exc.message}") from exc
    for art, digest in zip(built.artifacts, now_digests, strict=True):
        if digest != art.sha256:
            raise SignError(
                f"the kept artifact {art.path} changed after it was built "
                f"(built sha256:{art.sha256}, now sha256:{digest}): nothing was signed",
                "something else writes to that directory; build again with --out DIR",
            )


def sign_built(
    repo: git.Repo,
    built: Built,
    *,
    role: str | None = None,
    key: str | None = None,
    policy: Policy | None = None,
) -> Signed:
    """Sign exactly what ``build`` reported: its commit (resolved once, never again), its
    tag (refused if the tag moved meanwhile) and its digests (refused, with the note as it
    was, if a kept copy changed since). ``policy``: refuse a claim it would not count."""
    from . import sign as sign_mod

    revision = git.Revision(commit=built.commit, tree=built.tree, tag=built.tag, spelled=built.rev)
    return sign_mod.sign(
        repo,
        [a.path for a in built.artifacts],
        rev=built.commit,
        role=role,
        key=key,
        allow_dirty=True,  # the artifacts come from a clean checkout, not the working tree
        revision=revision,
        digests=[a.sha256 for a in built.artifacts],
        before_append=lambda: _still_as_built(repo, built),
        policy=policy,
    )


# --- comparing with the note ----------------------------------------------------------------


@record
class Other:
    """One earlier claim's digest for an artifact name."""

    who: str  # signer name, or "key <hint> (signature not checked)"
    role: str
    sha256: str

    @property
    def label(self) -> str:
        return f"{self.who} ({self.role})"


@record
class Verdict:
    artifact: Artifact
    same: tuple[Other, ...]
    different: tuple[Other, ...]
    compare: tuple[str, ...] = ()  # diffoscope command lines


@record
class Comparison:
    checked: bool  # signatures were checked against a policy
    policy: Path | None
    verdicts: tuple[Verdict, ...]
    not_built: tuple[tuple[str, tuple[Other, ...]], ...] = ()  # claimed names we did not make
    uncounted: int = 0  # note lines that do not count under the policy
    note_lines: int = 0
    no_policy_reason: str = ""
    diffoscope_missing: bool = False

    @property
    def differs(self) -> bool:
        return any(v.different for v in self.verdicts)


def _others(
    repo: git.Repo, built: Built, policy: Policy | None
) -> tuple[list[tuple[str, Other]], int, int]:
    """(artifact name, claim) for each earlier claim; lines that do not count; note lines."""
    from . import verify

    note = notes.read(repo, built.commit)
    # tag=None: any claim on this commit and tree is a fair comparison, whatever ref it names.
    counted, rejected, lines, count = verify.check_note(
        policy, note, verify.Context(built.commit, built.tree, None)
    )
    others: list[tuple[str, Other]] = []
    if policy is not None:
        for c in counted:
            others += [(s.name, Other(c.signer, c.claim.role, s.sha256)) for s in c.claim.subjects]
        return others, len(rejected), count
    unchecked = 0
    for ln in lines:
        if ln.claim is None or ln.reason != UNCHECKED:
            continue
        unchecked += 1
        who = f"key {ln.keyid[-16:] or '?'} (signature not checked)"
        others += [(s.name, Other(who, ln.claim.role, s.sha256)) for s in ln.claim.subjects]
    return others, len(lines) - unchecked, count


def compare(
    repo: git.Repo,
    built: Built,
    policy: Policy | None,
    *,
    no_policy_reason: str = "",
    compare_dir: Path | None = None,
) -> Comparison:
    """Every built artifact against every earlier claim on the commit (one per signer+digest)."""
    raw, uncounted, note_lines = _others(repo, built, policy)
    by_name: dict[str, dict[tuple[str, str, str], Other]] = {}
    for name, o in raw:
        by_name.setdefault(name, {})[(o.who, o.role, o.sha256)] = o
    diffoscope = shutil.which("diffoscope")
    verdicts = []
    for art in built.artifacts:
        claims = sorted(by_name.get(art.name, {}).values(), key=lambda o: (o.who, o.role))
        same = tuple(o for o in claims if o.sha256 == art.sha256)
        different = tuple(o for o in claims if o.sha256 != art.sha256)
        commands: list[str] = []
        if different and diffoscope:
            commands = _diffoscope_lines(repo, art, different, compare_dir)
        verdicts.append(Verdict(art, same, different, tuple(commands)))
    built_names = {a.name for a in built.artifacts}
    not_built = tuple(
        (name, tuple(sorted(v.values(), key=lambda o: o.who)))
        for name, v in sorted(by_name.items())
        if name not in built_names
    )
    return Comparison(
        checked=policy is not None,
        policy=policy.path if policy is not None else None,
        verdicts=tuple(verdicts),
        not_built=not_built,
        uncounted=uncounted,
        note_lines=note_lines,
        no_policy_reason=no_policy_reason,
        diffoscope_missing=diffoscope is None and any(v.different for v in verdicts),
    )


def _diffoscope_lines(
    repo: git.Repo, art: Artifact, different: Sequence[Other], compare_dir: Path | None
) -> list[str]:
    """A diffoscope command for each local copy of the other side's artifact we can find."""
    candidates: list[Path] = []
    if compare_dir is not None:
        candidates.append(compare_dir / art.name)
    if repo.top is not None:
        candidates += [repo.top / art.built_as, repo.top / "dist" / art.name]
    theirs = {o.sha256: o for o in different}
    lines: list[str] = []
    seen: set[Path] = set()
    for cand in candidates:
        real = cand.resolve()
        if real in seen or not cand.is_file():
            continue
        seen.add(real)
        digest = hashing.sha256_file(cand)
        if digest in theirs:
            lines.append(
                f"diffoscope {shlex.quote(str(cand))} {shlex.quote(str(art.path))}"
                f"   # {theirs[digest].label}'s digest vs yours"
            )
    return lines


# --- text for a person ----------------------------------------------------------------------


def _short(hexdigest: str) -> str:
    return f"sha256:{hexdigest[:16]}…"


def comparison_text(built: Built, comp: Comparison) -> list[str]:
    out: list[str] = []
    if not comp.checked:
        why = comp.no_policy_reason or "no policy"
        out.append(
            f"note: {why}: comparing with every well-formed claim on the commit, "
            "but their signatures were NOT checked"
        )
    width = max(len(a.name) for a in built.artifacts)
    for v in comp.verdicts:
        head = f"{v.artifact.name:<{width}}  "
        if not v.same and not v.different:
            out.append(f"{head}no earlier claim to compare with ({_short(v.artifact.sha256)})")
            continue
        if v.same:
            who = ", ".join(o.label for o in v.same)
            out.append(f"{head}reproduced: same digest as {who}")
            head = " " * len(head)
        for o in v.different:
            out.append(
                f"{head}DIFFERS from {o.label}: yours sha256:{v.artifact.sha256} "
                f"theirs sha256:{o.sha256}"
            )
            head = " " * len(head)
        for line in v.compare:
            out.append(f"{' ' * (width + 2)}compare: {line}")
    for name, others in comp.not_built:
        who = ", ".join(o.label for o in others)
        out.append(f"not built here: {name} (claimed by {who})")
    if comp.diffoscope_missing:
        out.append("hint: install diffoscope to see where the artifacts differ")
    if comp.uncounted:
        what = "do not count under the policy" if comp.checked else "are not well-formed claims"
        out.append(
            f"note: {comp.uncounted} line(s) of the note {what} (see 'git wotr show --rev "
            f"{built.commit[:12]}')"
        )
    return out


def summary_text(built: Built, comp: Comparison) -> list[str]:
    where = built.tag.removeprefix("refs/tags/") + " " if built.tag else ""
    out = [
        f"built {where}{built.commit[:12]} in {built.seconds:.1f}s at {built.build_path} "
        f"(SOURCE_DATE_EPOCH={built.epoch}; recipe from {built.recipe.source})",
        f"artifacts kept in {built.out}/",
    ]
    for a in built.artifacts:
        out.append(f"  {a.name}  sha256:{a.sha256}")
    n = len(comp.verdicts)
    differ = sum(1 for v in comp.verdicts if v.different)
    same = sum(1 for v in comp.verdicts if v.same and not v.different)
    if differ:
        out.append(f"result: DIFFERS ({differ} of {n} artifact(s) differ from an earlier claim)")
    elif same:
        out.append(
            f"result: reproduced ({same} of {n} artifact(s) match earlier claims"
            + (", the rest had none)" if same < n else ")")
        )
    else:
        out.append("result: no earlier claims to compare with")
    return out


__all__ = [
    "DEFAULT_ROOT",
    "BuildFailed",
    "Built",
    "Comparison",
    "Interrupted",
    "Output",
    "Recipe",
    "build",
    "compare",
    "comparison_text",
    "parse_recipe",
    "sign_built",
    "summary_text",
]
