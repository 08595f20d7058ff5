"""The command line as a user meets it: exit codes, one-line errors, nothing changed on failure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testing import gpgkeys, sim
from wotr import git as git_mod


def one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("Error: "), res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


# --- sign ----------------------------------------------------------------------------------------


def test_sign_writes_one_line_per_claim(world: sim.World) -> None:
    art = world.root / "dist" / "app.tar.gz"
    res = world.sign("alice", art)
    assert "app.tar.gz" in res.stdout
    note = sim.read_note(world.repo, world.head())
    assert note.count(b"\n") == 1 and note.endswith(b"\n")
    world.sign("bob", art)
    assert sim.read_note(world.repo, world.head()).count(b"\n") == 2


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["missing.tar.gz"], "cannot read artifact"),
        (["--rev", "nope", "ART"], "unknown revision 'nope'"),
        (["--rev", "--all", "ART"], "is not a revision"),
        (["--key", "0000000000000000000000000000000000000000", "ART"], "could not sign"),
        (["--role", "Bad Role", "ART"], "role 'Bad Role' is not valid"),
        (["DIR"], "is a directory"),
    ],
)
def test_sign_refuses_bad_input_and_changes_nothing(
    world: sim.World, args: list[str], expect: str
) -> None:
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    before = sim.notes_tip(world.repo)
    argv = [
        str(world.root / "dist" / "app.tar.gz")
        if a == "ART"
        else str(world.root / "dist")
        if a == "DIR"
        else a
        for a in args
    ]
    res = world.run("sign", *argv, party="bob")
    assert res.returncode == 2, res.stderr
    assert expect in one_line_error(res)
    assert sim.notes_tip(world.repo) == before


def test_sign_refuses_a_dirty_tree_unless_allowed(world: sim.World) -> None:
    (world.repo / "src" / "main.c").write_text("changed\n")
    res = world.run("sign", world.root / "dist" / "app.tar.gz", party="alice")
    assert res.returncode == 2
    assert "uncommitted changes" in one_line_error(res)
    assert sim.notes_tip(world.repo) == ""
    res = world.run("sign", "--allow-dirty", world.root / "dist" / "app.tar.gz", party="alice")
    assert res.returncode == 0, res.stderr
    # untracked files do not make the tree dirty (build outputs usually are untracked)
    (world.repo / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    (world.repo / "build.log").write_text("x")
    res = world.run("sign", world.root / "dist" / "app.tar.gz", party="bob")
    assert res.returncode == 0, res.stderr


def test_a_dirty_tree_is_named_with_whole_file_names(world: sim.World) -> None:
    """`sign` on a dirty tree named VERSION as ERSION (the porcelain output was stripped)."""
    sim.commit(world.repo, "version", {"VERSION": b"1\n", "old name": b"x\n"})
    (world.repo / "VERSION").write_text("2\n")
    res = world.run("sign", world.root / "dist" / "app.tar.gz", party="alice")
    assert res.returncode == 2
    assert "(VERSION)" in one_line_error(res)
    sim.git(world.repo, "checkout", "--", "VERSION")
    sim.git(world.repo, "mv", "old name", "new name")
    res = world.run("sign", world.root / "dist" / "app.tar.gz", party="alice")
    assert "(new name)" in one_line_error(res)
    assert git_mod.status_paths(b" M VERSION\0R  new\0old\0MM a b\0") == ["VERSION", "new", "a b"]


def test_sign_with_expired_key_refuses(world: sim.World, keys: Any) -> None:
    exp = keys.get("exp", expired=True)
    res = world.run("sign", world.root / "dist" / "app.tar.gz", env={"GNUPGHOME": str(exp.home)})
    assert res.returncode == 2
    assert "could not sign" in one_line_error(res)
    assert sim.notes_tip(world.repo) == ""


def test_sign_checks_its_own_signature_against_a_poisoned_gpg_conf(world: sim.World) -> None:
    """A gpg.conf that forces SHA-1 must not produce a claim that will never count."""
    alice = world.parties["alice"].key
    home = Path(gpgkeys.short_home())
    try:
        shutil.copytree(alice.home, home, dirs_exist_ok=True, ignore=shutil.ignore_patterns("S.*"))
        (home / "gpg.conf").write_text("personal-digest-preferences SHA1\ndigest-algo SHA1\n")
        res = world.run("sign", world.root / "dist" / "app.tar.gz", env={"GNUPGHOME": str(home)})
        # wotr asks for SHA-512 explicitly; if gpg.conf won, the self-check must refuse
        if res.returncode == 0:
            world.policy(1, ["alice"])
            ok = world.verify(world.root / "dist" / "app.tar.gz", "--threshold", "1")
            assert ok.returncode == 0, ok.stdout
        else:
            assert "does not verify" in one_line_error(res)
            assert sim.notes_tip(world.repo) == ""
    finally:
        gpgkeys.remove_home(home)


def test_sign_from_tag_records_the_tag_and_hints_otherwise(world: sim.World) -> None:
    sim.git(world.repo, "tag", "-a", "v1.0", "-m", "r")
    res = world.run("sign", world.root / "dist" / "app.tar.gz", party="alice")
    assert "--rev v1.0" in res.stderr
    world.sign("alice", world.root / "dist" / "app.tar.gz", rev="v1.0")
    lines = sim.read_note(world.repo, world.head()).splitlines()
    import base64

    payloads = [json.loads(base64.b64decode(json.loads(ln)["payload"])) for ln in lines]
    refs = [p["predicate"]["buildDefinition"]["externalParameters"].get("ref") for p in payloads]
    assert sorted(refs, key=str) == sorted([None, "refs/tags/v1.0"], key=str)


def test_role_from_git_config(world: sim.World) -> None:
    sim.git(world.repo, "config", "wotr.role", "ci")
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    world.policy(1)
    res = world.run("show", "--json", "--policy", world.policy_dir / "threshold.toml")
    assert json.loads(res.stdout)["claims"][0]["role"] == "ci"


# --- verify --------------------------------------------------------------------------------------


def test_verify_passes_and_fails_with_readable_output(world: sim.World) -> None:
    world.policy(2)
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    world.sign("bob", art)
    res = world.verify("--threshold", "2", art)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "VERIFIED" in res.stdout and "alice, bob" in res.stdout
    tampered = world.artifact("app-tampered.tar.gz", b"release bytes\nextra")
    res = world.verify("--threshold", "2", tampered)
    assert res.returncode == 1
    assert "NOT VERIFIED" in res.stdout and "no trusted signer claimed this digest" in res.stdout
    res = world.verify("--threshold", "3", art)
    assert res.returncode == 1 and "2 of 3" in res.stdout


def test_verify_json_schema(world: sim.World) -> None:
    world.policy(2)
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    world.sign("bob", art)
    sim.write_note(world.repo, world.head(), sim.read_note(world.repo, world.head()) + b"junk\n")
    res = world.verify("--json", art)
    doc = json.loads(res.stdout)
    assert doc["verified"] is True
    assert doc["commit"] == world.head()
    assert doc["threshold"] == 2
    assert doc["policy"] == str(world.policy_dir / "threshold.toml")
    (a,) = doc["artifacts"]
    assert set(a) >= {"name", "sha256", "signers", "verified"}
    assert a["signers"] == ["alice", "bob"]
    assert isinstance(doc["dissent"], list)
    assert doc["rejected"] and set(doc["rejected"][0]) >= {"reason"}


def test_verify_digest_and_strict(world: sim.World) -> None:
    world.policy(2)
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    world.sign("bob", art)
    other = world.root / "o"
    other.mkdir()
    (other / "app.tar.gz").write_bytes(b"carol built something else")
    world.sign("carol", other / "app.tar.gz")
    import hashlib

    digest = hashlib.sha256(art.read_bytes()).hexdigest()
    assert world.verify("--digest", f"sha256:{digest}").returncode == 0
    res = world.verify("--strict", "--digest", f"sha256:{digest}")
    assert res.returncode == 1 and "dissent" in res.stdout
    res = world.verify("--digest", "sha256:xyz")
    assert res.returncode == 2 and "--digest" in one_line_error(res)
    # without artifacts: every claimed name must reach a quorum on exactly one digest
    assert world.verify().returncode == 0
    assert world.verify("--strict").returncode == 1


def test_verify_bad_inputs_exit_2(world: sim.World, short_tmp: Path) -> None:
    world.policy(2)
    res = world.verify(world.root / "nope.tar.gz")
    assert res.returncode == 2 and "cannot read artifact" in one_line_error(res)
    res = world.verify("--rev", "nope", world.root / "dist" / "app.tar.gz")
    assert res.returncode == 2 and "unknown revision" in one_line_error(res)
    res = world.verify("--threshold", "0")
    assert res.returncode == 2
    res = world.verify("--threshold", "4")
    assert res.returncode == 2 and "out of range" in one_line_error(res)
    bad = short_tmp / "bad.toml"
    bad.write_text("version = 1\nthreshold = 1\nsigners = []\n")
    res = world.run("verify", "--policy", bad)
    assert res.returncode == 2 and str(bad) in one_line_error(res)
    res = world.run("verify", "--no-such-option")
    assert res.returncode == 2


def test_verify_outside_a_repo_without_bundles_is_not_verified(
    world: sim.World, short_tmp: Path
) -> None:
    # issue 5: outside a repository verify uses bundles (tests/test_bundle.py); with none, no
    # claim names the file: not verified (exit 1), and the output says where claims come from
    world.policy(1)
    res = world.verify(world.root / "dist" / "app.tar.gz", cwd=short_tmp)
    assert res.returncode == 1, res.stderr
    assert "no bundle names this digest" in res.stdout and "--bundle FILE" in res.stdout


def test_missing_gpg_is_an_environment_error(world: sim.World) -> None:
    world.policy(1)
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    res = world.verify(world.root / "dist" / "app.tar.gz", "--threshold", "1")
    assert res.returncode == 0
    env = {"WOTR_GPG": "/nonexistent/gpg"}
    res = world.run(
        "verify",
        "--policy",
        world.policy_dir / "threshold.toml",
        world.root / "dist" / "app.tar.gz",
        env=env,
    )
    assert res.returncode == 3, res.stdout + res.stderr
    assert "gpg" in one_line_error(res)
    res = world.run("sign", world.root / "dist" / "app.tar.gz", party="bob", env=env)
    assert res.returncode == 3
    res = world.run(
        "verify", "--policy", world.policy_dir / "threshold.toml", env={"PATH": "/nonexistent"}
    )
    assert res.returncode == 3
    assert "git" in one_line_error(res)


def test_show_lists_every_line_with_reasons(world: sim.World, keys: Any) -> None:
    world.policy(2)
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    mallory = keys.get("mallory")
    line = sim.envelope_line(mallory, world.claim({"app.tar.gz": b"x"}))
    sim.write_note(
        world.repo, world.head(), sim.read_note(world.repo, world.head()) + line + b"garbage\n"
    )
    res = world.run("show", "--policy", world.policy_dir / "threshold.toml")
    assert res.returncode == 0
    assert "alice (author)" in res.stdout
    assert "not in the policy" in res.stdout
    assert "not a valid wotr claim" in res.stdout
    doc = json.loads(
        world.run("show", "--json", "--policy", world.policy_dir / "threshold.toml").stdout
    )
    assert [c["counts"] for c in doc["claims"]] == [True, False, False]


def test_show_without_claims_suggests_fetch(world: sim.World) -> None:
    world.policy(1)
    res = world.run("show", "--policy", world.policy_dir / "threshold.toml")
    assert res.returncode == 0
    assert "did you run 'git wotr fetch'?" in res.stdout


def test_show_without_policy_lists_unchecked(world: sim.World) -> None:
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    res = world.run("show")
    assert res.returncode == 0
    assert "not checked" in res.stdout + res.stderr


# --- init and the pinned working-tree policy -----------------------------------------------------


def test_init_pins_and_detects_changes(world: sim.World) -> None:
    policy = sim.write_policy(world.repo, list(world.parties.values()), 2)
    sim.git(world.repo, "add", "-A")
    sim.git(world.repo, "commit", "-q", "-m", "policy")
    art = world.root / "dist" / "app.tar.gz"
    world.sign("alice", art)
    world.sign("bob", art)
    res = world.run("verify", art)
    assert res.returncode == 2 and "not pinned" in one_line_error(res)
    res = world.run("init")
    assert res.returncode == 0, res.stderr
    assert "pinned" in res.stdout
    assert world.run("verify", art).returncode == 0
    # a commit that changes the policy (e.g. adds the attacker's key): refused until re-pinned
    policy.write_text(policy.read_text().replace("threshold = 2", "threshold = 1"))
    res = world.run("verify", art)
    assert res.returncode == 2 and "changed since the policy was pinned" in one_line_error(res)
    (world.repo / "keys" / "bob.asc").write_bytes(b"")
    res = world.run("verify", art)
    assert res.returncode == 2


def test_init_creates_a_skeleton_with_the_users_key(world: sim.World) -> None:
    res = world.run("init", party="alice")
    assert res.returncode == 0, res.stderr
    text = (world.repo / "threshold.toml").read_text()
    assert world.parties["alice"].fingerprint in text
    assert (world.repo / "keys").is_dir()
    res = world.run("init", "--threshold", "2", party="alice")
    assert res.returncode == 2 and "already exists" in one_line_error(res)


def test_init_exits_2_when_it_cannot_pin_the_policy(world: sim.World) -> None:
    """`git wotr init` said "not pinned yet: ... unknown field" and exited 0."""
    (world.repo / "threshold.toml").write_text("version = 1\nthreshold = 1\nsurprise = 1\n")
    res = world.run("init", party="alice")
    assert res.returncode == 2, res.stderr
    error = one_line_error(res)
    assert "not pinned yet" in error and "surprise" in error
    assert "not pinned" in one_line_error(world.run("verify", world.root / "dist" / "x"))
    sim.git(world.repo, "remote", "add", "origin", str(world.root / "nowhere.git"))
    assert world.run("init", party="alice").returncode == 2
    fetch = sim.git(world.repo, "config", "--get-all", "remote.origin.fetch").splitlines()
    assert not any("notes" in refspec for refspec in fetch)  # a failed command changes nothing


def test_init_adds_notes_fetch_refspec_without_touching_push(
    world: sim.World, short_tmp: Path
) -> None:
    remote = short_tmp / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    sim.git(world.repo, "remote", "add", "origin", str(remote))
    world.run("init", party="alice")
    fetch = sim.git(world.repo, "config", "--get-all", "remote.origin.fetch").splitlines()
    assert "+refs/notes/wotr*:refs/notes/remotes/origin/wotr*" in fetch
    assert "+refs/heads/*:refs/remotes/origin/*" in fetch
    assert sim.git(world.repo, "config", "--get-all", "remote.origin.push", check=False) == ""


# --- entry points --------------------------------------------------------------------------------


def test_entry_points_and_help(world: sim.World) -> None:
    env = sim.base_env()
    for argv in (["git", "wotr", "-h"], ["wotr", "--help"], [sys.executable, "-m", "wotr", "-h"]):
        if shutil.which(argv[0]) is None or (argv[0] == "git" and not shutil.which("git-wotr")):
            pytest.skip("console scripts not installed")
        res = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        assert res.returncode == 0, res.stderr
        assert "verify" in res.stdout
    res = subprocess.run(
        ["wotr", "verify", "-h"], capture_output=True, text=True, env=env, check=False
    )
    assert "--threshold" in res.stdout and "--strict" in res.stdout


def test_man_page_is_shipped() -> None:
    page = Path(__file__).parents[1] / "docs" / "man" / "git-wotr.1"
    text = page.read_text()
    assert text.startswith(".TH GIT-WOTR 1")
    for word in ("sign", "verify", "show", "fetch", "push", "init", "EXIT STATUS"):
        assert word in text
    if shutil.which("man") and os.environ.get("CI") != "true":
        res = subprocess.run(
            ["man", "-l", str(page)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "MANPAGER": "cat"},
        )
        assert res.returncode == 0


def test_git_wotr_help_opens_the_man_page(tmp_path: Path) -> None:
    """`git wotr --help` runs `man git-wotr`; man finds pages next to the interpreter's bin/."""
    installed = Path(sys.prefix) / "share" / "man" / "man1" / "git-wotr.1"
    if not installed.exists() or not shutil.which("man"):
        pytest.skip("wotr is not installed with its man page here (or man is missing)")
    env = sim.base_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["MANPAGER"] = env["PAGER"] = "cat"
    res = subprocess.run(
        ["git", "wotr", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert "GIT-WOTR(1)" in res.stdout and "EXIT STATUS" in res.stdout


def test_verify_refuses_a_fifo_artifact_without_hanging(world: sim.World) -> None:
    world.policy(1)
    fifo = world.root / "dist" / "pipe.tar.gz"
    os.mkfifo(fifo)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "wotr",
            "verify",
            "--policy",
            str(world.policy_dir / "threshold.toml"),
            str(fifo),
        ],
        cwd=world.repo,
        env=sim.base_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2
    assert "not a regular file" in one_line_error(res)


# --- arguments (issue 10 §5) ------------------------------------------------------------------


def _all_commands() -> list[tuple[list[str], Any]]:
    """Every command path of the CLI (subgroups included) with its click command."""
    import click

    from wotr.cli import cli

    found: list[tuple[list[str], Any]] = [([], cli)]
    todo: list[tuple[list[str], Any]] = [([], cli)]
    while todo:
        path, group = todo.pop()
        for name, cmd in group.commands.items():
            found.append(([*path, name], cmd))
            if isinstance(cmd, click.Group):
                todo.append(([*path, name], cmd))
    return found


def _wotr(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wotr", *args],
        cwd=cwd,
        env=sim.base_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_help_exits_0_only_when_alone_for_every_command(world: sim.World) -> None:
    """`wotr verify --bundles DIR *` in a folder holding a file named -h printed help and exited
    0: a yes for a script. Help is honoured alone; beside anything else it is a usage error."""
    assert len(_all_commands()) >= 10
    for path, _ in _all_commands():
        for flag in ("-h", "--help"):
            alone = _wotr(world.repo, *path, flag)
            assert alone.returncode == 0 and "Usage:" in alone.stdout, (path, alone.stderr)
            for extra in (["x"], ["--debug"] if not path else ["--rev", "HEAD"]):
                for argv in ([*path, flag, *extra], [*path, *extra, flag]):
                    res = _wotr(world.repo, *argv)
                    assert res.returncode == 2, (argv, res.stdout, res.stderr)
                    assert "Usage:" not in res.stdout, argv
    # The reported case: a glob that expands to a file named -h among the artifacts.
    folder = world.root / "dist"
    (folder / "-h").write_bytes(b"x\n")
    names = sorted(p.name for p in folder.iterdir())
    assert names[0] == "-h"
    res = _wotr(folder, "verify", "--bundles", str(folder), *names)
    assert res.returncode == 2 and "honoured only alone" in res.stderr, res.stderr
    # After '--', -h is a file name, for every command that takes files.
    res = _wotr(folder, "verify", "--policy", "/nonexistent.toml", "--", "-h")
    assert res.returncode == 2 and "nonexistent.toml" in res.stderr and "Usage" not in res.stderr
    res = world.run("sign", "--", folder / "-h", party="alice")
    assert res.returncode == 0 and "  -h  sha256:" in res.stdout, res.stderr


def test_after_double_dash_a_group_takes_no_help_flag(world: sim.World) -> None:
    """`wotr -- -h` (and `wotr oci -- --help`): after '--' the word is a command name; click
    parsed it again as options and printed help with exit 0."""
    import click

    groups = [path for path, cmd in _all_commands() if isinstance(cmd, click.Group)]
    assert len(groups) >= 3, groups
    for path in groups:
        for flag in ("-h", "--help"):
            res = _wotr(world.repo, *path, "--", flag)
            assert res.returncode == 2 and "Usage:" not in res.stdout, (path, flag, res.stdout)


def test_version_exits_0_only_alone(world: sim.World) -> None:
    assert _wotr(world.repo, "--version").returncode == 0
    assert _wotr(world.repo, "--version", "verify").returncode == 2


def test_an_empty_rev_is_refused_by_every_command(world: sim.World) -> None:
    """`--rev ""` meant HEAD in a repository and skipped the tag check (rule 6)."""
    world.policy(1)
    world.sign("alice", world.root / "dist" / "app.tar.gz")
    before = sim.notes_tip(world.repo)
    with_rev = [path for path, cmd in _all_commands() if any(p.name == "rev" for p in cmd.params)]
    assert len(with_rev) >= 5
    art = str(world.root / "dist" / "app.tar.gz")
    pol = str(world.policy_dir / "threshold.toml")
    for path in with_rev:
        for spelling in (["--rev", ""], ["--rev="], ["--rev", " "]):
            extra = [art] if path in (["sign"], ["verify"]) else []
            if path == ["verify"]:
                extra = ["--policy", pol, *extra]
            if path[:1] == ["oci"]:
                extra = ["127.0.0.1:1/app:1"]  # REF (nothing listens: --rev fails first)
            res = _wotr(world.repo, *path, *spelling, *extra)
            assert res.returncode == 2, (path, res.stdout, res.stderr)
            assert "is empty" in one_line_error(res), path
    # Offline (outside a repository) too.
    res = _wotr(world.root, "verify", "--policy", pol, "--rev", "", art)
    assert res.returncode == 2 and "is empty" in one_line_error(res)
    assert sim.notes_tip(world.repo) == before


def test_an_abbreviated_commit_id_is_refused_offline(world: sim.World) -> None:
    """Offline, `--rev 02fed46` was taken as a tag name; every line failed with "claim was made
    for refs/tags/v1.0, not refs/tags/02fed46". Short ids cannot be resolved without git."""
    world.policy(1)
    art = world.root / "dist" / "app.tar.gz"
    sim.git(world.repo, "tag", "v1.0")
    world.sign("alice", art, rev="v1.0")
    bundle = world.root / "app.wotr"
    assert world.run("export", "--rev", "v1.0", "-o", bundle).returncode == 0
    head = world.head()
    pol = world.policy_dir / "threshold.toml"
    for short in (head[:7], head[:12].upper(), "2024"):
        res = world.run("verify", "--policy", pol, "--bundle", bundle, "--rev", short, art)
        assert res.returncode == 2, res.stdout + res.stderr
        assert "abbreviated commit id" in one_line_error(res)
    for good in (head, "v1.0", "refs/tags/v1.0"):
        res = world.run("verify", "--policy", pol, "--bundle", bundle, "--rev", good, art)
        assert res.returncode == 0, (good, res.stdout, res.stderr)


# --- sign refuses a claim that cannot count (issue 10 §7) -----------------------------------------


def _pinned_policy(world: sim.World) -> None:
    """threshold.toml in the repository, pinned: alice (any role), bob (reviewer only)."""
    alice, bob = world.parties["alice"], world.parties["bob"]
    parties = [alice, sim.Party("bob", bob.key, ("reviewer",))]
    sim.write_policy(world.repo, parties, 1)
    sim.git(world.repo, "add", "-A")
    sim.git(world.repo, "commit", "-q", "-m", "policy")
    assert world.run("init", party="alice").returncode == 0


def test_sign_refuses_a_key_or_role_the_policy_would_not_count(world: sim.World) -> None:
    _pinned_policy(world)
    art = world.root / "dist" / "app.tar.gz"
    res = world.run("sign", art, party="carol")  # carol's key is not in the policy
    assert res.returncode == 2
    error = one_line_error(res)
    assert world.parties["carol"].fingerprint in error and "not listed in the policy" in error
    assert "--allow-uncounted" in error
    res = world.run("sign", art, party="bob")  # bob may claim reviewer, not the default author
    assert res.returncode == 2
    error = one_line_error(res)
    assert "may not claim the role 'author'" in error and "--role reviewer" in error
    assert sim.notes_tip(world.repo) == ""  # nothing written
    res = world.run("sign", "--role", "reviewer", art, party="bob")
    assert res.returncode == 0, res.stderr
    assert world.run("verify", art).returncode == 0
    before = sim.notes_tip(world.repo)
    # The escape hatch, and a policy named explicitly (as verify takes one).
    res = world.run("sign", "--allow-uncounted", art, party="carol")
    assert res.returncode == 0, res.stderr
    assert sim.notes_tip(world.repo) != before
    world.policy(1)  # lists every party, any role
    pol = world.policy_dir / "threshold.toml"
    res = world.run("sign", "--policy", pol, "--role", "ci", art, party="carol")
    assert res.returncode == 0, res.stderr


def test_sign_without_a_policy_warns_and_signs(world: sim.World) -> None:
    res = world.run("sign", world.root / "dist" / "app.tar.gz", party="carol")
    assert res.returncode == 0, res.stderr
    assert "warning: the claim was not checked against a policy (no policy" in res.stderr
    res = world.run("sign", "--policy", world.root / "nope.toml", "x", party="carol")
    assert res.returncode == 2  # a policy named explicitly must load


def test_build_sign_refuses_a_claim_that_would_not_count(world: sim.World) -> None:
    _pinned_policy(world)
    recipe = b'[build]\ncommand = ["sh", "-c", "mkdir -p out; echo 1 > out/a.txt"]\n'
    sim.commit(world.repo, "recipe", files={"wotr.toml": recipe + b'artifacts = ["out/*"]\n'})
    broot = ["--build-root", str(world.root / "broot")]
    res = world.run("build", *broot, "--sign", party="carol")
    assert res.returncode == 2
    assert "not listed in the policy" in res.stderr.splitlines()[-1]
    assert sim.notes_tip(world.repo) == ""
    res = world.run("build", *broot, "--sign", "--role", "reviewer", party="bob")
    assert res.returncode == 0, res.stderr
    res = world.run("build", *broot, "--sign", "--allow-uncounted", party="carol")
    assert res.returncode == 0, res.stderr


def test_sign_never_signs_wotr_bundles(world: sim.World) -> None:
    """`sign dist/*` also signed dist/app.tar.gz.wotr (an exported bundle); verify with no
    artifact names then failed for everyone. Bundles are recognised by content too."""
    from wotr import git as git_mod
    from wotr import sign as sign_mod
    from wotr.errors import BadInput

    world.policy(1)
    dist = world.root / "dist"
    art = dist / "app.tar.gz"
    world.sign("alice", art)
    assert world.run("export", "-o", dist / "app.tar.gz.wotr").returncode == 0
    renamed = dist / "claims.json"  # a bundle under another name
    renamed.write_bytes((dist / "app.tar.gz.wotr").read_bytes())
    (dist / "sbom.json").write_text('{"format": "https://example.org/sbom", "x": 1}\n')
    res = world.run("sign", *sorted(dist.iterdir()), party="bob")
    assert res.returncode == 0, res.stderr
    assert "app.tar.gz.wotr is a wotr bundle" in res.stderr and "claims.json" in res.stderr
    assert "sbom.json" in res.stdout and "claims.json" not in res.stdout
    res = world.run("sign", dist / "claims.json", party="bob")
    assert res.returncode == 2 and "only wotr bundles" in one_line_error(res)
    # verify with no artifact names: the bundle is no claimed name
    world.sign("alice", art, dist / "sbom.json")
    res = world.verify()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "claims.json" not in res.stdout
    # The library refuses outright (build --sign goes through it).
    repo = git_mod.open_repo(world.repo)
    with pytest.raises(BadInput, match="is a wotr bundle"):
        sign_mod.sign(repo, [art, renamed])


def test_no_claims_says_where_the_claims_are(world: sim.World) -> None:
    """HEAD moved past a signed tag: "did you run 'git wotr fetch'?" sent users the wrong way."""
    world.policy(1)
    art = world.root / "dist" / "app.tar.gz"
    res = world.verify(art)
    assert "did you run 'git wotr fetch'?" in res.stdout  # nothing anywhere yet
    sim.git(world.repo, "tag", "-a", "-m", "release", "v1.0")
    tagged = world.head()
    world.sign("alice", art, rev="v1.0")
    sim.commit(world.repo, "after the release", {"NEWS": b"next\n"})
    expect = f"claims exist for v1.0 at {tagged[:12]}: pass --rev v1.0"
    res = world.verify(art)
    assert res.returncode == 1 and expect in res.stdout, res.stdout
    assert expect in world.run("show").stdout
    assert world.verify("--rev", "v1.0", art).returncode == 0
