"""Shell completion, run by the real bash (and zsh, where installed) with the real scripts.

click's own variable for "git wotr" would be ``_GIT WOTR_COMPLETE``, which no shell can set;
wotr/completion.py asks for ``_WOTR_COMPLETE`` and adds the function git's completion calls.
The shells run the scripts exactly as a user's rc file would (eval of the generated source);
only for zsh, whose completion builtins exist only inside a completion widget, compadd and
_describe are replaced by functions that print what they were given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GIT_BASH_COMPLETION = Path("/usr/share/bash-completion/completions/git")


def _bin(tmp_path: Path) -> dict[str, str]:
    """PATH with `wotr` and `git-wotr` running this checkout's wotr, as the console scripts do."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("wotr", "git-wotr"):
        script = bindir / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m wotr "$@"\n')
        script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_COMPLETE")}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    return env


def _lines(shell: str, script: str, tmp_path: Path) -> list[str]:
    res = subprocess.run(
        [shell, "-f" if shell == "zsh" else "--norc", "-c", script],
        cwd=tmp_path,
        env=_bin(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


BASH = """
eval "$(_WOTR_COMPLETE=bash_source wotr)"
complete_line() {  # the words of a command line, the last one being completed
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
}
complete_line wotr ver; _wotr_completion wotr; echo "wotr ver: ${COMPREPLY[*]}"
complete_line wotr verify --st; _wotr_completion wotr; echo "wotr verify --st: ${COMPREPLY[*]}"
complete_line wotr sign --allow-; _wotr_completion wotr; echo "wotr sign: ${COMPREPLY[*]}"
complete -p wotr
"""


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_wotr(tmp_path: Path) -> None:
    out = _lines("bash", BASH, tmp_path)
    assert "wotr ver: verify" in out
    assert "wotr verify --st: --strict" in out
    assert "wotr sign: --allow-dirty --allow-uncounted" in out
    assert "complete -o nosort -F _wotr_completion wotr" in out


GIT_BASH = f"""
eval "$(_WOTR_COMPLETE=bash_source wotr)"
source {GIT_BASH_COMPLETION}
complete_line() {{
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${{#COMP_LINE}}
    COMPREPLY=()
}}
complete_line git wotr ver; __git_wrap__git_main; echo "git wotr ver: ${{COMPREPLY[*]}}"
complete_line git -C . wotr verify --st; __git_wrap__git_main
echo "git -C . wotr verify --st: ${{COMPREPLY[*]}}"
"""


@pytest.mark.skipif(
    shutil.which("bash") is None or not GIT_BASH_COMPLETION.exists(),
    reason="bash or git's bash completion is not installed",
)
def test_bash_completes_git_wotr(tmp_path: Path) -> None:
    """`git wotr <TAB>` goes through git's own completion, which calls _git_wotr."""
    out = _lines("bash", GIT_BASH, tmp_path)
    assert "git wotr ver: verify" in out
    assert "git -C . wotr verify --st: --strict" in out


ZSH = """
compdef() { print "compdef $*" }
compadd() { local a; for a in ${(P)${@[-1]}}; do print "candidate $a"; done }
_describe() { local a; for a in ${(P)3}; do print "candidate ${a%%:*}"; done }
_path_files() { print "files $*" }
eval "$(_WOTR_COMPLETE=zsh_source wotr)"
print -- "-- wotr ver"; words=(wotr ver); CURRENT=2; _wotr_completion
print -- "-- wotr verify --st"; words=(wotr verify --st); CURRENT=3; _wotr_completion
# zsh's _git calls _git-wotr with the words shifted so that "wotr" comes first.
print -- "-- git wotr sign --allow-"; words=(wotr sign --allow-); CURRENT=3; _git-wotr
"""


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completes_wotr_and_git_wotr(tmp_path: Path) -> None:
    out = _lines("zsh", ZSH, tmp_path)
    assert "compdef _wotr_completion wotr" in out
    at = {line: i for i, line in enumerate(out)}
    assert out[at["-- wotr ver"] + 1] == "candidate verify"
    assert out[at["-- wotr verify --st"] + 1] == "candidate --strict"
    git = out[at["-- git wotr sign --allow-"] + 1 :]
    assert git == ["candidate --allow-dirty", "candidate --allow-uncounted"]


def test_the_completion_variable_has_no_space() -> None:
    from wotr import completion

    assert completion.COMPLETE_VAR == "_WOTR_COMPLETE"
    assert " " not in completion.COMPLETE_VAR
