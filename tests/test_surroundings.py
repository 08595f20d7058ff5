"""The repository's surroundings (issue 10 §1, §2; docs/threat-model.md).

Git can be told to show another object graph than the one that is there (replace refs, grafts),
to fetch objects from a remote on demand (partial clones), to run programs (hooks, fsmonitor,
a remote's upload-pack), and to find a repository the user did not mean (a bare repository
committed as ordinary files). None of it may change what wotr checks, builds or trusts. Each test
sets up the situation with the real git and gpg, and fails when the rule is removed
(tools/mutate_rules.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testing import sim
from wotr import claim as claim_mod

APP = b"release bytes\n"
EVIL = b"evil bytes\n"


def signed(world: sim.World, commit: str, tree: str, data: bytes, *names: str) -> bytes:
    """Lines by ``names`` claiming dist/app.tar.gz = ``data`` for (commit, tree)."""
    claim = world.claim({"app.tar.gz": data}, commit_id=commit, tree=tree)
    return b"".join(sim.envelope_line(world.parties[n].key, claim) + b"\n" for n in names)


def add_note(repo: Path, commit: str, lines: bytes) -> None:
    sim.write_note(repo, commit, sim.read_note(repo, commit) + lines)


def verify(world: sim.World, *args: str | Path, cwd: Path | None = None) -> Any:
    res = world.verify("--json", *args, cwd=cwd)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def replaced(world: sim.World) -> tuple[str, str, str]:
    """(honest commit H, H's real tree, the evil tree): refs/replace/H names a commit with
    another tree, as a mirror clone or a fetch of refs/* brings it."""
    honest = world.head()
    real_tree = world.tree()
    evil = sim.commit(world.repo, "evil", files={"src/main.c": b"evil();\n"})
    evil_tree = world.tree()
    sim.git(world.repo, "reset", "-q", "--hard", honest)
    sim.git(world.repo, "replace", "-f", honest, evil)
    assert sim.git(world.repo, "rev-parse", f"{honest}^{{tree}}") == evil_tree  # git is fooled
    return honest, real_tree, evil_tree


# --- §1 the object graph as it really is ----------------------------------------------------------


@pytest.mark.parametrize("config", [None, "true"])
def test_replace_refs_change_neither_the_tree_nor_the_verdict(
    world: sim.World, config: str | None
) -> None:
    """Honest claims still count; claims for the replacement's tree under the honest id do not.

    ``core.useReplaceRefs = true`` in the repository's config beats GIT_NO_REPLACE_OBJECTS and
    ``--no-replace-objects`` in git 2.39: only a command-line setting wins over it."""
    world.policy(2)
    honest, real_tree, evil_tree = replaced(world)
    if config:
        sim.git(world.repo, "config", "core.useReplaceRefs", config)
    add_note(world.repo, honest, signed(world, honest, real_tree, APP, "alice", "bob"))
    code, doc = verify(world, world.artifact("app.tar.gz", APP))
    assert code == 0, doc["rejected"]
    # what rebuilders fooled by the replacement would sign: the evil tree under the honest id
    add_note(world.repo, honest, signed(world, honest, evil_tree, EVIL, "alice", "bob"))
    code, doc = verify(world, "--digest", "sha256:" + hashlib.sha256(EVIL).hexdigest())
    assert code == 1 and not any(a["verified"] for a in doc["artifacts"])
    assert "not this commit's tree" in " ".join(r["reason"] for r in doc["rejected"])


def test_a_users_own_git_c_cannot_turn_replacement_back_on(world: sim.World) -> None:
    world.policy(2)
    honest, real_tree, _ = replaced(world)
    add_note(world.repo, honest, signed(world, honest, real_tree, APP, "alice", "bob"))
    env = {"GIT_CONFIG_PARAMETERS": "'core.usereplacerefs'='true'", "GIT_NO_REPLACE_OBJECTS": "0"}
    art = world.artifact("app.tar.gz", APP)
    res = world.run("verify", "--policy", world.policy_dir / "threshold.toml", art, env=env)
    assert res.returncode == 0, res.stdout + res.stderr


def test_grafts_do_not_move_a_revision(world: sim.World) -> None:
    """info/grafts gives HEAD another parent: HEAD~1 must still be the real parent, not an old
    release that has claims of its own (a roll-back spelled as the user's own revision)."""
    world.policy(2)
    old = world.head()
    add_note(world.repo, old, signed(world, old, world.tree(), EVIL, "alice", "bob"))
    sim.commit(world.repo, "fixed")
    sim.commit(world.repo, "next")
    head = world.head()
    (world.repo / ".git" / "info").mkdir(exist_ok=True)
    (world.repo / ".git" / "info" / "grafts").write_text(f"{head} {old}\n")
    assert sim.git(world.repo, "rev-parse", "HEAD~1") == old  # git is fooled
    code, doc = verify(world, "--rev", "HEAD~1", world.artifact("app.tar.gz", EVIL))
    assert code == 1
    assert doc["commit"] != old


def test_grafts_do_not_hide_a_remotes_claims_from_fetch(world: sim.World, short_tmp: Path) -> None:
    """libgit2 reads info/grafts: a made-up parent that makes our notes commit look newer than
    the remote's would skip the remote's claims (a conflicting second claim, a dissent)."""
    world.policy(2)
    remote = short_tmp / "remote.git"
    sim.git(short_tmp, "init", "-q", "--bare", str(remote))
    sim.git(world.repo, "remote", "add", "origin", str(remote))
    head = world.head()
    add_note(world.repo, head, b"theirs\n")
    sim.git(world.repo, "push", "-q", "origin", "refs/notes/wotr")
    theirs = sim.notes_tip(world.repo)
    sim.git(world.repo, "update-ref", "-d", "refs/notes/wotr")
    add_note(world.repo, head, b"ours\n")
    ours = sim.notes_tip(world.repo)
    (world.repo / ".git" / "info").mkdir(exist_ok=True)
    (world.repo / ".git" / "info" / "grafts").write_text(f"{ours} {theirs}\n")
    res = world.run("fetch", "origin")
    assert res.returncode == 0, res.stderr
    lines = subprocess.run(
        ["git", "notes", "--ref=wotr", "show", head],
        cwd=world.repo,
        env={**sim.base_env(), "GIT_GRAFT_FILE": os.devnull},
        capture_output=True,
        check=True,
    ).stdout.split()
    assert sorted(lines) == [b"ours", b"theirs"]


def test_a_partial_clone_fetches_nothing_on_verify(world: sim.World, short_tmp: Path) -> None:
    """The note's blob is missing from a blob:none partial clone. git would fetch it from the
    promisor remote, running the upload-pack the repository's config names; verify must not
    touch the network or run that program (it fails closed instead)."""
    world.policy(2)
    head = world.head()
    add_note(world.repo, head, signed(world, head, world.tree(), APP, "alice", "bob"))
    server = short_tmp / "server.git"
    sim.git(short_tmp, "clone", "-q", "--bare", str(world.repo), str(server))
    sim.git(server, "fetch", "-q", str(world.repo), "refs/notes/wotr:refs/notes/wotr")
    sim.git(server, "config", "uploadpack.allowFilter", "true")
    sim.git(server, "config", "uploadpack.allowAnySHA1InWant", "true")
    clone = short_tmp / "partial"
    sim.git(short_tmp, "clone", "-q", "--filter=blob:none", f"file://{server}", str(clone))
    sim.git(clone, "fetch", "-q", "origin", "refs/notes/wotr:refs/notes/wotr")
    marker = short_tmp / "upload-pack-ran"
    spy = short_tmp / "spy-upload-pack"
    spy.write_text(f'#!/bin/sh\ntouch {marker}\nexec git-upload-pack "$@"\n')
    spy.chmod(0o755)
    sim.git(clone, "config", "remote.origin.uploadpack", str(spy))
    note_blob = sim.git(clone, "rev-parse", f"refs/notes/wotr:{head}")
    present = sim.git(clone, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
    assert note_blob not in present.split()
    art = world.artifact("app.tar.gz", APP)
    res = world.run("verify", "--policy", world.policy_dir / "threshold.toml", art, cwd=clone)
    assert res.returncode != 0
    assert not marker.exists()
    present = sim.git(clone, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
    assert note_blob not in present.split()


def test_sign_runs_no_program_the_repository_config_names(world: sim.World) -> None:
    """core.fsmonitor (git status) and hooks (reference-transaction on the notes ref,
    post-index-change) are programs a handed-over .git/config could name."""
    marker = world.root / "ran"
    spy = world.root / "spy"
    spy.write_text(f'#!/bin/sh\necho "$0 $*" >> {marker}\nexit 0\n')
    spy.chmod(0o755)
    hooks = world.root / "hooks"
    hooks.mkdir()
    for name in ("reference-transaction", "post-index-change"):
        (hooks / name).symlink_to(spy)
    sim.git(world.repo, "config", "core.fsmonitor", str(spy))
    sim.git(world.repo, "config", "core.hooksPath", str(hooks))
    sim.git(world.repo, "notes", "--ref=wotr", "list")  # git itself would run them
    subprocess.run(["git", "status"], cwd=world.repo, env=sim.base_env(), check=True)
    assert marker.exists()
    marker.unlink()
    (world.repo / "src" / "main.c").touch()
    world.sign("alice", world.artifact("app.tar.gz", APP))
    world.policy(1)
    assert world.verify(world.root / "dist" / "app.tar.gz").returncode == 0
    assert not marker.exists(), marker.read_text()


def test_build_checks_out_the_real_tree(world: sim.World) -> None:
    """build resolves and checks out the commit under a replace ref: the honest tree is built,
    and the claim names it."""
    makefile = b"dist/app.tar.gz: src/main.c\n\tmkdir -p dist\n\tcp src/main.c dist/app.tar.gz\n"
    recipe = b'[build]\ncommand = ["make"]\nartifacts = ["dist/*.tar.gz"]\n'
    sim.commit(world.repo, "project", files={"Makefile": makefile, "wotr.toml": recipe})
    honest, real_tree, _ = replaced(world)
    res = world.run("build", "--sign", "--build-root", world.root / "builds", party="alice")
    assert res.returncode == 0, res.stdout + res.stderr
    note = sim.read_note(world.repo, honest)
    parsed = claim_mod.parse_payload(claim_mod.parse_line(note.splitlines()[0]).payload)
    assert parsed.commit == honest and parsed.tree == real_tree
    sha = hashlib.sha256(b"int main(void) { return 0; }\n").hexdigest()
    assert parsed.digests_by_name()["app.tar.gz"] == sha


def test_export_carries_the_real_commit(world: sim.World) -> None:
    """An offline bundle exported where a replace ref is present holds the honest commit
    object: the honest claims verify offline, the replaced tree's do not."""
    pol = world.policy(2)
    honest, real_tree, evil_tree = replaced(world)
    add_note(world.repo, honest, signed(world, honest, real_tree, APP, "alice", "bob"))
    add_note(world.repo, honest, signed(world, honest, evil_tree, EVIL, "alice", "bob"))
    bundle = world.root / "release.wotr"
    res = world.run("export", "--rev", honest, "-o", bundle)
    assert res.returncode == 0, res.stderr
    away = world.root / "installer"
    away.mkdir()
    for data, expected in ((APP, 0), (EVIL, 1)):
        art = world.artifact("app.tar.gz", data)
        res = world.run("verify", "--policy", pol, "--bundle", bundle, art, cwd=away)
        assert res.returncode == expected, res.stdout + res.stderr


# --- §2 the repository and the policy the user means ----------------------------------------------


def planted_bare_repo(world: sim.World, keys: Any) -> tuple[Path, Path]:
    """The attacker's project commits packaging/evil.git: a bare repository as ordinary files,
    whose config names the attacker's policy (also committed) and whose notes hold the
    attacker's own claims for the evil artifact. Returns (that directory, the evil artifact)."""
    mallory = sim.Party("mallory", keys.get("mallory"))
    world.parties["mallory"] = mallory
    evil_dir = world.repo / "packaging" / "evil.git"
    sim.git(world.repo, "init", "-q", "--bare", str(evil_dir))
    pol = sim.write_policy(world.repo / "packaging", [mallory], 1, name="evil.toml")
    sim.git(evil_dir, "config", "wotr.policy", str(pol))
    # a commit in the bare repository, with mallory's claim on it
    tree = sim.git(evil_dir, "mktree", input=b"")
    commit = sim.git(evil_dir, "commit-tree", tree, "-m", "x")
    sim.git(evil_dir, "update-ref", "HEAD", commit)
    claim = world.claim({"app.tar.gz": EVIL}, commit_id=commit, tree=tree)
    sim.write_note(evil_dir, commit, sim.envelope_line(mallory.key, claim) + b"\n")
    sim.git(world.repo, "add", "-A")
    sim.git(world.repo, "commit", "-q", "-m", "packaging")
    assert "packaging/evil.git/config" in sim.git(world.repo, "ls-files")
    return evil_dir, world.artifact("app.tar.gz", EVIL)


def test_a_committed_bare_repository_chooses_neither_repository_nor_policy(
    world: sim.World, short_tmp: Path, keys: Any
) -> None:
    evil_dir, art = planted_bare_repo(world, keys)
    user_policy = world.policy(2, ["alice", "bob"])
    for cwd in (evil_dir, evil_dir / "refs"):
        res = world.run("verify", art, cwd=cwd)
        assert res.returncode == 2, res.stdout + res.stderr
        assert "bare git repository that git found by itself" in res.stderr
    # The user allows bare repositories in their own config: the repository is used, but its
    # config does not name the policy.
    glob = short_tmp / "gitconfig"
    glob.write_text(f"[safe]\n\tbareRepository = all\n[wotr]\n\tpolicy = {user_policy}\n")
    res = world.run("verify", "--json", art, cwd=evil_dir, env={"GIT_CONFIG_GLOBAL": str(glob)})
    assert res.returncode == 1, res.stdout + res.stderr
    assert json.loads(res.stdout)["policy"] == str(user_policy)
    glob.write_text("[safe]\n\tbareRepository = all\n")
    res = world.run("verify", art, cwd=evil_dir, env={"GIT_CONFIG_GLOBAL": str(glob)})
    assert res.returncode == 2 and "no policy" in res.stderr, res.stdout + res.stderr
    # a repository's own safe.bareRepository is not the user's word (git ignores it too)
    sim.git(evil_dir, "config", "safe.bareRepository", "all")
    assert world.run("verify", art, cwd=evil_dir).returncode == 2


def test_a_bare_repository_named_explicitly_is_the_users(world: sim.World, keys: Any) -> None:
    evil_dir, art = planted_bare_repo(world, keys)
    res = world.run("verify", "--json", art, cwd=evil_dir, env={"GIT_DIR": str(evil_dir)})
    assert res.returncode == 0, res.stdout + res.stderr  # the user named it and its config
    assert json.loads(res.stdout)["repository"] == str(evil_dir)


def git_wotr_env() -> dict[str, str]:
    """The test's environment with the venv's ``git-wotr`` first on PATH (git runs it)."""
    env = sim.base_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_git_hands_wotr_the_repository_the_user_named(world: sim.World, short_tmp: Path) -> None:
    """git --git-dir=X wotr, git -C X wotr, GIT_DIR and --work-tree: X is verified, not the
    repository around the working directory."""
    world.policy(2)
    head = world.head()
    add_note(world.repo, head, signed(world, head, world.tree(), APP, "alice", "bob"))
    other = sim.init_repo(short_tmp / "other", {"x": b"other\n"})
    art = world.artifact("app.tar.gz", APP)
    pol = world.policy_dir / "threshold.toml"
    env = git_wotr_env()
    git_dir = world.repo / ".git"
    runs = {
        "--git-dir": (["git", f"--git-dir={git_dir}", "wotr"], {}),
        "--git-dir --work-tree": (
            ["git", f"--git-dir={git_dir}", f"--work-tree={world.repo}", "wotr"],
            {},
        ),
        "-C": (["git", "-C", str(world.repo), "wotr"], {}),
        "GIT_DIR": (["git", "wotr"], {"GIT_DIR": str(git_dir)}),
    }
    for label, (argv, extra) in runs.items():
        res = subprocess.run(
            [*argv, "verify", "--json", "--policy", str(pol), str(art)],
            cwd=other,
            env={**env, **extra},
            capture_output=True,
            text=True,
            check=False,
        )
        assert res.returncode == 0, (label, res.stdout, res.stderr)
        assert json.loads(res.stdout)["repository"] == str(git_dir), label
    res = subprocess.run(
        ["git", "wotr", "verify", "--policy", str(pol), str(art)],
        cwd=other,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 1 and f"repository {other / '.git'}" in res.stdout


def test_policy_from_the_users_config_and_a_clones_own(world: sim.World, short_tmp: Path) -> None:
    """wotr.policy counts from the user's global config and from a clone's own config; the
    report names the policy and the repository."""
    world.policy(2)
    head = world.head()
    add_note(world.repo, head, signed(world, head, world.tree(), APP, "alice", "bob"))
    art = world.artifact("app.tar.gz", APP)
    pol = world.policy_dir / "threshold.toml"
    glob = short_tmp / "gitconfig"
    glob.write_text(f"[wotr]\n\tpolicy = {pol}\n")
    res = world.run("verify", art, env={"GIT_CONFIG_GLOBAL": str(glob)})
    assert res.returncode == 0, res.stderr
    assert f"policy {pol}" in res.stdout and f"repository {world.repo / '.git'}" in res.stdout
    sim.git(world.repo, "config", "wotr.policy", str(pol))
    assert world.run("verify", art).returncode == 0


# --- pinned policy files: checked before they are read ------------------------------------------


def pinned(world: sim.World) -> Path:
    sim.write_policy(world.repo, list(world.parties.values()), 2)
    sim.git(world.repo, "add", "-A")
    sim.git(world.repo, "commit", "-q", "-m", "policy")
    res = world.run("init")
    assert res.returncode == 0 and "pinned" in res.stdout, res.stdout + res.stderr
    return world.artifact("app.tar.gz", APP)


def limited(world: sim.World, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """The CLI with 1 GiB of address space and 20 s: a policy read whole would fail here."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run(
        [sys.executable, "-m", "wotr", *map(str, args)],
        cwd=world.repo,
        env=sim.base_env(),
        capture_output=True,
        text=True,
        timeout=20,
        preexec_fn=cap,
        check=False,
    )


@pytest.mark.parametrize("which", ["threshold.toml", "keys/bob.asc"])
@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "huge", "link-to-same-bytes"])
def test_a_pinned_file_is_checked_before_it_is_read(
    world: sim.World, which: str, kind: str
) -> None:
    art = pinned(world)
    target = world.repo / which
    copy = world.root / "elsewhere"
    copy.write_bytes(target.read_bytes())
    target.unlink()
    if kind == "dev-zero":
        target.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "huge":
        with target.open("wb") as f:
            f.truncate(64 << 30)  # sparse: 64 GiB of zeros
    else:
        target.symlink_to(copy)  # the pinned bytes, but not a file of the working tree
    res = limited(world, "verify", art)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "changed since the policy was pinned" in res.stderr


def test_an_installers_policy_may_be_a_link_to_a_regular_file(world: sim.World) -> None:
    pol = world.policy(1)
    link = world.policy_dir / "link.toml"  # key files are found beside the link
    link.symlink_to(pol)
    world.sign("alice", world.artifact("app.tar.gz", APP))
    assert world.verify(world.root / "dist" / "app.tar.gz", policy=link).returncode == 0
    fifo = world.root / "fifo.toml"
    os.mkfifo(fifo)
    res = limited(world, "verify", "--policy", fifo, world.root / "dist" / "app.tar.gz")
    assert res.returncode == 2 and "named pipe" in res.stderr, res.stderr


def test_init_writes_nothing_through_a_committed_link(world: sim.World) -> None:
    """A project without a policy commits threshold.toml and keys/ as links elsewhere: init
    must not write the skeleton or the user's key through them."""
    outside = world.root / "outside"
    outside.mkdir()
    (world.repo / "threshold.toml").symlink_to(outside / "victim.toml")
    res = world.run("init", party="alice")
    assert res.returncode != 0 or "not pinned" in res.stdout + res.stderr
    assert not (outside / "victim.toml").exists()
    (world.repo / "threshold.toml").unlink()
    (world.repo / "keys").symlink_to(outside)
    world.run("init", party="alice")
    assert list(outside.iterdir()) == []
    (world.repo / "keys").unlink()
    (world.repo / "keys").mkdir()
    (world.repo / "keys" / "me.asc").symlink_to(outside / "victim.asc")  # the skeleton's name
    world.run("init", party="alice")
    assert list(outside.iterdir()) == []


def test_a_found_bare_repository_brings_no_pin_either(
    world: sim.World, short_tmp: Path, keys: Any
) -> None:
    """With the user's safe.bareRepository = all, the planted repository may be used; its config
    can give it a work tree (core.bare = false, core.worktree) and it can carry a pin of the
    attacker's threshold.toml there. Neither chooses the policy."""
    from wotr import policy as policy_mod

    evil_dir, art = planted_bare_repo(world, keys)
    sim.git(evil_dir, "config", "--unset", "wotr.policy")
    sim.git(evil_dir, "config", "core.bare", "false")
    sim.git(evil_dir, "config", "core.worktree", str(world.repo / "packaging"))
    planted = world.repo / "packaging" / "threshold.toml"
    planted.write_bytes((world.repo / "packaging" / "evil.toml").read_bytes())
    policy_mod.write_pin(evil_dir, policy_mod.load(planted))
    glob = short_tmp / "gitconfig"
    glob.write_text("[safe]\n\tbareRepository = all\n")
    res = world.run("verify", art, cwd=evil_dir, env={"GIT_CONFIG_GLOBAL": str(glob)})
    assert res.returncode == 2, res.stdout + res.stderr


def test_a_projects_own_gitconfig_names_no_policy(world: sim.World, keys: Any) -> None:
    """Some projects ask contributors to `git config include.path ../.gitconfig`: that file is
    the project's content, and a wotr.policy in it must not choose the keys."""
    mallory = sim.Party("mallory", keys.get("mallory"))
    pol = sim.write_policy(world.repo / "packaging", [mallory], 1, name="evil.toml")
    (world.repo / ".gitconfig").write_text(f"[wotr]\n\tpolicy = {pol}\n")
    sim.git(world.repo, "add", "-A")
    sim.git(world.repo, "commit", "-q", "-m", "shared config")
    sim.git(world.repo, "config", "include.path", "../.gitconfig")
    assert sim.git(world.repo, "config", "wotr.policy") == str(pol)  # git reads it
    head = world.head()
    claim = world.claim({"app.tar.gz": EVIL})
    sim.write_note(world.repo, head, sim.envelope_line(mallory.key, claim) + b"\n")
    res = world.run("verify", world.artifact("app.tar.gz", EVIL))
    assert res.returncode == 2 and "no policy" in res.stderr, res.stdout + res.stderr


def test_a_linked_worktree_is_its_clones(world: sim.World, short_tmp: Path) -> None:
    """A linked worktree's git directory (.git/worktrees/NAME) is the clone's own: found by git,
    its config is the clone's (not refused as a bare repository)."""
    world.policy(2)
    head = world.head()
    add_note(world.repo, head, signed(world, head, world.tree(), APP, "alice", "bob"))
    linked = short_tmp / "linked"
    sim.git(world.repo, "worktree", "add", "-q", "--detach", str(linked), head)
    sim.git(world.repo, "config", "wotr.policy", str(world.policy_dir / "threshold.toml"))
    art = world.artifact("app.tar.gz", APP)
    res = world.run("verify", "--json", art, cwd=linked)
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["repository"].endswith("/.git/worktrees/linked")
