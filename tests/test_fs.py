"""wotr._fs: the small replacements for tempfile and shutil on the verify path."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wotr import _fs


def test_private_dir_is_owner_only_and_unguessable(tmp_path: Path) -> None:
    made = {_fs.private_dir("x-", tmp_path) for _ in range(20)}
    assert len(made) == 20
    for path in made:
        assert path.is_absolute() and path.parent == tmp_path and path.name.startswith("x-")
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
        assert len(path.name) >= len("x-") + 16


def test_private_dir_defaults_to_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_fs, "_root", [])
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert _fs.temp_root() == str(tmp_path)
    assert _fs.private_dir("y").parent == tmp_path
    monkeypatch.setattr(_fs, "_root", [])
    monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))
    monkeypatch.delenv("TEMP", raising=False)
    monkeypatch.delenv("TMP", raising=False)
    assert _fs.temp_root() == "/tmp"


def test_anonymous_file_has_no_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_fs, "_root", [])
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    with _fs.anonymous_file() as f:
        f.write(b"stderr text")
        f.seek(0)
        assert f.read() == b"stderr text"
        assert list(tmp_path.iterdir()) == []
        assert stat.S_IMODE(os.fstat(f.fileno()).st_mode) & 0o077 == 0


def test_remove_tree_never_follows_a_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    home = _fs.private_dir("h", tmp_path)
    (home / "sub" / "deeper").mkdir(parents=True)
    (home / "sub" / "deeper" / "f").write_text("x")
    (home / "link").symlink_to(outside)
    (home / "sub" / "filelink").symlink_to(outside / "keep")
    _fs.remove_tree(home)
    assert not home.exists()
    assert (outside / "keep").read_text() == "precious"
    _fs.remove_tree(home)  # already gone: no error


def test_which_finds_only_executable_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "tool").write_text("#!/bin/sh\n")  # not executable: skipped
    (first / "dir").mkdir()
    (second / "tool").write_text("#!/bin/sh\n")
    (second / "tool").chmod(0o755)
    monkeypatch.setenv("PATH", f"{first}{os.pathsep}{second}")
    assert _fs.which("tool") == str(second / "tool")
    assert _fs.which("dir") is None
    assert _fs.which("absent") is None


@pytest.mark.parametrize("unusable", ["/proc", "/nonexistent-dir", "file"])
def test_an_unusable_tmpdir_falls_back(
    unusable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if unusable == "file":
        unusable = str(tmp_path / "plain-file")
        Path(unusable).write_text("")
    monkeypatch.setattr(_fs, "_root", [])
    monkeypatch.setenv("TMPDIR", unusable)
    monkeypatch.delenv("TEMP", raising=False)
    monkeypatch.delenv("TMP", raising=False)
    assert _fs.temp_root() in ("/tmp", "/var/tmp")
    assert _fs.private_dir("z").parent == Path(_fs.temp_root())


def test_a_verifier_whose_setup_fails_leaves_no_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gpg.Verifier and ssh.Verifier (_fs.PrivateHome): an error while the private directory is
    set up (gpg missing at the import of copies, a key line that cannot be written) removes it;
    nothing holds the half-made object, so nothing else ever would."""
    from wotr import gpg, ssh
    from wotr.errors import EnvironmentProblem

    monkeypatch.setattr(_fs, "_root", [str(tmp_path)])
    monkeypatch.setenv("WOTR_GPG", str(tmp_path / "no-such-gpg"))
    with pytest.raises(EnvironmentProblem):
        gpg.Verifier(b"", merge_copies=True)
    assert os.listdir(tmp_path) == []
    with pytest.raises(UnicodeEncodeError):
        ssh.Verifier([("SHA256:x", "ssh-ed25519 \u00e9")])
    assert os.listdir(tmp_path) == []
