"""The only module that runs the git program: small functions that turn failures into errors.

Every git process wotr starts sees the object graph as it really is and runs no program a
repository's config chooses (see :func:`_argv`/:func:`_env`, docs/threat-model.md "The
repository's surroundings"): no replace refs, no grafts, no hooks, no fsmonitor, no lazy fetch
from a promisor remote. Network operations (fetch, push) go through the user's own git, so ssh
config, credential helpers and hooks work exactly as for ``git push``. The repository is the one
the user named (``git --git-dir``/``-C``/``--work-tree``, ``GIT_DIR``…) or git's discovery found
from the working directory, where a bare repository git finds by itself is refused unless the
user's own config allows it (``safe.bareRepository``). Every user-supplied revision is refused if
it could be read as an option.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from . import _proc
from ._record import record
from .errors import BadInput, EnvironmentProblem, PolicyError, WotrError

NOTES_REF = "refs/notes/wotr"

# Given on every git command line (``git -c``): a command-line setting wins over every config file
# and over the user's own ``git -c`` (which git hands wotr in GIT_CONFIG_PARAMETERS, read first).
# - Replace refs: git 2.39 lets a repository's ``core.useReplaceRefs = true`` override
#   GIT_NO_REPLACE_OBJECTS and even ``--no-replace-objects``; only this setting wins over it.
# - core.fsmonitor names a program that ``git status`` (sign) would run.
_FORCED = ("core.useReplaceRefs=false", "core.fsmonitor=false")
# Also for every command that is not the user's own fetch or push: no hooks (reference-transaction,
# post-index-change), no automatic gc or maintenance, no colours or columns in parsed output.
_OFFLINE = (
    f"core.hooksPath={os.devnull}",
    "gc.auto=0",
    "maintenance.auto=false",
    "color.ui=false",
    "column.ui=never",
)
_NETWORK = frozenset({"fetch", "push", "ls-remote"})
# GIT_ALLOW_PROTOCOL names the only transports git may use, whatever any config says (also for
# the ``git fetch`` a partial clone starts to get a missing object): none, outside fetch/push.
NO_PROTOCOL = "wotr-allows-no-transport-here"


def _argv(args: tuple[str, ...] | list[str]) -> list[str]:
    network = bool(args) and args[0] in _NETWORK
    out = ["git"]
    for setting in _FORCED if network else (*_FORCED, *_OFFLINE):
        out += ["-c", setting]
    return [*out, *args]


def _env(
    repo: Repo | Path | None, args: tuple[str, ...] | list[str], extra: dict[str, str] | None
) -> dict[str, str]:
    """What wotr forces in a git process's environment (on top of ``_proc.clean_env``)."""
    env = {
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_GRAFT_FILE": os.devnull,  # info/grafts: another parent list for a commit id
        "GIT_PAGER": "cat",
    }
    if not (args and args[0] in _NETWORK):
        env["GIT_ALLOW_PROTOCOL"] = NO_PROTOCOL
    for name in ("GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY"):  # the user's, relative to their cwd
        value = os.environ.get(name)
        if value and not os.path.isabs(value):
            env[name] = os.path.abspath(value)
    if isinstance(repo, Repo):
        # The repository found once, named to every later process: no second discovery.
        env["GIT_DIR"] = str(repo.git_dir)
        if repo.top is not None:
            env["GIT_WORK_TREE"] = str(repo.top)
    if extra:
        env.update(extra)
    return env


def command(repo: Repo, *args: str) -> tuple[list[str], dict[str, str]]:
    """The argv and the full environment of a git process that a caller starts itself (a
    streaming reader): the same forced settings as :func:`run`, never a bare ``["git", …]``."""
    return _argv(args), _proc.clean_env(_env(repo, args, None))


class GitError(WotrError):
    """A git command failed; the message carries git's own last line."""


@record
class Repo:
    git_dir: Path
    common_dir: Path
    top: Path | None  # None for a bare repository
    # False for a bare repository that git's discovery found by itself (the user named none):
    # a project's files can look like one, so its own config chooses nothing (no wotr.policy).
    config_trusted: bool = True

    @property
    def cwd(self) -> Path:
        return self.top or self.git_dir


@record
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
    max_stdout: int | None = None,
) -> _proc.Result:
    cwd = repo.cwd if isinstance(repo, Repo) else repo
    return _proc.run(
        _argv(args), cwd=cwd, env=_env(repo, args, env), input=input, max_stdout=max_stdout
    )


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


class NotARepository(BadInput):
    """The working directory is in no git repository (wotr may then work offline)."""


_DISCOVER = (
    "rev-parse",
    "--path-format=absolute",
    "--git-dir",
    "--git-common-dir",
    "--is-bare-repository",
    "--show-toplevel",
)
_IMPLICIT_BARE = rb"cannot use bare repository '(.*)' \(safe\.bareRepository"  # errors only


def open_repo(where: Path | None = None) -> Repo:
    """The repository the user means: the one named by what git hands its subcommands
    (``GIT_DIR``, ``GIT_WORK_TREE``, … from ``git --git-dir``, ``--work-tree``, ``-C``), else
    the one git's discovery finds from ``where`` (default: the working directory).

    A bare repository that discovery finds by itself is refused as git does with
    ``safe.bareRepository=explicit`` (a project can commit files that look like one), unless it
    is a ``.git`` directory or the user's own config sets ``safe.bareRepository = all``; even
    then its config chooses no policy (``Repo.config_trusted``).
    """
    cwd = where or Path.cwd()
    explicit = bool(os.environ.get("GIT_DIR"))
    # One process answers all four questions in a work tree (the common case, e.g. verify);
    # in a bare repository --show-toplevel fails after printing the first three answers.
    res = _discover(cwd, "explicit")
    trusted = True
    refused = re.search(_IMPLICIT_BARE, res.stderr) if res.returncode != 0 else None
    if refused is not None:
        path = refused.group(1).decode("utf-8", "surrogateescape")
        if _dot_git(path):
            res = _discover(cwd, "all")  # the .git of a clone (wotr run from inside it)
        elif _user_allows_bare():
            res, trusted = _discover(cwd, "all"), False
        else:
            raise BadInput(
                f"{path} looks like a bare git repository that git found by itself; "
                "a project's files can look like one, so wotr does not use it",
                f"name it if you mean it: git --git-dir={path} wotr … (or cd elsewhere)",
            )
    lines = res.stdout.decode("utf-8", "surrogateescape").splitlines()
    if len(lines) < 3:
        if b"not a git repository" in res.stderr:
            raise NotARepository(
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
    elif not explicit and not _dot_git(git_dir):
        trusted = False
    return Repo(Path(git_dir), Path(common), top, trusted)


def _discover(cwd: Path, bare: str) -> _proc.Result:
    args = ("-c", f"safe.bareRepository={bare}", *_DISCOVER)
    return _proc.run(_argv(args), cwd=cwd, env=_env(None, _DISCOVER, None))


def _dot_git(path: str) -> bool:
    """Is this the git directory of a clone (``…/.git``, a linked worktree's or a submodule's)?
    Never a project's content: git refuses to check out a path with a ``.git`` component."""
    parts = Path(path).parts
    return ".git" in parts and parts.index(".git") in (
        len(parts) - 1,
        len(parts) - 3,  # .git/worktrees/NAME, .git/modules/NAME
    )


_USER_SCOPES = frozenset({"system", "global", "command"})


def _config_values(repo: Repo | Path | None, key: str) -> list[tuple[str, str, str]]:
    """(scope, origin, value) of every setting of ``key``, in git's order (the last one wins).

    The origin is as git names it: ``file:PATH`` (relative to the process's directory),
    ``command line:``, …"""
    res = run(repo, "config", "-z", "--show-scope", "--show-origin", "--get-all", key)
    if res.returncode != 0:
        return []
    items = res.stdout.decode("utf-8", "surrogateescape").split("\0")
    return list(zip(items[0:-1:3], items[1::3], items[2::3], strict=False))


def _user_allows_bare() -> bool:
    """Does the user's own config (not a repository's) set ``safe.bareRepository = all``?"""
    # asked from "/", not from inside the repository in question (its config is not the user's)
    values = [
        v
        for scope, _, v in _config_values(Path("/"), "safe.bareRepository")
        if scope in _USER_SCOPES
    ]
    return bool(values) and values[-1].strip().lower() == "all"


def policy_setting(repo: Repo) -> str | None:
    """``wotr.policy`` from the config scopes that may choose the policy (DESIGN §5): the user's
    own (system, global, ``git -c``), and the repository's (local, worktree) only when
    ``repo.config_trusted``; never a value from a file of the working tree (a config that
    includes the project's own ``.gitconfig``). Nothing a project's files can contain is read."""
    allowed = _USER_SCOPES | ({"local", "worktree"} if repo.config_trusted else frozenset())
    values = [
        v.strip()
        for scope, origin, v in _config_values(repo, "wotr.policy")
        if scope in allowed and not _in_work_tree(repo, origin)
    ]
    value = (values[-1] or None) if values else None
    if value is not None and not os.path.isabs(os.path.expanduser(value)):
        # relative to the working directory, which may be a folder of the project's own files
        raise PolicyError(
            f"git config wotr.policy is a relative path ({value!r}): it would name another "
            "file in each folder wotr runs from, such as one the project ships",
            "set an absolute path (or ~/…): git config wotr.policy /path/to/threshold.toml",
        )
    return value


def _in_work_tree(repo: Repo, origin: str) -> bool:
    """Is this config origin a file the repository tracks (a project's own ``.gitconfig`` that
    a config includes)? Its git directories and untracked files (the user's own
    ``~/.gitconfig`` in a home-directory repository) are not."""
    if not origin.startswith("file:"):
        return False
    path = os.path.realpath(os.path.join(repo.cwd, origin[len("file:") :]))

    def inside(directory: Path) -> bool:
        real = os.path.realpath(directory)
        return os.path.commonpath([path, real]) == real

    if inside(repo.git_dir) or inside(repo.common_dir):
        return False
    if repo.top is None or not inside(repo.top):
        # Another worktree of this repository (the main one, seen from a linked worktree, whose
        # .git/config includes ../.gitconfig): its files are the project's, tracked or not.
        return any(inside(other) for other in _worktrees(repo))
    rel = os.path.relpath(path, os.path.realpath(repo.top))
    res = run(repo, "ls-files", "-z", "--", f":(literal){rel}")
    return res.returncode != 0 or bool(res.stdout)  # unknown counts as the project's


def _worktrees(repo: Repo) -> list[Path]:
    """The work trees of the repository (``git worktree list``); bare entries have none."""
    res = run(repo, "worktree", "list", "--porcelain", "-z")
    out, current, bare = [], "", False
    for field in [*res.stdout.decode("utf-8", "surrogateescape").split("\0"), ""]:
        if field.startswith("worktree "):
            current, bare = field[len("worktree ") :], False
        elif field == "bare":
            bare = True
        elif not field and current:
            if not bare:
                out.append(Path(current))
            current = ""
    return out


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
    if not all(_OBJECT_ID.fullmatch(line) for line in lines[:2]) or ".." in rev:
        raise BadInput(
            f"{rev!r} is not one revision (a range?)",
            "give one commit, tag or branch name",
        )
    full = lines[2] if len(lines) > 2 else ""
    # git followed a symbolic ref when it names none of the names its lookup rules give:
    # refs/tags/v1.0 -> refs/tags/v0.9 (or a branch) in a handed-over .git would make the old
    # release's claims count for --rev v1.0.
    symbolic = full and base not in ("HEAD", "@") and full not in _expansions(base)
    if symbolic and _tag_commit(repo, base) is not None:
        raise BadInput(
            f"tag {base!r} is a symbolic ref (to {full}); a tag must name its own commit",
            f"check it with 'git symbolic-ref {_tag_ref(base)}', or give a commit id",
        )
    if not full:
        # git names no ref for this spelling. Two cases must not skip rule 6:
        # - an ambiguous name (tag v1.0 and a branch v1.0): git still resolves it, to the tag;
        # - a spelling that starts at a tag and lands on the tagged commit itself, such as
        #   v1.0^{/} (the newest commit whose message matches nothing in particular).
        if _tag_commit(repo, base) is not None:
            raise BadInput(
                f"{base!r} names a tag and another ref (a branch?) at once",
                f"say which: --rev refs/tags/{base} or --rev refs/heads/{base}",
            )
        for start in _starts(base):  # the longest tag the spelling starts from
            tagged = _tag_commit(repo, start)
            if tagged is not None:
                if tagged == lines[0]:
                    full = _tag_ref(start)
                break
    tag = full if full.startswith("refs/tags/") else None
    return Revision(commit=lines[0], tree=lines[1], tag=tag, spelled=rev)


_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")

# Where git's navigation syntax may begin after a ref name (a ref name may itself hold '@',
# '{' and '}', but never '^', '~', ':' or '@{').
_NAVIGATION = re.compile(r"\^|~|:|@\{")


def _starts(spelling: str) -> list[str]:
    """The prefixes of ``spelling`` that end where navigation may begin, longest first."""
    cuts = {m.start() for m in _NAVIGATION.finditer(spelling)}
    return [spelling[:i] for i in sorted(cuts, reverse=True) if i > 0]


def _expansions(name: str) -> tuple[str, ...]:
    """The full ref names git tries for ``name``, in its order (refs.c ref_rev_parse_rules)."""
    return (
        name,
        f"refs/{name}",
        f"refs/tags/{name}",
        f"refs/heads/{name}",
        f"refs/remotes/{name}",
        f"refs/remotes/{name}/HEAD",
    )


def _tag_ref(name: str) -> str:
    return name if name.startswith("refs/tags/") else f"refs/tags/{name.removeprefix('tags/')}"


def _tag_commit(repo: Repo, name: str) -> str | None:
    """The commit tag ``name`` points at, or None when there is no such tag (or ``name`` is
    no plain ref name). Only asked when git named no ref for a spelling."""
    if not name or _NAVIGATION.search(name):
        return None
    res = run(
        repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{_tag_ref(name)}^{{commit}}"
    )
    out = res.stdout.decode("ascii", "replace").strip()
    return out if res.returncode == 0 and out else None


def head_commit(repo: Repo) -> str | None:
    res = run(repo, "rev-parse", "--verify", "-q", "HEAD^{commit}")
    return res.stdout.decode().strip() if res.returncode == 0 else None


def is_dirty(repo: Repo) -> list[str]:
    """Tracked files with uncommitted changes (staged or not)."""
    if repo.top is None:
        return []
    res = run(repo, "status", "--porcelain=v1", "-z", "--untracked-files=no")
    if res.returncode != 0:
        raise GitError(f"git status failed: {res.err_line}")
    return status_paths(res.stdout)


def status_paths(out: bytes) -> list[str]:
    """The paths of ``git status --porcelain=v1 -z``: records ``XY path``, and after a rename or
    copy (X is R or C) one more field, the path it came from. Not stripped: X may be a space."""
    fields = out.split(b"\0")
    paths = []
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        paths.append(entry[3:].decode("utf-8", "surrogateescape"))
        if entry[:1] in (b"R", b"C"):
            i += 1  # the source of the rename or copy
    return paths


def config_get(repo: Repo | None, key: str) -> str | None:
    res = run(repo, "config", "--get", key)
    return (
        res.stdout.decode("utf-8", "surrogateescape").strip() or None
        if res.returncode == 0
        else None
    )


class Config(dict[str, str]):
    """Every git config value in one read (``git config -z --list``); the last one of a key wins.

    ``value(key)`` answers as ``config_get`` does (stripped, empty as None) without a process per
    key. Section and variable names come lower-cased from git, so keys are looked up lower-cased.
    """

    def value(self, key: str) -> str | None:
        return self.get(key.lower(), "").strip() or None


def config_all(repo: Repo | None) -> Config:
    res = run(repo, "config", "-z", "--list")
    out = Config()
    if res.returncode != 0:
        return out  # as config_get: an unreadable config answers "not set"
    for entry in res.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if entry:
            key, _, value = entry.partition("\n")
            out[key] = value
    return out


def tags_at(repo: Repo, commit: str) -> list[str]:
    out = check(
        repo, "for-each-ref", "--points-at", commit, "--format=%(refname:strip=2)", "refs/tags/"
    )
    return [t for t in out.splitlines() if t]


def identity(repo: Repo, config: Config | None = None) -> tuple[str, str]:
    """Committer (name, email) for notes commits: the user's, else a clearly-labelled fallback."""
    name = os.environ.get("GIT_COMMITTER_NAME")
    email = os.environ.get("GIT_COMMITTER_EMAIL")
    if not (name and email):
        cfg = config_all(repo) if config is None else config
        name = name or cfg.value("user.name")
        email = email or cfg.value("user.email")
    return name or "wotr", email or "wotr@localhost"


class ObjectTooLarge(GitError):
    """An object is larger than the caller may read."""


class ObjectReader:
    """One ``git cat-file --batch`` process: objects by name, one request at a time.

    Each answer comes back before the next name is chosen (git flushes after every object), so a
    caller can read a ref once and then only objects reachable from what it read.
    """

    def __init__(self, repo: Repo) -> None:
        args = ("cat-file", "--batch")
        self._proc = _proc.start(_argv(args), cwd=repo.cwd, env=_env(repo, args, None))

    def get(self, name: str, limit: int | None = None) -> tuple[str, str, bytes] | None:
        """(object id, type, contents) of ``name``; None when git has no such object.

        An object larger than ``limit`` bytes raises :class:`ObjectTooLarge` before any of it
        is read (the reader is then unusable: close it)."""
        if "\n" in name:
            raise ValueError("an object name may not contain a newline")
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(name.encode("utf-8", "surrogateescape") + b"\n")
            stdin.flush()
            header = stdout.readline().rstrip(b"\n").split(b" ")
            if len(header) != 3 or not header[2].isdigit():
                if header[-1:] in ([b"missing"], [b"ambiguous"]):
                    return None
                raise GitError(f"git cat-file answered {b' '.join(header)!r} for {name}")
            size = int(header[2])
            if limit is not None and size > limit:
                raise ObjectTooLarge(f"{name} is {size} bytes, over the {limit}-byte limit")
            data = stdout.read(size + 1)[:-1]
        except OSError as exc:
            raise GitError(f"git cat-file failed: {exc}") from exc
        return header[0].decode("ascii"), header[1].decode("ascii"), data

    def close(self) -> None:
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                pipe.close()
        self._proc.wait()

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_ancestor(repo: Repo, ancestor: str, descendant: str) -> bool:
    """Is commit ``ancestor`` reachable from ``descendant`` (or the same)? Asked of git, which
    sees no grafts (libgit2 reads ``info/grafts``) and uses its commit-graph and generation
    numbers: milliseconds where libgit2's ``descendant_of`` walks the history."""
    res = run(repo, "merge-base", "--is-ancestor", "--end-of-options", ancestor, descendant)
    if res.returncode in (0, 1):
        return res.returncode == 0
    raise GitError(
        f"cannot tell whether {ancestor[:12]} precedes {descendant[:12]}: {res.err_line}"
    )
