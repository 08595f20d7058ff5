"""Sharing claims through a git remote: fetch (union), push (retry, never force), failures.

Real git, real bare remotes in temporary directories, the real CLI as separate processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing import sim
from tests.conftest import Keys
from wotr import git, notes, notes_merge, sync
from wotr.errors import SyncError


def one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("Error: ") and "Traceback" not in res.stderr
    return lines[0]


def make_remote(world: sim.World) -> Path:
    bare = world.root / "remote.git"
    sim.git(world.root, "init", "-q", "--bare", "-b", "main", str(bare))
    sim.git(world.repo, "remote", "add", "origin", str(bare))
    sim.git(world.repo, "push", "-q", "origin", "main")
    return bare


def clone(world: sim.World, name: str) -> Path:
    path = world.root / name
    sim.git(world.root, "clone", "-q", str(world.root / "remote.git"), str(path))
    return path


def remote_lines(bare: Path, commit: str) -> list[bytes]:
    return [ln for ln in sim.read_note(bare, commit).split(b"\n") if ln]


def local_lines(repo: Path, commit: str) -> set[bytes]:
    return {ln for ln in sim.read_note(repo, commit).split(b"\n") if ln}


def is_ancestor(repo: Path, a: str, b: str) -> bool:
    res = subprocess.run(
        ["git", "merge-base", "--is-ancestor", a, b], cwd=repo, env=sim.base_env(), check=False
    )
    return res.returncode == 0


@pytest.fixture
def shared(world: sim.World) -> Iterator[tuple[sim.World, Path]]:
    yield world, make_remote(world)


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests that call wotr.sync directly: the simulator's git environment."""
    for key in [k for k in os.environ if k.startswith("GIT_")]:
        monkeypatch.delenv(key)
    for key, value in sim.base_env().items():
        if key.startswith("GIT_"):
            monkeypatch.setenv(key, value)


# --- the everyday path ----------------------------------------------------------------------------


def test_fresh_clone_fetch_then_verify(shared: tuple[sim.World, Path]) -> None:
    world, _ = shared
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    assert world.run("push", party="alice").stdout.strip() == "pushed claims to origin"
    bob = clone(world, "bob")
    res = world.run("sign", "--push", "origin", art, party="bob", cwd=bob)
    assert res.returncode == 0, res.stderr
    assert "pushed claims to origin" in res.stdout

    carol = clone(world, "carol")
    policy = world.policy(2)
    assert world.verify(art, policy=policy, cwd=carol).returncode == 1
    res = world.run("fetch", cwd=carol)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "fetched claims from origin: 1 commit(s) gained claims"
    assert world.verify(art, policy=policy, cwd=carol).returncode == 0
    assert world.run("fetch", cwd=carol).stdout.strip() == "claims from origin: up to date"
    # alice's own clone picks up bob's claim too
    world.run("fetch", cwd=world.repo)
    assert world.verify(art, policy=policy).returncode == 0


def test_remote_without_claims_is_quiet(shared: tuple[sim.World, Path]) -> None:
    world, _ = shared
    res = world.run("fetch")
    assert (res.returncode, res.stdout.strip(), res.stderr) == (0, "no claims on origin yet", "")
    assert sim.notes_tip(world.repo) == ""
    res = world.run("push")
    assert res.stdout.strip() == "no claims here or on origin: nothing to push"


def test_fetch_never_drops_a_local_claim(shared: tuple[sim.World, Path]) -> None:
    """Someone with push access rewrites the remote's notes without alice's claim."""
    world, bare = shared
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    assert world.run("push").returncode == 0
    mine = local_lines(world.repo, world.head())
    # a rewritten history on the remote: alice's line gone, another line added
    other = clone(world, "other")
    sim.git(other, "fetch", "-q", "origin", "refs/notes/wotr:refs/notes/wotr")
    sim.write_note(other, world.head(), b"someone else\n")
    sim.git(other, "push", "-q", "--force", "origin", "refs/notes/wotr")
    rewritten = sim.git(bare, "rev-parse", "refs/notes/wotr")
    assert remote_lines(bare, world.head()) == [b"someone else"]

    assert world.run("fetch").returncode == 0
    assert local_lines(world.repo, world.head()) == mine | {b"someone else"}
    res = world.run("push")
    assert res.stdout.strip() == "pushed claims to origin"
    assert set(remote_lines(bare, world.head())) == mine | {b"someone else"}
    # not forced: what the remote had is an ancestor of what it has now
    assert is_ancestor(bare, rewritten, "refs/notes/wotr")


def test_plain_git_fetch_brings_claims_and_wotr_fetch_merges(
    shared: tuple[sim.World, Path],
) -> None:
    world, _ = shared
    carol = clone(world, "carol")
    res = world.run("remote-setup", cwd=carol)
    assert "remote origin: 'git fetch' now also fetches claims" in res.stdout
    sim.git(carol, "fetch", "-q")  # the remote has no claims yet: must still succeed
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    world.run("push")
    sim.git(carol, "fetch", "-q")
    tracked = sim.git(carol, "rev-parse", "refs/notes/remotes/origin/wotr")
    assert tracked == sim.notes_tip(world.repo)
    assert sim.notes_tip(carol) == ""
    assert world.run("fetch", cwd=carol).returncode == 0
    assert local_lines(carol, world.head()) == local_lines(world.repo, world.head())


def test_remote_setup_is_idempotent_and_leaves_push_alone(shared: tuple[sim.World, Path]) -> None:
    world, _ = shared
    sim.git(world.repo, "config", "remote.origin.push", "refs/heads/main")
    # the exact refspec of earlier versions breaks plain 'git fetch'; it is replaced
    sim.git(world.repo, "config", "--add", "remote.origin.fetch", sync._exact_refspec("origin"))
    for _ in range(2):
        assert world.run("remote-setup", "origin").returncode == 0
    fetch = sim.git(world.repo, "config", "--get-all", "remote.origin.fetch").splitlines()
    assert fetch == ["+refs/heads/*:refs/remotes/origin/*", sync.fetch_refspec("origin")]
    assert sim.git(world.repo, "config", "--get-all", "remote.origin.push") == "refs/heads/main"
    sim.git(world.repo, "fetch", "-q")


# --- failures: one line, exit 2, refs/notes/wotr untouched ---------------------------------------


def _locked(world: sim.World) -> None:
    (world.repo / ".git" / "refs" / "notes").mkdir(parents=True, exist_ok=True)
    (world.repo / ".git" / "refs" / "notes" / "wotr.lock").write_text("")


def _unfinished_notes_merge(world: sim.World) -> None:
    (world.repo / ".git" / "NOTES_MERGE_REF").write_text("refs/notes/wotr\n")


def _unreachable(world: sim.World) -> None:
    sim.git(world.repo, "remote", "set-url", "origin", str(world.root / "gone.git"))


@pytest.mark.parametrize("command", ["fetch", "push"])
@pytest.mark.parametrize(
    ("spoil", "args", "expect"),
    [
        (None, ["nosuch"], "no remote named 'nosuch' (remotes here: origin)"),
        (_unreachable, [], "cannot fetch claims from origin: '"),
        (_locked, [], "refs/notes/wotr is locked ("),
        (_unfinished_notes_merge, [], "an unfinished 'git notes merge' into refs/notes/wotr"),
    ],
)
def test_failures_change_nothing(
    shared: tuple[sim.World, Path], command: str, spoil: object, args: list[str], expect: str
) -> None:
    world, bare = shared
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    world.run("push")
    other = clone(world, "other")  # a claim on the remote that we do not have yet
    sim.git(other, "fetch", "-q", "origin", "refs/notes/wotr:refs/notes/wotr")
    sim.git(other, "notes", "--ref=wotr", "append", "-m", "from other", "HEAD")
    sim.git(other, "push", "-q", "origin", "refs/notes/wotr")
    before, remote_before = sim.notes_tip(world.repo), sim.notes_tip(bare)
    if callable(spoil):
        spoil(world)
    res = world.run(command, *args)
    assert res.returncode == 2
    assert expect in one_line_error(res)
    assert sim.notes_tip(world.repo) == before
    assert sim.notes_tip(bare) == remote_before


def test_no_remote_at_all(world: sim.World) -> None:
    res = world.run("fetch")
    assert res.returncode == 2
    assert "no remote named 'origin' (this repository has none)" in one_line_error(res)


def test_git_missing_is_exit_3(shared: tuple[sim.World, Path]) -> None:
    world, _ = shared
    res = world.run("fetch", env={"PATH": str(world.root / "empty")})
    assert res.returncode == 3
    assert "git is not installed" in one_line_error(res)


def test_stale_state_from_a_crash_is_recovered(shared: tuple[sim.World, Path]) -> None:
    """A tracking ref left pointing anywhere and NOTES_MERGE_* debris of another notes ref."""
    world, _ = shared
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    world.run("push")
    carol = clone(world, "carol")
    sim.git(carol, "notes", "--ref=wotr", "add", "-m", "carol's own", "HEAD")
    sim.git(carol, "update-ref", "refs/notes/remotes/origin/wotr", "HEAD")  # not even notes
    (carol / ".git" / "NOTES_MERGE_PARTIAL").write_text(sim.git(carol, "rev-parse", "HEAD"))
    (carol / ".git" / "NOTES_MERGE_REF").write_text("refs/notes/commits\n")
    res = world.run("fetch", cwd=carol)
    assert res.returncode == 0, res.stderr
    assert local_lines(carol, world.head()) == local_lines(world.repo, world.head()) | {
        b"carol's own"
    }


def test_identity_not_configured_still_merges(shared: tuple[sim.World, Path]) -> None:
    world, _ = shared
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    world.run("push")
    carol = clone(world, "carol")
    sim.git(carol, "notes", "--ref=wotr", "add", "-m", "carol's own", "HEAD")
    env = {k: v for k, v in sim.base_env().items() if not k.startswith(("GIT_AUTHOR", "GIT_COMM"))}
    env["HOME"] = str(world.root)
    env["EMAIL"] = ""
    res = subprocess.run(
        [sys.executable, "-m", "wotr", "push"], cwd=carol, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert sim.git(carol, "log", "-1", "--format=%cn <%ce>", "refs/notes/wotr") == (
        "wotr <wotr@localhost>"
    )


def test_refused_by_the_remote_is_not_retried(shared: tuple[sim.World, Path]) -> None:
    world, bare = shared
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'notes are frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    before = sim.notes_tip(world.repo)
    start = time.monotonic()
    res = world.run("push")
    assert res.returncode == 2
    assert (
        "origin refused the claims: pre-receive hook declined (notes are frozen)"
        in one_line_error(res)
    )
    assert time.monotonic() - start < 5
    assert sim.notes_tip(world.repo) == before and sim.notes_tip(bare) == ""


def test_push_gives_up_after_bounded_tries(
    shared: tuple[sim.World, Path], in_process: None
) -> None:
    """Another party always pushes between our fetch and our push (a pre-push hook here)."""
    world, bare = shared
    rival = clone(world, "rival")
    hook = world.repo / ".git" / "hooks" / "pre-push"
    hook.write_text(
        "#!/bin/sh\nunset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE\n"
        f"cd {rival} || exit 1\n"
        "git fetch -q origin +refs/notes/wotr:refs/notes/wotr 2>/dev/null\n"
        'git notes --ref=wotr append -m "rival $(date +%s%N)" HEAD\n'
        "git push -q origin refs/notes/wotr\n"
    )
    hook.chmod(0o755)
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    before = sim.notes_tip(world.repo)
    sleeps: list[float] = []
    with pytest.raises(SyncError, match=r"rejected 3 times in \d+ s, others kept pushing first"):
        sync.push(git.open_repo(world.repo), "origin", attempts=3, sleep=sleeps.append)
    assert len(sleeps) == 2 and all(s >= 0 for s in sleeps)
    assert sim.notes_tip(world.repo) == before
    assert len(remote_lines(bare, sim.git(rival, "rev-parse", "HEAD"))) == 3
    # without a cap on tries: as many as fit in the time budget, pauses growing with jitter
    sleeps.clear()
    now = [0.0]

    def pause(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    sim.git(world.repo, "config", "wotr.pushTimeout", "1.5")
    with pytest.raises(SyncError, match=r"wotr\.pushTimeout"):
        sync.push(git.open_repo(world.repo), "origin", sleep=pause, clock=lambda: now[0])
    assert sum(sleeps) <= 1.5 and len(sleeps) >= 3
    assert sim.notes_tip(world.repo) == before


@pytest.mark.parametrize("value", ["soon", "0", "-3", "nan", "1e9"])
def test_a_bad_push_timeout_is_bad_input(shared: tuple[sim.World, Path], value: str) -> None:
    world, _ = shared
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    sim.git(world.repo, "config", "wotr.pushTimeout", value)
    res = world.run("push")
    assert res.returncode == 2
    assert f"git config wotr.pushTimeout is {value!r}" in one_line_error(res)


def test_claim_signed_during_a_push_is_kept(
    shared: tuple[sim.World, Path], in_process: None
) -> None:
    """The local ref moves while we push: after the push it holds both (compare-and-swap)."""
    world, bare = shared
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    other = sim.commit(world.repo, "second")
    hook = world.repo / ".git" / "hooks" / "pre-push"
    hook.write_text(
        "#!/bin/sh\nunset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE\n"
        f"git notes --ref=wotr add -m 'signed meanwhile' {other}\n"
    )
    hook.chmod(0o755)
    done = sync.push(git.open_repo(world.repo), "origin")
    assert done.sent and done.rejections == 0
    assert local_lines(world.repo, other) == {b"signed meanwhile"}
    assert is_ancestor(world.repo, done.tip or "", "refs/notes/wotr")
    assert sim.read_note(bare, other) == b""  # not pushed yet; the next push sends it
    hook.unlink()
    sync.push(git.open_repo(world.repo), "origin")
    assert remote_lines(bare, other) == [b"signed meanwhile"]


def test_unlock_then_fetch_works(shared: tuple[sim.World, Path]) -> None:
    world, _ = shared
    _locked(world)
    assert world.run("fetch").returncode == 2
    (world.repo / ".git" / "refs" / "notes" / "wotr.lock").unlink()
    assert world.run("fetch").returncode == 0


# --- many parties at once -------------------------------------------------------------------------


def _concurrent(
    world: sim.World, keys: Keys, n: int, argv: list[str], sign_first: bool
) -> tuple[list[subprocess.CompletedProcess[str]], float]:
    art = world.root / "dist" / "app.tar.gz"
    names = [f"p{i}" for i in range(n)]
    for name in names:
        world.parties[name] = sim.Party(name, keys.get(name))
    clones = [clone(world, name) for name in names]
    if sign_first:
        for name, path in zip(names, clones, strict=True):
            world.sign(name, art, cwd=path)
    procs = []
    start = time.monotonic()
    for name, path in zip(names, clones, strict=True):
        env = sim.base_env(world.parties[name].key.home)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "wotr",
                    *argv[:1],
                    *([str(art)] if not sign_first else []),
                    *argv[1:],
                ],
                cwd=path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return results, time.monotonic() - start


def _every_claim_once(world: sim.World, bare: Path, n: int) -> None:
    lines = remote_lines(bare, world.head())
    assert len(lines) == n and len(set(lines)) == n
    # and each party's own claim is among them
    signers = {ln.split(b'"keyid":"')[1][:40].decode() for ln in lines}
    assert signers == {world.parties[f"p{i}"].fingerprint for i in range(n)}


def test_twenty_clones_sign_and_push_at_once(shared: tuple[sim.World, Path], keys: Keys) -> None:
    """Issue 13: every one succeeds without a manual retry, every claim arrives once (50 in
    bench/run)."""
    world, bare = shared
    results, elapsed = _concurrent(world, keys, 20, ["sign", "--push"], sign_first=False)
    for res in results:
        assert res.returncode == 0, res.stderr
        assert "pushed claims to origin" in res.stdout
    _every_claim_once(world, bare, 20)
    assert sim.git(bare, "fsck", "--no-dangling") == ""
    print(f"20 x 'sign --push' at once: {elapsed:.2f} s")


def test_twelve_clones_push_at_once(shared: tuple[sim.World, Path], keys: Keys) -> None:
    world, bare = shared
    results, elapsed = _concurrent(world, keys, 12, ["push"], sign_first=True)
    rejected = 0
    for res in results:
        assert res.returncode == 0, res.stderr
        if "rejected" in res.stdout:
            rejected += int(res.stdout.split("(")[1].split()[0])
    _every_claim_once(world, bare, 12)
    # the remote's notes history is one line of fast-forwards: no push was forced
    assert sim.git(bare, "fsck", "--no-dangling") == ""
    print(f"12 x 'push' at once: {elapsed:.2f} s, {rejected} rejections retried")


def test_notes_tip_helper_agrees_with_git(shared: tuple[sim.World, Path]) -> None:
    world, _ = shared
    assert notes_merge.tip(git.open_repo(world.repo)) is None
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    assert notes_merge.tip(git.open_repo(world.repo)) == sim.notes_tip(world.repo)


@pytest.mark.parametrize(
    "form",
    [["--push", "ART"], ["ART", "--push"], ["--push", "origin", "ART"], ["--push=origin", "ART"]],
)
def test_sign_push_forms(shared: tuple[sim.World, Path], form: list[str]) -> None:
    """`--push [REMOTE]`: the next word is a remote only when it names one."""
    world, bare = shared
    art = str(world.root / "dist" / "app.tar.gz")
    res = world.run("sign", *[art if a == "ART" else a for a in form], party="alice")
    assert res.returncode == 0, res.stderr
    assert "pushed claims to origin" in res.stdout
    assert len(remote_lines(bare, world.head())) == 1


def test_sign_push_unknown_remote_is_bad_input(shared: tuple[sim.World, Path]) -> None:
    world, _ = shared
    before = sim.notes_tip(world.repo)
    res = world.run(
        "sign", "--push", "nowhere", str(world.root / "dist" / "app.tar.gz"), party="alice"
    )
    assert res.returncode == 2
    assert "no such remote" in one_line_error(res)
    assert sim.notes_tip(world.repo) == before


# --- a hostile remote's notes tree that git reads differently from a plain one -------------------


def _hostile_child(bare: Path, tree_of: str) -> None:
    """Put a child commit with the tree ``tree_of`` (a shell snippet over $TIP, $C) on the
    remote's refs/notes/wotr, as a remote under an attacker's control could."""
    script = (
        "TIP=$(git rev-parse refs/notes/wotr); C=$(git log -1 --format=%H main); "
        f"T=$({tree_of}); "
        'git update-ref refs/notes/wotr "$(git commit-tree -p "$TIP" -m hostile "$T")"'
    )
    subprocess.run(["sh", "-c", script], cwd=bare, env=sim.base_env(), check=True)


def _signed_and_pushed(world: sim.World) -> Path:
    """alice and bob sign dist/app.tar.gz (policy threshold 2) and push: the artifact."""
    art = world.root / "dist" / "app.tar.gz"
    world.policy(2)
    world.sign("alice", art)
    world.sign("bob", art)
    assert world.run("push").returncode == 0
    return art


HOSTILE_TREES = {
    # the same note blob as a symbolic link: git reads no note there
    "symlink": "git ls-tree $TIP | sed 's/^100644 /120000 /' | git mktree",
    # the note under its upper-case name, flooded: git reads it as the note too
    "upper-case": (
        'git ls-tree $TIP | awk -v c=$C \'{print $1" "$2" "$3"\\t"toupper(c)}\' | git mktree'
    ),
    # a second layout (fanout) of the note holding a line without a final newline
    "two-layouts": (
        "X=$(printf x | git hash-object -w --stdin); "
        "OURS=$(git ls-tree $TIP | awk '{print $3}'); "
        'SUB=$(printf "100644 blob $OURS\\t$(echo $C | cut -c3-)\\n" | git mktree); '
        'printf "100644 blob $X\\t$C\\n040000 tree $SUB\\t$(echo $C | cut -c1-2)\\n" | git mktree'
    ),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_TREES))
@pytest.mark.parametrize("command", ["fetch", "push"])
def test_a_remote_tree_git_reads_otherwise_is_not_adopted(
    shared: tuple[sim.World, Path], kind: str, command: str
) -> None:
    """Found by an attacker review: wotr adopted (fast-forwarded to) a remote notes tree in
    which its own reading saw every local line while git's did not, or saw more; every local
    claim then stopped counting, and a later push carried that to honest mirrors."""
    world, bare = shared
    art = _signed_and_pushed(world)
    _hostile_child(bare, HOSTILE_TREES[kind])
    res = world.run(command)
    assert res.returncode == 0, res.stderr
    assert world.verify(art).returncode == 0, world.verify(art).stdout
    # ...and carol's later sign of another artifact keeps alice's and bob's lines intact
    world.sign("carol", world.artifact("other.bin", b"other\n"))
    assert world.verify(art).returncode == 0
    if command == "push":
        fresh = clone(world, "fresh")
        assert world.run("fetch", cwd=fresh).returncode == 0
        assert len(local_lines(fresh, world.head())) >= 2


@pytest.mark.parametrize("command", ["fetch", "push"])
def test_a_remote_tree_listing_a_note_twice_is_not_adopted(
    shared: tuple[sim.World, Path], command: str
) -> None:
    """Found by a review: a tree object listing the note three times [junk, ours, junk] looked
    unchanged to wotr's name lookups and was adopted; the next sign kept one copy (junk) and
    dropped the honest lines. Such a tree is never adopted, and sign refuses to rewrite one."""
    world, bare = shared
    art = _signed_and_pushed(world)
    env = sim.base_env()

    def git_out(*args: str, data: bytes | None = None) -> str:
        return (
            subprocess.run(
                ["git", *args], cwd=bare, env=env, input=data, capture_output=True, check=True
            )
            .stdout.decode()
            .strip()
        )

    tip = git_out("rev-parse", "refs/notes/wotr")
    ours = git_out("ls-tree", tip).split()[2]
    junk = git_out("hash-object", "-w", "--stdin", data=b"junk\n")
    name = world.head().encode()
    raw = b"".join(b"100644 " + name + b"\0" + bytes.fromhex(oid) for oid in (junk, ours, junk))
    tree = git_out("hash-object", "-w", "-t", "tree", "--literally", "--stdin", data=raw)
    commit = git_out("commit-tree", "-p", tip, "-m", "hostile", tree)
    git_out("update-ref", "refs/notes/wotr", commit)
    assert world.run(command).returncode == 0
    world.sign("carol", world.artifact("other.bin", b"other\n"))
    assert world.verify(art).returncode == 0


# --- a hostile remote's notes tree that spells billions of paths with a few objects -------------


def _bounded(world: sim.World, command: str) -> subprocess.CompletedProcess[str]:
    """``git wotr COMMAND`` with a time limit: a test of bounded work fails, never hangs."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "wotr", command],
            cwd=world.repo, env=sim.base_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"{command} still ran after 120 s")


def _bomb(bare: Path, levels: int, blob: bytes, width: int = 256) -> str:
    """A notes tree of ``levels`` levels whose every entry points to one subtree (the last
    level to one blob): ``width ** levels`` note paths from ``levels + 1`` objects."""
    env = sim.base_env()

    def out(*args: str, data: bytes) -> str:
        res = subprocess.run(
            ["git", *args], cwd=bare, env=env, input=data, capture_output=True, check=True
        )
        return res.stdout.decode().strip()

    oid, kind, mode = out("hash-object", "-w", "--stdin", data=blob), "blob", "100644"
    for _ in range(levels):
        listing = "".join(f"{mode} {kind} {oid}\t{i:02x}\n" for i in range(width))
        oid, kind, mode = out("mktree", data=listing.encode()), "tree", "040000"
    return oid


@pytest.mark.parametrize("command", ["fetch", "push"])
def test_a_remote_tree_of_billions_of_paths_is_refused_quickly(
    shared: tuple[sim.World, Path], command: str
) -> None:
    """Found by an attacker review: a notes tree of 20 levels, each pointing 256 times to the
    next (21 objects, 256**20 paths), made fetch and push run until killed, memory growing."""
    world, bare = shared
    art = _signed_and_pushed(world)
    before = sim.notes_tip(world.repo)
    tree = _bomb(bare, 20, b"x" * 300 + b"\n")
    _hostile_child(bare, f"echo {tree}")
    start = time.monotonic()
    res = _bounded(world, command)  # unbounded before: killed after minutes, memory growing
    assert time.monotonic() - start < 60
    assert res.returncode == 2, res.stdout + res.stderr
    error = one_line_error(res)
    assert "the notes of origin hold one tree at two paths" in error
    assert "claims here are kept as they are" in error
    assert sim.notes_tip(world.repo) == before
    assert world.verify(art).returncode == 0


def test_a_remote_copying_one_huge_note_to_every_path_is_refused(
    shared: tuple[sim.World, Path],
) -> None:
    """The same blob at many paths (git notes copy makes a few honestly) is merged up to
    MAX_NOTE_BYTES of copies; beyond that it is refused, not read once per path."""
    world, bare = shared
    _signed_and_pushed(world)
    before = sim.notes_tip(world.repo)
    big = b"y" * 299 + b"\n"
    blob = big * (notes.MAX_NOTE_BYTES // len(big) // 3)  # a third of the limit, 256 copies
    env = sim.base_env()
    oid = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"], cwd=bare, env=env, input=blob,
        capture_output=True, check=True,
    ).stdout.decode().strip()  # fmt: skip
    listing = "".join(f"100644 blob {oid}\t{i:02x}{'0' * 38}\n" for i in range(256))
    tree = subprocess.run(
        ["git", "mktree"], cwd=bare, env=env, input=listing.encode(), capture_output=True,
        check=True,
    ).stdout.decode().strip()  # fmt: skip
    _hostile_child(bare, f"echo {tree}")
    res = _bounded(world, "fetch")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "the notes of origin copy notes to many paths" in one_line_error(res)
    assert sim.notes_tip(world.repo) == before


def test_a_few_copies_of_a_note_are_merged(shared: tuple[sim.World, Path]) -> None:
    """git notes copy (or notes.rewriteRef on a rebase) puts one blob at two paths: merged."""
    world, _ = shared
    art = _signed_and_pushed(world)
    other = clone(world, "other")
    sim.git(other, "fetch", "-q", "origin", "refs/notes/wotr:refs/notes/wotr")
    new = sim.commit(other, "rebased")
    sim.git(other, "notes", "--ref=wotr", "copy", world.head(), new)
    sim.git(other, "push", "-q", "origin", "refs/notes/wotr", "main")
    res = world.run("fetch")
    assert res.returncode == 0, res.stderr
    assert local_lines(world.repo, new) == local_lines(world.repo, world.head())
    assert world.verify(art).returncode == 0


def test_the_documented_squash_keeps_every_line_and_sticks(shared: tuple[sim.World, Path]) -> None:
    """docs/performance.md: squash the remote's notes history as a new root holding the same
    tree, then move a clone with an unpushed claim onto it; no line is lost, no old commit
    comes back with the next push."""
    world, bare = shared
    art = _signed_and_pushed(world)
    bob = clone(world, "bob")
    assert world.run("fetch", cwd=bob).returncode == 0
    world.sign("carol", art, cwd=bob)  # not pushed yet
    squash = (
        "set -e; git wotr fetch >/dev/null; old=$(git rev-parse refs/notes/remotes/origin/wotr); "
        'new=$(git commit-tree -m squashed "$old^{tree}"); '
        'git push -q --force-with-lease=refs/notes/wotr:$old origin "$new:refs/notes/wotr"'
    )
    move = (
        "set -e; git wotr fetch >/dev/null; u=$(git rev-parse refs/notes/wotr); "
        "s=$(git rev-parse refs/notes/remotes/origin/wotr); "
        'git update-ref refs/notes/wotr "$(git commit-tree -p "$s" -m onto "$u^{tree}")" "$u"'
    )
    env = {**sim.base_env(), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(["sh", "-c", squash], cwd=world.repo, env=env, check=True)
    assert sim.git(bare, "rev-list", "--count", "refs/notes/wotr") == "1"
    subprocess.run(["sh", "-c", move], cwd=bob, env=env, check=True)
    assert world.run("push", cwd=bob).returncode == 0
    assert sim.git(bare, "rev-list", "--count", "refs/notes/wotr") == "2"
    assert len(remote_lines(bare, world.head())) == 3
    assert world.run("fetch").returncode == 0
    assert world.verify(art).returncode == 0


@pytest.mark.parametrize("mislabelled", ["blob-as-tree", "tree-as-note"])
def test_a_notes_tree_with_mislabelled_objects_is_not_adopted(
    shared: tuple[sim.World, Path], in_process: None, mislabelled: str
) -> None:
    """Found attacking the merge: a tree entry whose mode says tree but names a blob (or says
    note but names a tree) made the merge crash with a traceback. git will not serve such a
    tree (its pack-objects dies: fetch exits 2), but objects can also come from a bundle or an
    alternate, so the merge itself must take it: not adopted, local claims kept."""
    world, _ = shared
    art = _signed_and_pushed(world)
    repo = world.repo
    env = sim.base_env()

    def git_out(*args: str, data: bytes | None = None) -> str:
        res = subprocess.run(
            ["git", *args], cwd=repo, env=env, input=data, capture_output=True, check=True
        )
        return res.stdout.decode().strip()

    tip = git_out("rev-parse", "refs/notes/wotr")
    ours = git_out("ls-tree", tip).split()[2]
    junk = git_out("hash-object", "-w", "--stdin", data=b"x" * 300 + b"\n")
    other = bytes.fromhex(world.head())[::-1].hex()  # another note-like name
    if mislabelled == "blob-as-tree":
        odd = b"40000 " + other[:2].encode() + b"\0" + bytes.fromhex(junk)
    else:
        tree = git_out("rev-parse", f"{tip}^{{tree}}")
        odd = b"100644 " + other.encode() + b"\0" + bytes.fromhex(tree)
    entries = sorted(
        [odd, b"100644 " + world.head().encode() + b"\0" + bytes.fromhex(ours)],
        key=lambda e: e.split(b"\0")[0].split(b" ")[1],
    )
    made = git_out(
        "hash-object", "-w", "-t", "tree", "--literally", "--stdin", data=b"".join(entries)
    )
    theirs = git_out("commit-tree", "-p", tip, "-m", "odd", made)
    merged = notes_merge.merge_union(git.open_repo(repo), theirs)
    assert merged.tip != theirs  # not adopted as it is
    assert world.verify(art).returncode == 0
    assert local_lines(repo, world.head()) >= set(
        remote_lines(world.root / "remote.git", world.head())
    )


@pytest.mark.parametrize("kind", ["blob", "tree"])
def test_a_remote_notes_ref_that_is_no_commit_is_named_as_the_remote_s(
    shared: tuple[sim.World, Path], kind: str
) -> None:
    """A remote whose refs/notes/wotr is a blob or a tree: fetch and push say that the remote's
    ref is the problem (its owner must fix it). Before, the hint told the user to run
    'git update-ref -d <object id>', which deletes nothing; fetching again changed nothing."""
    world, bare = shared
    obj = sim.git(bare, "hash-object", "-w", "--stdin", input=b"not notes\n")
    if kind == "tree":
        obj = sim.git(bare, "mktree", input=f"100644 blob {obj}\tx\n".encode())
    sim.git(bare, "update-ref", "refs/notes/wotr", obj)
    for verb in ("fetch", "push"):
        line = one_line_error(world.run(verb))
        assert "origin" in line and "refs/notes/wotr" in line and obj not in line, line
    assert sim.notes_tip(world.repo) == ""
