"""Shell completion for ``wotr`` and ``git wotr`` in bash and zsh (click's, under one name).

click derives its completion variable from the program name; from "git wotr" that is
``_GIT WOTR_COMPLETE``, which no shell can set. Completion is therefore always asked for with
``_WOTR_COMPLETE`` and always generated for the program ``wotr``, and the bash script also
defines ``_git_wotr``, the function git's own bash completion calls for ``git wotr <TAB>``
(zsh's ``_git`` calls ``_git-wotr`` the same way). Set up (README, man page)::

    eval "$(_WOTR_COMPLETE=bash_source wotr)"   # in ~/.bashrc
    eval "$(_WOTR_COMPLETE=zsh_source wotr)"    # in ~/.zshrc, after compinit

Imported only when completion is requested (:func:`wotr.cli.main`).
"""

from __future__ import annotations

from click.shell_completion import BashComplete, ZshComplete, add_completion_class

COMPLETE_VAR = "_WOTR_COMPLETE"
PROG_NAME = "wotr"

# git's bash completion (contrib/completion/git-completion.bash) calls _git_<command> for
# `git <command> <TAB>`, with the words of the line in ${words[@]}, the cursor's word index
# in $cword and the index of the command word ("wotr") in $__git_cmd_idx.
_GIT_BASH = """
_git_wotr() {
    local IFS=$'\\n'
    local i=${__git_cmd_idx:-1}
    local response completion type value
    response=$(env COMP_WORDS="${words[*]:i}" COMP_CWORD=$((cword - i)) \\
        %(complete_var)s=bash_complete git-wotr)
    COMPREPLY=()
    for completion in $response; do
        IFS=',' read type value <<< "$completion"
        if [[ $type == 'dir' ]]; then
            COMPREPLY=()
            compopt -o dirnames
        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default
        elif [[ $type == 'plain' ]]; then
            COMPREPLY+=($value)
        fi
    done
    return 0
}
"""

# zsh's _git calls _git-<command> for `git <command> <TAB>`; it shifts ${words} so that the
# command word comes first, which is what click's zsh function expects of "wotr".
_GIT_ZSH = """
_git-wotr() {
    %(complete_func)s "$@"
}
"""


class _Bash(BashComplete):
    source_template = BashComplete.source_template + _GIT_BASH


class _Zsh(ZshComplete):
    # click's zsh script ends by registering its function (compdef) or, autoloaded, by calling
    # it; the git function goes before that ending.
    source_template = ZshComplete.source_template.replace(
        "if [[ $zsh_eval_context[-1] == loadautofunc ]]",
        _GIT_ZSH + "\nif [[ $zsh_eval_context[-1] == loadautofunc ]]",
    )


add_completion_class(_Bash, "bash")
add_completion_class(_Zsh, "zsh")
