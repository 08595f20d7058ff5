"""The click-free ``verify`` fast path (wotr/entry.py) behaves exactly like the click CLI.

Every command line below runs twice as a separate process: once through the real entry point
(``python -m wotr``, which takes the fast path when it can) and once straight through the click
CLI (``wotr.cli.main``). Exit code, stdout and stderr must be byte-identical, and the fast path
must not import click, pygit2 or python-gnupg (nor concurrent.futures, which brings logging, nor
dataclasses, which brings inspect).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testing import sim
from wotr import entry

CLICK_ONLY = "import sys; from wotr.cli import main; main()"


# Imports an installer hook should not pay for on every package.
HEAVY = (
    "click",
    "pygit2",
    "gnupg",
    "concurrent.futures",
    "logging",
    "dataclasses",
    "inspect",
    "tempfile",
    "shutil",
)


def _run(world: sim.World, code: list[str], args: list[str], cwd: Path) -> tuple[int, str, str]:
    env = sim.base_env()
    res = subprocess.run(
        [sys.executable, *code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return res.returncode, res.stdout, res.stderr


@pytest.fixture
def signed(world: sim.World) -> sim.World:
    art = world.root / "dist" / "app.tar.gz"
    world.policy(2)
    world.sign("alice", art)
    world.sign("bob", art)
    (world.root / "dist" / "-h").write_bytes(b"a file named like the help option\n")
    return world


def _cases(w: sim.World) -> list[tuple[list[str], Path]]:
    pol = str(w.policy_dir / "threshold.toml")
    art = str(w.root / "dist" / "app.tar.gz")
    other = str(w.artifact("other.bin", b"unsigned\n"))
    digest = "sha256:" + "0" * 64
    repo = w.repo
    return [
        (["verify", "--policy", pol, art], repo),  # verified
        (["verify", "--policy", pol, "--threshold", "3", art], repo),  # not verified
        (["verify", "--policy", pol, "--json", art, other], repo),
        (["verify", f"--policy={pol}", "--strict", "--", art], repo),
        (["verify", "--policy", pol], repo),  # every claimed name
        (["verify", "--policy", pol, "--digest", digest, "--digest", "nonsense"], repo),
        (["verify", "--policy", pol, "--rev", "no-such-rev", art], repo),
        (["verify", "--policy", pol, "--rev=HEAD", art, "--json"], repo),
        (["verify", "--policy", pol, str(w.root / "missing.bin")], repo),
        (["verify", "--policy", pol, str(w.root / "dist")], repo),  # a directory
        (["verify", "--policy", str(w.root / "nope.toml"), art], repo),
        (["verify", "--policy", pol, "--threshold", "0", art], repo),  # click refuses
        (["verify", "--policy", pol, "--threshold", "007", art], repo),
        (["verify", "--policy", pol, "--rev", "HEAD", "--rev", "HEAD", art], repo),
        (["verify", "--policy", pol, "--unknown", art], repo),
        (["verify", "--policy"], repo),
        (["verify", "-h"], repo),
        (["--debug", "verify", "--policy", pol, art], repo),
        (["verify", "--debug", "--policy", pol, art], repo),
        (["verify", "--policy", pol, art], w.root),  # outside the repository: bundles
        (["verify", "--policy", pol, "--bundle", str(w.root / "none.wotr"), art], repo),
        (["verify", "--policy", pol, "--bundles", str(w.root / "dist"), art], repo),
        (["verify", "--policy", pol, "--bundles", art, art], repo),  # a file: click refuses
        # Help exits 0 only alone (issue 10 §5): a glob that expands to a file named -h.
        (["verify", "--help"], repo),
        (["verify", "--policy", pol, art, "-h"], repo),
        (["verify", "--policy", pol, "--bundles", str(w.root / "dist"), "-h", art], w.root),
        (["verify", "--policy", pol, "--", "-h"], w.root / "dist"),  # a file named -h
        (["-h", "verify"], repo),
        # An empty --rev never means HEAD.
        (["verify", "--policy", pol, "--rev", "", art], repo),
        (["verify", "--policy", pol, "--rev=", art], repo),
        (["verify", "--policy", pol, "--rev=", art], w.root),  # offline
    ]


def test_fast_path_output_and_exit_codes_match_click(signed: sim.World) -> None:
    for args, cwd in _cases(signed):
        fast = _run(signed, ["-m", "wotr"], args, cwd)
        slow = _run(signed, ["-c", CLICK_ONLY], args, cwd)
        assert fast == slow, args
    codes = {_run(signed, ["-m", "wotr"], a, c)[0] for a, c in _cases(signed)}
    assert {0, 1, 2} <= codes


def test_fast_path_imports_no_heavy_module(signed: sim.World) -> None:
    art = str(signed.root / "dist" / "app.tar.gz")
    signed.sign("carol", Path(art))  # three signatures: two gpg chains side by side on 2+ cores
    probe = (
        "import sys; from wotr.entry import main; code = main(sys.argv[1:]); "
        f"HEAVY = {HEAVY!r}; "
        "heavy = [m for m in HEAVY if m in sys.modules]; "
        "print(code, heavy)"
    )
    args = ["verify", "--policy", str(signed.policy_dir / "threshold.toml"), art]
    code, out, _ = _run(signed, ["-c", probe], args, signed.repo)
    assert code == 0
    assert out.splitlines()[-1] == "0 []"


# Every module a plain verify in a repository may import, and why (issue 17). A new import on
# this path must be added here with its reason: an installer pays for it on every package.
VERIFY_PATH_WOTR = {
    "wotr", "wotr.entry", "wotr.errors", "wotr.commands", "wotr.commands.common",
    "wotr.commands.verify", "wotr.hashing", "wotr._threads", "wotr.render", "wotr.verify",
    "wotr.consensus", "wotr.claim", "wotr._record", "wotr.policy", "wotr._openpgp", "wotr.git",
    "wotr._proc", "wotr._fs", "wotr.gpg", "wotr.notes",
    # every payload may be a withdrawal (DESIGN §8), every signature may be an SSHSIG (§9)
    "wotr.withdraw", "wotr._sshsig",
    # the policy as prepared by an earlier run (issue 17)
    "wotr.prepared",
}  # fmt: skip
VERIFY_PATH_STDLIB = {
    # `from __future__ import annotations` in every module
    "__future__",
    # pathlib (paths everywhere) and what it imports
    "pathlib", "fnmatch", "ntpath", "urllib", "urllib.parse", "ipaddress", "errno", "warnings",
    # re (json's and git's output) and what it imports
    "re", "re._casefix", "re._compiler", "re._constants", "re._parser", "_sre", "enum",
    "copyreg", "functools", "_functools", "operator", "_operator", "collections",
    "collections.abc", "_collections", "itertools", "keyword", "reprlib", "types",
    "_weakrefset", "contextlib",
    # hashing artifacts and policy files: CPython's own sha256 for small inputs (hashlib,
    # OpenSSL, costs ~5 ms to import and is imported for large artifacts only)
    "_sha256", "_sha1",
    # hashing and the gpg chains run in threads
    "threading",
    # notes, claims and the --json report
    "json", "json.decoder", "json.encoder", "json.scanner", "_json", "base64", "binascii",
    # OpenPGP packets of the policy's key files
    "struct", "_struct",
    # running git and gpg: os.posix_spawn and poll (wotr/_proc.py; subprocess only where a
    # directory or descriptor must be handed over)
    "select",
}  # fmt: skip
# Only when the policy is not prepared yet (the first verify with it, wotr/prepared.py)
PREPARING_STDLIB = {
    # the policy file (tomllib imports typing, datetime and string)
    "tomllib", "tomllib._parser", "tomllib._re", "tomllib._types", "datetime", "_datetime",
    "math", "string", "_string", "typing", "typing.io", "typing.re", "_typing",
}  # fmt: skip


def test_the_verify_path_imports_only_what_it_uses(signed: sim.World) -> None:
    """Extends the HEAVY list: the exact wotr modules a verify imports, and no standard module
    beyond the ones named above with their reasons."""
    art = str(signed.root / "dist" / "app.tar.gz")
    signed.sign("carol", Path(art))
    probe = (
        "import sys; before = set(sys.modules); from wotr.entry import main; "
        "code = main(sys.argv[1:]); "
        "print(code, sorted(set(sys.modules) - before))"
    )
    args = ["verify", "--threshold", "2", "--policy", str(signed.policy_dir / "threshold.toml")]
    for allowed in (VERIFY_PATH_STDLIB | PREPARING_STDLIB, VERIFY_PATH_STDLIB):
        code, out, err = _run(signed, ["-c", probe], [*args, art], signed.repo)
        assert code == 0, err
        verdict, _, listed = out.splitlines()[-1].partition(" ")
        assert verdict == "0"
        imported = set(ast.literal_eval(listed))  # module names printed by repr()
        assert {m for m in imported if m.split(".")[0] == "wotr"} == VERIFY_PATH_WOTR
        extra = {m for m in imported if m.split(".")[0] != "wotr"} - allowed
        assert not extra, f"imported on the verify path without a reason: {sorted(extra)}"


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["-x"],
        ["--rev"],
        ["--rev", "-x"],
        ["--threshold", "+2"],
        ["--threshold", "2.0"],
        ["--json=1"],
        ["--rev", "a", "--rev", "b"],
        ["--policy", "a", "--policy=b"],
    ],
)
def test_parser_hands_anything_unusual_to_click(args: list[str]) -> None:
    assert entry.parse_verify(args) is None


def test_parser_values(tmp_path: Path) -> None:
    got = entry.parse_verify(
        ["a", "--rev=v1", "--threshold", "12", "--digest", "d1", "--json", "--", "--strict"]
    )
    assert got is not None
    assert got["rev"] == "v1" and got["threshold"] == 12 and got["as_json"]
    assert not got["strict"]
    assert got["digests"] == ("d1",)
    assert got["artifacts"] == (Path("a"), Path("--strict"))


def test_completion_request_goes_to_click(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(os.environ, "_GIT WOTR_COMPLETE", "bash_complete")
    assert entry.parse_verify(["a"]) is None


# --- sign -----------------------------------------------------------------------------------------


def _sign_cases(w: sim.World) -> list[list[str]]:
    art = str(w.root / "dist" / "app.tar.gz")
    fpr = w.parties["alice"].key.fingerprint
    return [
        ["sign", art],  # signed
        ["sign", "--rev=HEAD", "--role", "ci", art],
        ["sign", "--key", fpr, "--allow-dirty", "--", art],
        ["sign", "--key", "0" * 40, art],  # no such secret key: exit 2
        ["sign", "--role", "Bad Role", art],
        ["sign", "--rev", "no-such-rev", art],
        ["sign", str(w.root / "missing.bin")],
        ["sign", str(w.root / "dist")],  # a directory
        ["sign"],  # no artifacts
        ["sign", "--rev", "HEAD", "--rev", "HEAD", art],  # click decides
        ["sign", "--unknown", art],
        ["sign", "--key"],
        ["sign", "-h"],
        ["sign", "--policy", str(w.root / "nope.toml"), art],
        ["sign", "--allow-uncounted", "--policy=" + str(w.policy_dir / "threshold.toml"), art],
        ["sign", "--allow-uncounted", "--allow-uncounted", art],
        ["sign", art, "--help"],  # help only alone
        ["sign", "--rev", "", art],  # an empty --rev is not HEAD
        ["sign", "--rev=", art],
        ["--debug", "sign", art],  # (tracebacks under --debug differ in their frames)
    ]


def test_sign_fast_path_output_and_exit_codes_match_click(world: sim.World) -> None:
    home = str(world.parties["alice"].key.home)

    def run(code: list[str], args: list[str]) -> tuple[int, str, str]:
        sim.git(world.repo, "update-ref", "-d", "refs/notes/wotr")  # same state for both
        res = subprocess.run(
            [sys.executable, *code, *args],
            cwd=world.repo,
            env=sim.base_env(world.parties["alice"].key.home),
            capture_output=True,
            text=True,
            check=False,
        )
        return res.returncode, res.stdout, res.stderr

    assert home
    codes = set()
    for args in _sign_cases(world):
        fast = run(["-m", "wotr"], args)
        slow = run(["-c", CLICK_ONLY], args)
        assert fast == slow, args
        codes.add(fast[0])
    assert {0, 2} <= codes


def test_sign_fast_path_imports_no_heavy_module(world: sim.World) -> None:
    probe = (
        "import sys; from wotr.entry import main; code = main(sys.argv[1:]); "
        f"HEAVY = {HEAVY!r}; "
        "heavy = [m for m in HEAVY if m in sys.modules]; "
        "print(code, heavy)"
    )
    args = ["sign", str(world.root / "dist" / "app.tar.gz")]
    res = subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=world.repo,
        env=sim.base_env(world.parties["alice"].key.home),
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.stdout.splitlines()[-1] == "0 []", res.stderr


@pytest.mark.parametrize(
    "args",
    [["--push"], ["--push", "origin", "a"], ["--key"], ["--key", "-x"], ["--allow-dirty=1"],
     ["--allow-dirty", "--allow-dirty"], ["--role", "a", "--role=b"], ["-h"]],
)  # fmt: skip
def test_sign_parser_hands_anything_unusual_to_click(args: list[str]) -> None:
    assert entry.parse_sign(args) is None


def test_sign_parser_values() -> None:
    got = entry.parse_sign(["a", "--key=K", "--allow-dirty", "--role", "ci", "--", "--rev"])
    assert got == {
        "rev": "HEAD",
        "role": "ci",
        "key": "K",
        "allow_dirty": True,
        "push_remote": None,
        "artifacts": (Path("a"), Path("--rev")),
        "policy_path": None,
        "allow_uncounted": False,
    }


@pytest.mark.parametrize(
    ("closed", "artifact", "code"),
    [("1", "app.tar.gz", 0), ("2", "app.tar.gz", 0), ("2", "missing.bin", 2), ("1", "x", 2)],
)
def test_a_closed_stdout_or_stderr_keeps_the_exit_code(
    signed: sim.World, closed: str, artifact: str, code: int
) -> None:
    """The exit code is the verdict an installer reads: a closed descriptor must not change it."""
    art = str(signed.root / "dist" / artifact)
    pol = str(signed.policy_dir / "threshold.toml")
    wotr = [sys.executable, "-m", "wotr", "verify", "--policy", pol, art]
    res = subprocess.run(
        ["sh", "-c", f'exec "$@" {closed}>&-', "sh", *wotr],
        cwd=signed.repo,
        env=sim.base_env(),
        capture_output=True,
        text=True,
    )
    assert res.returncode == code, res.stdout + res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("var", ["_GIT WOTR_COMPLETE", "_GIT_WOTR_COMPLETE", "_WOTR_COMPLETE"])
def test_a_completion_variable_does_not_turn_verify_into_exit_0(
    signed: sim.World, var: str
) -> None:
    """Found by an attacker review: with click's completion variable set, verify printed
    nothing and exited 0 without checking anything."""
    env = {**sim.base_env(), var: "bash_source"}
    for args in (
        ["verify", "--policy", "/nonexistent/threshold.toml", "/etc/hostname"],
        ["verify", "--threshold", "3", str(signed.root / "dist" / "app.tar.gz")],
    ):
        res = subprocess.run(
            [sys.executable, "-m", "wotr", *args],
            cwd=signed.repo,
            env=env,
            capture_output=True,
            text=True,
        )
        assert res.returncode in (1, 2), res.stdout + res.stderr


# --- no import circle between the front ends and the command bodies --------------------------


def _wotr_imports() -> dict[str, set[str]]:
    """Every wotr module -> the wotr modules it imports anywhere (also inside functions)."""
    import ast

    root = Path(entry.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        is_pkg = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_pkg else parts)
        package = name if is_pkg else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                mod = node.module or ""
                full = (f"{base}.{mod}" if mod else base) if node.level else mod
                found.add(full)
                found |= {f"{full}.{a.name}" for a in node.names}  # `from . import x`
        graph[name] = {m for m in found if m.split(".")[0] == "wotr"}
    return graph


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), set()):
            if nxt in graph and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_circle_between_the_front_ends_and_the_commands() -> None:
    graph = _wotr_imports()
    assert "wotr.cli" in graph and "wotr.commands.common" in graph
    assert "wotr.entry" not in _reaches(graph, "wotr.cli")
    for name in graph:
        if name not in ("wotr.entry", "wotr.cli", "wotr.__main__"):
            reached = _reaches(graph, name)
            assert "wotr.cli" not in reached and "wotr.entry" not in reached, name
    # The front ends stand on the bodies, not the other way round.
    assert "wotr.commands.verify" in _reaches(graph, "wotr.entry")
    assert "wotr.commands.verify" in _reaches(graph, "wotr.cli")
