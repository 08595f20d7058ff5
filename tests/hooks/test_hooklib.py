"""hooks/wotr_hooklib.py on its own: the settings, the scope, and one verifier run naming the
culprits from the real `wotr verify --json` report (the runner the apt, pacman, dnf hooks and
verify-file share)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from testing.sandbox import Verifier

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hooks"))
import wotr_hooklib as lib  # type: ignore[import-not-found, unused-ignore]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for k in list(os.environ):
        if k.upper().startswith("WOTR_"):
            monkeypatch.delenv(k)
    (tmp_path / "hooks.toml").write_text("")  # empty: the defaults
    monkeypatch.setenv("WOTR_HOOKS_CONFIG", str(tmp_path / "hooks.toml"))


def test_scope_rules() -> None:
    everything = lib.Scope()
    assert everything.covers("apt", "x", None)
    named = lib.Scope(("vendor-*",), {})
    assert named.covers("apt", "vendor-a", frozenset())
    assert not named.covers("apt", "other", frozenset())
    assert named.covers("apt", None, frozenset())  # name unknown: inside
    by_site = lib.Scope(None, {"apt": {"sites": ("apt.vendor.example",)}})
    assert by_site.covers("apt", "x", frozenset({"sites:apt.vendor.example"}))
    assert not by_site.covers("apt", "x", frozenset({"sites:deb.debian.org"}))
    assert by_site.covers("apt", "x", None)  # archive unknown: inside
    assert by_site.covers("dnf", "x", frozenset())  # nothing narrows dnf's scope: everything


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("timeout = inf\n", "positive number"),
        ("[scope]\npackages = ['']\n", "non-empty string"),
        ("[scope.pacman]\nrepos = ['core']\n", "unknown key 'repos'"),
        ("[scope.dnf]\n", "must be a table naming repos"),
        ("bundles = 'x'\n", "absolute path"),
    ],
)
def test_config_errors(text: str, message: str) -> None:
    with pytest.raises(lib.HookError, match=message):
        lib.parse_config(text, "/etc/wotr/hooks.toml")


def test_timeout_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("nan", "-inf", "0", "soon"):
        monkeypatch.setenv("WOTR_HOOK_TIMEOUT", bad)
        with pytest.raises(lib.HookError):
            lib.settings(bundles_must_exist=False)
    monkeypatch.setenv("WOTR_HOOK_TIMEOUT", "")  # empty: unset
    assert lib.settings(bundles_must_exist=False).timeout == lib.DEFAULT_TIMEOUT


def test_relative_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WOTR_POLICY", "policy.toml")
    with pytest.raises(lib.HookError, match="absolute"):
        lib.settings(bundles_must_exist=False)  # a package manager's cwd means nothing
    s = lib.settings(relative_to=str(tmp_path), bundles_must_exist=False)  # verify-file
    assert s.policy == str(tmp_path / "policy.toml")


def test_two_thousand_culprits_from_one_report(tmp_path: Path) -> None:
    # issue 13 item 6: naming comes from the report alone, one readable line per package
    items, artifacts = [], []
    for i in range(2000):
        f = tmp_path / f"p{i}.deb"
        f.write_bytes(f"package {i}".encode())
        items.append(lib.Item(f"pkg-{i:04d} 1.0", str(f)))
        artifacts.append(
            {
                "name": f.name,
                "sha256": lib.sha256_of(str(f)),
                "signers": ["alice"] if i % 2 else ["alice", "bob"],
                "verified": i % 2 == 0,
                "reason": "" if i % 2 == 0 else "no quorum",
            }
        )
    report: dict[str, Any] = {"verified": False, "threshold": 2, "artifacts": artifacts}
    bad = lib.culprits(items, report)
    assert len(bad) == 1000
    assert bad[0][0].label == "pkg-0001 1.0"
    assert bad[0][1] == "not verified: no quorum (1 of 2 needed; signed by alice)"


def test_one_run_names_each_failing_file(tmp_path: Path, verifier: Verifier) -> None:
    # the real verifier over 200 files, 20 of them unsigned: ONE run, 20 lines
    files = []
    for i in range(200):
        f = tmp_path / "files" / f"f{i:03d}.bin"
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(f"file {i}\n".encode())
        files.append(f)
    verifier.approve(*files[20:])
    import os

    os.environ["WOTR_VERIFY_CMD"] = verifier.command
    os.environ["WOTR_TEST_VERIFY_LOG"] = str(verifier.log)
    try:
        s = lib.settings(policy=str(verifier.policy), bundles=str(verifier.bundles))
        items = [lib.Item(f"file-{i:03d}", str(f)) for i, f in enumerate(files)]
        verdict = lib.check(items, s, manager="", disable_hint="don't", prog="test")
    finally:
        del os.environ["WOTR_VERIFY_CMD"], os.environ["WOTR_TEST_VERIFY_LOG"]
    assert not verdict.ok and verdict.code == 1
    refused = [ln for ln in verdict.lines if ln.startswith("REFUSED")]
    assert [ln.split(":")[1].strip() for ln in refused] == [f"file-{i:03d}" for i in range(20)]
    assert all("not verified: no bundle names this digest" in ln for ln in refused)
    assert len(verifier.calls()) == 1


def test_messages_are_one_printable_line(capsys: pytest.CaptureFixture[str]) -> None:
    # a hostile file name or bundle text must not reach the terminal as escapes or extra lines
    lib.say("hook", "REFUSED: evil\x1b[2J\nwotr-apt-hook: verified 1 package file(s)")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err
