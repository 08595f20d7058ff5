"""``git wotr build`` for real: real git, real gpg, real make/tar/gzip, the CLI as a process.

Every test passes its own ``--build-root`` (under its temporary directory): tests made in the
same second can have the very same commit id, and the fixed build path would then collide
between parallel test workers.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from testing import sim
from wotr import build as build_mod
from wotr.errors import BadInput

REPRODUCIBLE_MAKEFILE = b"""\
dist/app.tar.gz: src/main.c Makefile
\tmkdir -p dist
\ttar --sort=name --mtime=@$$SOURCE_DATE_EPOCH --owner=0 --group=0 --numeric-owner \\
\t    -cf - src Makefile | gzip -n > dist/app.tar.gz
\tcp src/main.c dist/main.c
"""

# Embeds the time and a random value: no two builds agree.
UNREPRODUCIBLE_MAKEFILE = b"""\
dist/app.tar.gz:
\tmkdir -p dist
\t(date +%s%N; head -c 16 /dev/urandom | od -An -tx1) > stamp.txt
\ttar -cf - src stamp.txt | gzip > dist/app.tar.gz
"""

RECIPE = b'[build]\ncommand = ["make"]\nartifacts = ["dist/*.tar.gz"]\n'


def project(world: sim.World, makefile: bytes = REPRODUCIBLE_MAKEFILE) -> str:
    return sim.commit(world.repo, "project", files={"Makefile": makefile, "wotr.toml": RECIPE})


def wotr(
    world: sim.World,
    *args: str | Path,
    party: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    umask: int = 0o022,
) -> subprocess.CompletedProcess[str]:
    full = sim.base_env(world.parties[party].key.home if party else None)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "wotr", *map(str, args)],
        cwd=cwd or world.repo,
        env=full,
        capture_output=True,
        text=True,
        check=False,
        umask=umask,
    )


def root(world: sim.World) -> Path:
    return world.root / "broot"


def build(world: sim.World, *args: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return wotr(world, "build", "--build-root", root(world), *args, **kw)  # type: ignore[arg-type]


def kept(repo: Path, commit: str, name: str) -> Path:
    return repo / ".git" / "wotr" / "builds" / commit / name


def snapshot(repo: Path, skip: tuple[str, ...] = (".git/wotr/builds",)) -> dict[str, object]:
    """Every file and directory under ``repo`` with its bytes, mode and mtime."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(repo):
        rel_dir = os.path.relpath(dirpath, repo)
        dirnames[:] = [
            d for d in dirnames if os.path.normpath(os.path.join(rel_dir, d)) not in skip
        ]
        for name in [*filenames, *dirnames]:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            data = b""
            if os.path.isfile(path) and not os.path.islink(path):
                data = hashlib.sha256(Path(path).read_bytes()).digest()
            out[os.path.relpath(path, repo)] = (st.st_mode, st.st_mtime_ns, data)
    return out


# --- the two outcomes -------------------------------------------------------------------------


def test_reproducible_build_by_two_parties_in_two_clones_verifies(world: sim.World) -> None:
    commit = project(world)
    policy = world.policy(2, ["alice", "bob"])
    origin = world.root / "origin.git"
    sim.git(world.root, "init", "-q", "--bare", "-b", "main", str(origin))
    sim.git(world.repo, "remote", "add", "origin", str(origin))
    sim.git(world.repo, "push", "-q", "origin", "main")

    first = build(world, "--sign", "--push", "--policy", policy, party="alice")
    assert first.returncode == 0, first.stderr
    assert "app.tar.gz  no earlier claim to compare with" in first.stdout
    assert "signed: as author" in first.stdout
    assert "pushed claims to origin" in first.stdout

    # bob: another clone at another path, another key, a hostile umask and time zone.
    bob_repo = world.root / "bob-clone"
    sim.git(world.root, "clone", "-q", str(origin), str(bob_repo))
    sim.git(bob_repo, "fetch", "-q", "origin", "refs/notes/wotr:refs/notes/wotr")
    second = build(
        world, "--sign", "--role", "rebuilder", "--push", "--policy", policy,
        party="bob", cwd=bob_repo, umask=0o077, env={"TZ": "Asia/Tokyo", "LC_ALL": "de_DE"},
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert "app.tar.gz  reproduced: same digest as alice (author)" in second.stdout
    assert "result: reproduced" in second.stdout
    assert sim.read_note(origin, commit).count(b"\n") == 2

    artifact = kept(bob_repo, commit, "app.tar.gz")
    assert artifact.read_bytes() == kept(world.repo, commit, "app.tar.gz").read_bytes()
    res = wotr(world, "verify", "--threshold", "2", "--policy", policy, artifact, cwd=bob_repo)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "VERIFIED" in res.stdout
    assert not any(root(world).iterdir())  # the build directory is gone


def test_unreproducible_build_reports_differs_and_signs_a_dissent(world: sim.World) -> None:
    project(world, UNREPRODUCIBLE_MAKEFILE)
    policy = world.policy(1, ["alice", "bob"])
    assert build(world, "--sign", party="alice").returncode == 0

    res = build(world, "--sign", "--policy", policy, party="bob")
    assert res.returncode == 1, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if "DIFFERS" in ln)
    assert "DIFFERS from alice (author): yours sha256:" in line
    assert " theirs sha256:" in line
    assert "signed (a dissenting claim)" in res.stdout
    assert "result: DIFFERS" in res.stdout
    assert "hint: install diffoscope" in res.stdout

    shown = wotr(world, "show", "--policy", policy)
    assert shown.returncode == 0
    assert "alice (author)" in shown.stdout and "bob (author)" in shown.stdout
    assert "(differs)" in shown.stdout
    strict = wotr(world, "verify", "--strict", "--policy", policy)
    assert strict.returncode == 1, strict.stdout
    assert "dissent on app.tar.gz" in strict.stdout


def test_without_a_policy_it_compares_but_says_signatures_were_not_checked(
    world: sim.World,
) -> None:
    project(world, UNREPRODUCIBLE_MAKEFILE)
    assert build(world, "--sign", party="alice").returncode == 0
    res = build(world, party="bob")
    assert res.returncode == 1
    assert "signatures were NOT checked" in res.stdout
    assert "(signature not checked) (author)" in res.stdout


def test_diffoscope_command_when_the_other_artifact_is_at_hand(world: sim.World) -> None:
    commit = project(world, UNREPRODUCIBLE_MAKEFILE)
    assert build(world, "--sign", party="alice").returncode == 0
    theirs = world.root / "theirs"
    theirs.mkdir()
    (theirs / "app.tar.gz").write_bytes(kept(world.repo, commit, "app.tar.gz").read_bytes())
    # diffoscope itself is not installed here; wotr only looks it up on PATH and prints a command.
    bindir = world.root / "bin"
    bindir.mkdir()
    (bindir / "diffoscope").write_text("#!/bin/sh\nexit 0\n")
    (bindir / "diffoscope").chmod(0o755)
    path = f"{bindir}:{os.environ['PATH']}"
    policy = world.policy(1, ["alice", "bob"])
    res = build(world, "--compare-dir", theirs, "--policy", policy, party="bob", env={"PATH": path})
    assert res.returncode == 1
    assert f"compare: diffoscope {theirs / 'app.tar.gz'} " in res.stdout
    assert "alice (author)'s digest vs yours" in res.stdout


# --- the user's repository is left alone --------------------------------------------------------


def test_working_tree_index_and_stash_are_untouched(world: sim.World) -> None:
    commit = project(world)
    repo = world.repo
    (repo / "src" / "main.c").write_text("stashed change\n")
    sim.git(repo, "stash", "-q")
    (repo / "src" / "main.c").write_text("uncommitted change\n")  # the build must not see it
    (repo / "staged.txt").write_text("staged\n")
    sim.git(repo, "add", "staged.txt")
    (repo / "untracked.txt").write_text("untracked\n")
    (repo / "wotr.toml").write_text('[build]\ncommand = ["false"]\n')  # the commit's recipe wins

    def state() -> tuple[object, ...]:
        return (
            hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest(),
            sim.git(repo, "stash", "list"),
            sim.git(repo, "status", "--porcelain"),
            sim.git(repo, "rev-parse", "HEAD", "refs/stash"),
        )

    before, files = state(), snapshot(repo)
    out = world.root / "out"
    res = build(world, "--out", out, "--artifact", "dist/*", party="alice")
    assert res.returncode == 0, res.stderr
    assert snapshot(repo) == files  # every byte, mode and mtime, .git included
    assert state() == before
    assert (out / "main.c").read_text() == "int main(void) { return 0; }\n"

    # By default the artifacts are kept in .git/wotr/builds/<commit>/: nothing else changes.
    # (A new snapshot: 'git status' in state() may rewrite a racily clean index.)
    files = snapshot(repo)
    res = build(world, "--artifact", "dist/*", party="alice")
    assert res.returncode == 0, res.stderr
    after = snapshot(repo, skip=(".git/wotr",))
    assert after.pop(".git") != files.pop(".git")  # .git/wotr is new
    assert after == files
    assert state() == before
    assert kept(repo, commit, "main.c").read_text() == "int main(void) { return 0; }\n"

    res = build(world, "--sign", party="alice")
    assert res.returncode == 0, res.stderr
    assert state() == before

    def tree(snap: dict[str, object]) -> dict[str, object]:
        return {k: v for k, v in snap.items() if not (k + "/").startswith(".git/")}

    assert tree(snapshot(repo)) == tree(files)  # only objects and the notes ref changed
    assert (repo / "src" / "main.c").read_text() == "uncommitted change\n"


def test_environment_is_normalised(world: sim.World) -> None:
    script = "env | sort; pwd; umask; ls -l --time-style=+%s src"
    script = f"({script}) > env.txt"
    commit = sim.commit(world.repo, "x")
    res = build(
        world, "--artifact", "env.txt", "--", "sh", "-c", script,
        party="alice", env={"SECRET_TOKEN": "x", "GIT_DIR": f"{world.repo}/.git", "TZ": "EST"},
        umask=0o077,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    text = kept(world.repo, commit, "env.txt").read_text()
    epoch = sim.git(world.repo, "log", "-1", "--format=%ct")
    assert f"SOURCE_DATE_EPOCH={epoch}\n" in text
    assert "TZ=UTC\n" in text and "LC_ALL=C.UTF-8\n" in text
    assert f"\n{root(world) / commit[:12]}\n" in text  # the fixed build path
    assert "\n0022\n" in text
    assert f"TMPDIR={root(world) / commit[:12]}.tmp\n" in text
    assert "SECRET_TOKEN" not in text and "GIT_DIR" not in text and "GNUPGHOME" not in text
    assert f" {epoch} main.c" in text  # sources carry SOURCE_DATE_EPOCH as mtime
    assert "-rw-r--r--" in text


def test_recipe_of_an_older_commit_is_used_with_rev(world: sim.World) -> None:
    old = project(world)
    sim.commit(world.repo, "new", files={"wotr.toml": b'[build]\ncommand = ["false"]\n'})
    res = build(world, "--rev", old, party="alice")
    assert res.returncode == 0, res.stderr
    assert kept(world.repo, old, "app.tar.gz").is_file()
    assert f"recipe from wotr.toml in commit {old[:12]}" in res.stdout


def test_tag_claim_counts_for_the_tag(world: sim.World) -> None:
    project(world)
    sim.git(world.repo, "tag", "v1.0")
    policy = world.policy(1, ["alice"])
    res = build(world, "--rev", "v1.0", "--sign", "--out", world.root / "out", party="alice")
    assert res.returncode == 0, res.stderr
    assert "built v1.0 " in res.stdout
    assert (world.root / "out" / "app.tar.gz").is_file()
    verified = wotr(world, "verify", "--rev", "v1.0", "--policy", policy)
    assert verified.returncode == 0, verified.stdout


# --- failures ---------------------------------------------------------------------------------


FAILING = "for i in $(seq 1 50); do echo line$i; done; echo oops >&2; exit 3"


@pytest.mark.parametrize(
    ("toml", "args", "expect", "code"),
    [
        (b"[build]\ncommand = 'make'\n", [], "build.command must be a non-empty list", 2),
        (b'[build]\ncommand = ["make"]\nartefacts = []\n', [], "unknown field build.artefacts", 2),
        (b'[builds]\ncommand = ["make"]\n', [], "unknown field 'builds'", 2),
        (b"[build\n", [], "not valid TOML", 2),
        (b'[build]\ncommand = ["make"]\nartifacts = ["../x"]\n', [], "must be a relative path", 2),
        (b'[build]\ncommand = ["make"]\nartifacts = [3]\n', [], "build.artifacts must be", 2),
        (RECIPE, ["--artifact", "dist/*.zip"], "matched no file after the build", 2),
        (RECIPE, ["--", "sh", "-c", FAILING], "the build command failed with exit status 3", 2),
        (RECIPE, ["--", "no-such-compiler-xyz"], "'no-such-compiler-xyz' is not installed", 3),
        (None, [], "no build command", 2),
    ],
)
def test_bad_recipe_or_failing_build_exits_with_nothing_written(
    world: sim.World, toml: bytes | None, args: list[str], expect: str, code: int
) -> None:
    files = {"Makefile": REPRODUCIBLE_MAKEFILE}
    if toml is not None:
        files["wotr.toml"] = toml
    sim.commit(world.repo, "bad", files=files)
    before = sim.notes_tip(world.repo)
    res = build(world, "--sign", *args, party="alice")
    assert res.returncode == code, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    error = [ln for ln in res.stderr.splitlines() if ln.startswith("Error: ")]
    assert len(error) == 1 and expect in error[0], res.stderr
    if "wotr.toml" in expect or "build." in expect or "'builds'" in expect:
        assert "wotr.toml in commit" in error[0]
    assert sim.notes_tip(world.repo) == before == ""
    assert not any(root(world).iterdir()) if root(world).exists() else True
    if "exit status 3" in expect:
        assert "  | line50" in res.stderr and "  | oops" in res.stderr
        assert "  | line32" in res.stderr and "  | line31\n" not in res.stderr  # last 20 lines


def test_failure_output_is_streamed_with_verbose(world: sim.World) -> None:
    sim.commit(world.repo, "x")
    res = build(world, "-v", "--artifact", "x", "--", "sh", "-c", "echo building; exit 1")
    assert res.returncode == 2
    assert res.stderr.startswith("building\n")
    assert "  | building" not in res.stderr  # already shown, not repeated


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_removes_the_checkout_and_stops_the_build(
    world: sim.World, sig: signal.Signals
) -> None:
    commit = sim.commit(world.repo, "x")
    pidfile = world.root / "pid"
    env = sim.base_env(world.parties["alice"].key.home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "wotr", "build", "--build-root", str(root(world)),
         "--artifact", "out.txt", "--", "sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"],
        cwd=world.repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    build_dir = root(world) / commit[:12]
    deadline = time.monotonic() + 20
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    assert build_dir.is_dir()
    started = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=15)
    assert time.monotonic() - started < 10
    assert proc.returncode == 130, err
    assert b"Error: interrupted by " in err and b"Traceback" not in err
    assert not build_dir.exists()
    assert list(root(world).iterdir()) == []
    sleeper = int(pidfile.read_text())
    for _ in range(100):
        try:
            os.kill(sleeper, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the build command survived the interrupt")
    assert sim.notes_tip(world.repo) == ""


def test_a_second_build_of_the_same_commit_is_refused_while_one_runs(world: sim.World) -> None:
    commit = project(world)
    root(world).mkdir(mode=0o700)
    with open(root(world) / f"{commit[:12]}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        res = build(world, party="alice")
    assert res.returncode == 3, res.stderr
    assert "another wotr build is using" in res.stderr


def test_a_directory_left_by_a_killed_build_is_replaced(world: sim.World) -> None:
    commit = project(world)
    stale = root(world) / commit[:12]
    (stale / "dist").mkdir(parents=True)
    (stale / "dist" / "app.tar.gz").write_text("stale")
    (stale / "dist").chmod(0o500)
    root(world).chmod(0o700)
    res = build(world, party="alice")
    assert res.returncode == 0, res.stderr
    assert kept(world.repo, commit, "app.tar.gz").read_bytes() != b"stale"
    assert not stale.exists()


def test_a_build_root_others_can_write_is_refused(world: sim.World) -> None:
    project(world)
    root(world).mkdir(mode=0o777)
    root(world).chmod(0o777)
    res = build(world, party="alice")
    assert res.returncode == 3
    assert "only you can write to" in res.stderr


# --- the recipe parser, in-process ------------------------------------------------------------


def test_parse_recipe_accepts_a_partial_table() -> None:
    assert build_mod.parse_recipe(b'[build]\ncommand = ["make"]\n', "f") == (("make",), None)
    assert build_mod.parse_recipe(b"", "f") == (None, None)
    with pytest.raises(BadInput, match="f: build must be a table"):
        build_mod.parse_recipe(b'build = "make"\n', "f")


def test_the_example_file_is_a_valid_recipe() -> None:
    example = Path(__file__).parent.parent / "wotr.example.toml"
    command, artifacts = build_mod.parse_recipe(example.read_bytes(), str(example))
    assert command == ("make", "dist") and artifacts == ("dist/*.tar.gz",)


# --- build --sign signs what it built (issue 10 §6) -------------------------------------------


def _moving(repo: Path, move: str) -> list[str]:
    """A build command that builds, then moves a ref of the user's repository itself."""
    git = f"git -C {repo} -c user.name=m -c user.email=m@example.org"
    return ["--", "sh", "-c", f"make && {git} {move}"]


@pytest.mark.parametrize(
    ("rev", "move"),
    [
        ("HEAD", "commit -q --allow-empty -m moved"),
        ("main", "commit -q --allow-empty -m moved"),
        ("HEAD", "checkout -q -b elsewhere HEAD~1"),
    ],
)
def test_a_build_that_moves_head_or_its_branch_signs_the_commit_it_built(
    world: sim.World, rev: str, move: str
) -> None:
    sim.commit(world.repo, "before")
    built_commit = project(world)
    policy = world.policy(1, ["alice"])
    res = build(world, "--rev", rev, "--sign", *_moving(world.repo, move), party="alice")
    assert res.returncode == 0, res.stderr
    now = sim.git(world.repo, "rev-parse", "HEAD")
    assert now != built_commit
    assert "signed: as author with key " in res.stdout
    assert f" on commit {built_commit}\n" in res.stdout
    assert sim.read_note(world.repo, built_commit).count(b"\n") == 1
    assert sim.read_note(world.repo, now) == b""
    artifact = kept(world.repo, built_commit, "app.tar.gz")
    old = wotr(world, "verify", "--rev", built_commit, "--policy", policy, artifact)
    assert old.returncode == 0, old.stdout + old.stderr
    new = wotr(world, "verify", "--rev", now, "--policy", policy, artifact)
    assert new.returncode == 1, new.stdout + new.stderr


def test_a_tag_moved_during_the_build_is_refused_and_nothing_is_signed(world: sim.World) -> None:
    other = sim.commit(world.repo, "other")
    built_commit = project(world)
    sim.git(world.repo, "tag", "v1.0")
    world.policy(1, ["alice"])
    res = build(
        world, "--rev", "v1.0", "--sign", *_moving(world.repo, f"tag -f v1.0 {other}"),
        party="alice",
    )  # fmt: skip
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert f"tag v1.0 now points at {other[:12]}, but {built_commit[:12]} was built" in res.stderr
    assert sim.notes_tip(world.repo) == ""


def test_a_kept_artifact_changed_before_signing_leaves_the_notes_ref_as_it_was(
    world: sim.World,
) -> None:
    commit = project(world)
    sim.commit(world.repo, "later")
    sim.git(world.repo, "notes", "--ref=wotr", "add", "-m", "older note", "HEAD")
    before = sim.notes_tip(world.repo)
    out = world.root / "out"
    # A real gpg whose start changes the kept copy, i.e. after hashing and before the append.
    wrapper = world.root / "gpg-that-writes"
    wrapper.write_text(f'#!/bin/sh\necho tampered >> {out}/app.tar.gz\nexec gpg "$@"\n')
    wrapper.chmod(0o755)
    res = build(
        world, "--rev", commit, "--sign", "--out", out, party="alice",
        env={"WOTR_GPG": str(wrapper)},
    )  # fmt: skip
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert "app.tar.gz changed after it was built" in res.stderr
    assert "nothing was signed" in res.stderr
    assert sim.notes_tip(world.repo) == before


def test_the_reported_digest_is_of_the_bytes_copied(world: sim.World, tmp_path: Path) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(3 << 20) + b"tail")
    [(copy, digest)] = build_mod.keep([src], tmp_path / "out", replace=False)
    assert copy.read_bytes() == src.read_bytes()
    assert digest == hashlib.sha256(src.read_bytes()).hexdigest()
