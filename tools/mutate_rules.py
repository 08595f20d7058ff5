#!/usr/bin/env python3
"""Remove each counting rule of DESIGN §6 in turn and check that some test fails.

A test that cannot fail is a defect. For each mutation below, a scratch copy of the repository
gets the rule deleted from the source, the security tests run against that copy, and the
mutation must be *killed* (some test fails). Usage: ``python3 tools/mutate_rules.py [NAME...]``.
Takes a few minutes; not part of ``make test``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = [
    "tests/test_attacks.py",
    "tests/test_consensus.py",
    "tests/test_policy.py",
    "tests/test_openpgp.py",
    "tests/test_gpg_status.py",
    "tests/test_claim.py",
    "tests/test_notes.py",
    "tests/test_bundle.py",
    "tests/test_budgets.py",
    "tests/test_ssh.py",
    "tests/test_ssh_attacks.py",
]


SURROUNDINGS = ("tests/test_surroundings.py",)
OCI_TESTS = ("tests/test_oci.py",)


@dataclass(frozen=True)
class Mutation:
    name: str
    rule: str
    file: str
    edits: tuple[tuple[str, str], ...]
    tests: tuple[str, ...] = ()  # the tests that must kill it [default: TESTS]
    # the same rule enforced in a second place (defence in depth): (file, edits) removed too
    also: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()


APT_SCOPE = "tests/hooks/test_apt_scope.py"
PACMAN_ARGS = "tests/hooks/test_pacman_args.py"
HOOK_MUTATIONS = [
    # issue 10 section 4: apt's configuration keys are case-insensitive
    Mutation(
        "hook-apt-key-case",
        "hooks",
        "hooks/apt/wotr-apt-hook",
        (
            (
                "folded = urllib.parse.unquote(key).casefold()",
                "folded = urllib.parse.unquote(key)",
            ),
            (
                "return self.config.get(key.casefold()) or None",
                "return self.config.get(key) or None",
            ),
        ),
        (f"{APT_SCOPE}::test_apt_keys_are_case_insensitive",),
    ),
    # issue 10 section 4: pacman's getopt_long: attached values, abbreviations
    Mutation(
        "hook-pacman-attached-value",
        "hooks",
        "hooks/pacman/wotr-pacman-hook",
        (('if SHORT_OPTS[k + 1 : k + 2] == ":":', "if False:"),),
        (PACMAN_ARGS,),
    ),
    Mutation(
        "hook-pacman-abbreviation",
        "hooks",
        "hooks/pacman/wotr-pacman-hook",
        (
            (
                "matches = [n for n in LONG_OPTS if n.startswith(text)] if text else []",
                "matches = []",
            ),
        ),
        (PACMAN_ARGS,),
    ),
    # pacman -S: the downloaded file is named by the sync database, not by the package name
    Mutation(
        "hook-pacman-sync-filename",
        "hooks",
        "hooks/pacman/wotr-pacman-hook",
        (("listed = sync_filenames(parent, {*missing, *optional})", "listed = {}"),),
        (
            "tests/hooks/test_pacman_hook.py::test_a_sync_archive_named_like_another_package_is_verified",
        ),
    ),
    Mutation(
        "hook-pacman-file-name-is-not-package",
        "hooks",
        "hooks/pacman/wotr-pacman-hook",
        (("optional = [t for t in targets if t in covered]", "optional: list[str] = []"),),
        (
            "tests/hooks/test_pacman_hook.py"
            "::test_a_dependency_named_like_a_misnamed_command_line_file_is_verified",
        ),
    ),
    Mutation(
        "hook-pacman-every-filename",
        "hooks",
        "hooks/pacman/wotr-pacman-hook",
        (
            (
                'leaf not in ("desc", "depends", "files")',
                'leaf != "desc"',
            ),
        ),
        (
            "tests/hooks/test_pacman_hook.py"
            "::test_a_filename_the_hook_and_pacman_read_differently_is_verified",
        ),
    ),
    Mutation(
        "hook-pacman-conf-of-parent",
        "hooks",
        "hooks/pacman/wotr-pacman-hook",
        (
            (
                'configs = parent.options("config") or [DEFAULT_CONFIG]',
                'configs = parent.options("config")',
            ),
        ),
        (f"{PACMAN_ARGS}::test_pacman_conf_reads_the_configuration_the_parent_read",),
    ),
    # the installed hooks run as root: never writable by others, whatever the umask
    Mutation(
        "install-umask",
        "hooks",
        "tools/install.sh",
        (("umask 022\n", "\n"),),
        (
            "tests/hooks/test_system_install.py"
            "::test_install_hooks_under_umask_0_writes_nothing_others_may_change",
        ),
    ),
    # issue 12: what the hook cannot place is inside the scope; a bad hooks.toml refuses
    Mutation(
        "hook-scope-unknown-inside",
        "hooks",
        "hooks/wotr_hooklib.py",
        (
            (
                "        if sources is None:\n            return True",
                "        if sources is None:\n            return False",
            ),
        ),
        (f"{APT_SCOPE}::test_local_file_no_archive_lists_is_inside_an_archive_scope",),
    ),
    Mutation(
        "hook-config-unknown-key",
        "hooks",
        "hooks/wotr_hooklib.py",
        (('_unknown(table, ("packages", *SELECTORS), f"{path}: [scope]")', "pass"),),
        (f"{APT_SCOPE}::test_invalid_configuration_refuses_every_package",),
    ),
    Mutation(
        "hook-env-other-case",
        "hooks",
        "hooks/wotr_hooklib.py",
        (("if other != name and other.upper() == name:", "if False:"),),
        (f"{APT_SCOPE}::test_environment_variable_in_other_case_refuses",),
    ),
    # only exit 0 WITH a report saying verified installs
    Mutation(
        "hook-exit0-needs-report",
        "hooks",
        "hooks/wotr_hooklib.py",
        (
            (
                'if o.rc == V_OK and o.report is not None and o.report["verified"] is True:',
                "if o.rc == V_OK:",
            ),
        ),
        ("tests/hooks/test_apt_hook.py::test_fail_closed",),
    ),
]
CHAIN = ("tests/test_chain.py",)  # issue 11: the policy chain
WITHDRAW = ("tests/test_withdraw.py",)  # issue 11: withdrawn claims

MUTATIONS = [
    Mutation(
        "user-gnupghome",
        "1",
        "wotr/gpg.py",
        (
            (
                '"--homedir",\n            str(home or self._home),',
                '"--homedir",\n            os.environ.get("GNUPGHOME", str(home or self._home)),',
            ),
            (
                'self._keyring_args = ["--no-default-keyring", "--keyring", str(keyfile)]',
                "self._keyring_args = []",
            ),
        ),
    ),
    Mutation(
        "subkey-not-primary",
        "2",
        "wotr/gpg.py",
        (("(valid[9] if len(valid) >= 10 else valid[0])", "valid[0]"),),
    ),
    Mutation(
        "count-signatures",
        "2",
        "wotr/consensus.py",
        (
            (
                "counted.append(Counted(item.line, signer.name, item.fingerprint, claim))",
                "counted.append(Counted(item.line, signer.name + '#' + str(item.line), "
                "item.fingerprint, claim))",
            ),
        ),
    ),
    Mutation(
        "unlisted-keys-in-keyring",
        "2",
        "wotr/policy.py",
        (
            (
                '            keyring += b"".join(found[fpr])\n',
                '            keyring += b"".join(b"".join(v) for v in found.values())\n',
            ),
            (
                "        for fpr in fprs:\n            if fpr not in found:",
                "        for fpr in fprs:\n            if False:",
            ),
        ),
    ),
    Mutation(
        "unlisted-keys-count",
        "2",
        "wotr/consensus.py",
        (
            (
                "        signer = policy.signer_for(item.fingerprint)\n        if signer is None:",
                "        signer = policy.signer_for(item.fingerprint) or policy.signers[0]\n"
                "        if signer is None:",
            ),
        ),
    ),
    *[
        Mutation(f"taint-{kw}", "3", "wotr/gpg.py", ((f'    "{kw}": ', f'    "X{kw}": '),))
        for kw in ("BADSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG")
    ],
    Mutation(
        "one-goodsig",
        "3",
        "wotr/gpg.py",
        (
            (
                'counts.count("GOODSIG") != 1 or counts.count("VALIDSIG") != 1 or "NODATA" in kws',
                "False",
            ),
        ),
    ),
    Mutation("sig-class", "3", "wotr/gpg.py", (('    if valid[8] != "00":', "    if False:"),)),
    Mutation(
        "sig-class-packet", "3", "wotr/_openpgp.py", (("    if body[1] != 0x00:", "    if False:"),)
    ),
    Mutation(
        "weak-digest",
        "3",
        "wotr/gpg.py",
        (
            ('"--weak-digest",\n                "SHA1",', ""),
            ("int(valid[7]) in _openpgp.WEAK_HASHES", "False"),
        ),
    ),
    Mutation(
        "weak-digest-packet",
        "3",
        "wotr/_openpgp.py",
        (("    if body[3] in WEAK_HASHES:", "    if False:"),),
    ),
    Mutation(
        "several-sigs-in-blob",
        "3",
        "wotr/_openpgp.py",
        (("    if len(packets) != 1:", "    if not packets:"),),
    ),
    Mutation(
        "key-copies-not-merged",
        "3",
        "wotr/policy.py",
        (("            copies = copies or len(found[fpr]) > 1", "            copies = False"),),
    ),
    Mutation(
        "copied-claim",
        "4",
        "wotr/consensus.py",
        (("        if claim.commit != commit:", "        if False:"),),
    ),
    Mutation(
        "copied-claim-early",
        "4",
        "wotr/verify.py",
        (
            (
                "        if parsed.commit != ctx.commit or parsed.tree != ctx.tree:",
                "        if False:",
            ),
        ),
    ),
    Mutation(
        "wrong-tree",
        "4",
        "wotr/consensus.py",
        (("        elif claim.tree != tree:", "        elif False:"),),
    ),
    Mutation(
        "role",
        "5",
        "wotr/policy.py",
        (("return self.roles is None or role in self.roles", "return True"),),
    ),
    Mutation(
        "tag",
        "6",
        "wotr/consensus.py",
        (("        elif not built_for_tag(claim, tag):", "        elif False:"),),
    ),
    Mutation(
        "two-digests",
        "7",
        "wotr/consensus.py",
        (("        if len(digests) > 1\n", "        if False\n"),),
    ),
    Mutation(
        "garbage-stops-scan",
        "8",
        "wotr/verify.py",
        (
            (
                '            sink.drop(number, f"not a valid wotr claim: {exc}")\n            continue',
                '            sink.drop(number, f"not a valid wotr claim: {exc}")\n            break',
            ),
        ),
    ),
    Mutation(
        "tag-peel",
        "6",
        "wotr/git.py",
        (('    base = _SAME_COMMIT.sub("", rev) or rev', "    base = rev"),),
    ),
    Mutation(
        "tag-ambiguous",
        "6",
        "wotr/git.py",
        (("    if not full:\n", "    if False:\n"),),
    ),
    Mutation(
        "gpg-home-without-signatures",
        "8",
        "wotr/verify.py",
        (
            (
                "    if pgp_jobs:\n        with gpg.Verifier(",
                "    if True:\n        with gpg.Verifier(",
            ),
        ),
    ),
    Mutation(
        "bundle-bytes-uncapped",
        "8",
        "wotr/offline.py",
        (
            ("        fits = read_bytes + size <= MAX_BUNDLE_BYTES_PER_RUN", "        fits = True"),
            ("        if read_bytes + len(data) > MAX_BUNDLE_BYTES_PER_RUN:", "        if False:"),
        ),
    ),
    Mutation(
        "gate-in-note-order",
        "8",
        "wotr/verify.py",
        (
            (
                "    order = [q[i] for i in range(rounds) for q in queues.values() if i < len(q)]",
                "    order = sorted((x for q in queues.values() for x in q), key=lambda x: x[1][0])",
            ),
        ),
    ),
    Mutation(
        "issuer-gate",
        "8",
        "wotr/verify.py",
        (
            (
                "    return ids, ids & policy.issuer_ids",
                "    return ids, ids or frozenset({'none'})",
            ),
        ),
    ),
    Mutation(
        "signature-budget",
        "8",
        "wotr/verify.py",
        (("        if budget == 0:", "        if False:"),),
    ),
    Mutation(
        "run-budget",
        "8",
        "wotr/verify.py",
        (("        if run is not None and run.left == 0:", "        if False:"),),
    ),
    Mutation(
        "unchecked-lines-ignored",
        "8",
        "wotr/consensus.py",
        (("    doubts = _doubts(counted, unchecked)", "    doubts = _doubts(counted, ())"),),
    ),
    Mutation(
        "unchecked-conflict-ignored",
        "8",
        "wotr/consensus.py",
        (("            excluded.add((d.signer, d.name))", "            pass"),),
    ),
    Mutation(
        "unchecked-dissent-ignored",
        "8",
        "wotr/consensus.py",
        (("    elif strict and harmful:", "    elif False:"),),
    ),
    Mutation(
        "unchecked-name-passes",
        "8",
        "wotr/consensus.py",
        (("    if targets is None and harmful:", "    if False:"),),
    ),
    Mutation(
        "dedupe-by-signature-alone",
        "8",
        "wotr/verify.py",
        (
            ("            if (payload, env.sig) in seen:", "            if env.sig in seen:"),
            ("            seen[(payload, env.sig)] = number", "            seen[env.sig] = number"),
            (
                "    seen: dict[tuple[bytes, bytes], int] = {}",
                "    seen: dict[bytes, int] = {}",
            ),
            (
                'drop(item, f"the same signature as line {seen[(payload, env.sig)]}")',
                'drop(item, f"the same signature as line {seen[env.sig]}")',
            ),
        ),
    ),
    Mutation(
        "unread-bundle-ignored",
        "8",
        "wotr/offline.py",
        (("                capped.append((target, missed[0]))", "                pass"),),
    ),
    Mutation(
        "bundle-groups-by-tag-label",
        "7",
        "wotr/offline.py",
        (
            (
                "            parts = list(of_commit[key[0]].values())",
                "            parts = [loaded[p] for p in keyed[key]]",
            ),
        ),
    ),
    Mutation(
        "huge-note-counts",
        "8",
        "wotr/verify.py",
        (("    if notes.too_large(note):", "    if False:"),),
    ),
    Mutation(
        "note-read-uncapped",
        "8",
        "wotr/notes.py",
        (('"show", commit, max_stdout=MAX_NOTE_BYTES)', '"show", commit)'),),
    ),
    Mutation(
        "rejections-unlisted-cap",
        "8",
        "wotr/verify.py",
        (("        if len(self.rejected) >= MAX_LISTED_REJECTIONS:", "        if False:"),),
    ),
    Mutation(
        "no-line-limit",
        "8",
        "wotr/claim.py",
        (("    if len(line) > MAX_LINE_BYTES:", "    if False:"),),
    ),
    Mutation(
        "unpinned-policy",
        "§5",
        "wotr/policy.py",
        (("        if pin is not None and pin.get(rel) != digest:", "        if False:"),),
    ),
    Mutation(
        "help-beside-arguments",
        "args",
        "wotr/cli.py",
        (("    if asked and any(arg not in words for arg in args):", "    if False:"),),
        ("tests/test_cli.py::test_help_exits_0_only_when_alone_for_every_command",),
    ),
    Mutation(
        "empty-rev-is-head",
        "6",
        "wotr/commands/common.py",
        (("    if rev is not None and not rev.strip():", "    if False:"),),
        ("tests/test_cli.py::test_an_empty_rev_is_refused_by_every_command",),
    ),
    Mutation(
        "offline-short-id-as-tag",
        "6",
        "wotr/offline.py",
        (("    if _HEXISH.fullmatch(rev):  #", "    if False:  #"),),
        ("tests/test_cli.py::test_an_abbreviated_commit_id_is_refused_offline",),
    ),
    Mutation(
        "sign-uncounted-claim",
        "5",
        "wotr/sign.py",
        (("        if problem is not None:\n            raise problem", "        pass"),),
        (
            "tests/test_cli.py::test_sign_refuses_a_key_or_role_the_policy_would_not_count",
            "tests/test_cli.py::test_build_sign_refuses_a_claim_that_would_not_count",
        ),
    ),
    Mutation(
        "sign-any-role",
        "5",
        "wotr/sign.py",
        (("    if not signer.may_claim(role):", "    if False:"),),
        ("tests/test_cli.py::test_sign_refuses_a_key_or_role_the_policy_would_not_count",),
    ),
    Mutation(
        "build-sign-unchecked",
        "5",
        "wotr/commands/build.py",
        (("        checked = None if allow_uncounted else pol", "        checked = None"),),
        ("tests/test_cli.py::test_build_sign_refuses_a_claim_that_would_not_count",),
    ),
    Mutation(
        "sign-own-bundle",
        "sign",
        "wotr/sign.py",
        (
            (
                "    own = tuple(p for p in artifacts if wotr_file(p))",
                "    own: tuple[Path, ...] = ()",
            ),
        ),
        ("tests/test_cli.py::test_sign_never_signs_wotr_bundles",),
    ),
    Mutation(
        "bundle-by-suffix-only",
        "sign",
        "wotr/sign.py",
        (('        if head.lstrip()[:1] != b"{":', "        if True:"),),
        ("tests/test_cli.py::test_sign_never_signs_wotr_bundles",),
    ),
    # --- the repository's surroundings (issue 10 §1, §2; docs/threat-model.md) ---
    Mutation(
        "replace-refs-by-config",
        "§1",
        "wotr/git.py",
        (
            (
                '_FORCED = ("core.useReplaceRefs=false", "core.fsmonitor=false")',
                '_FORCED = ("core.fsmonitor=false",)',
            ),
        ),
        SURROUNDINGS,
    ),
    Mutation(
        "grafts",
        "§1",
        "wotr/git.py",
        (('        "GIT_GRAFT_FILE": os.devnull,', ""),),
        SURROUNDINGS,
    ),
    Mutation(
        "libgit2-ancestry",
        "§1",
        "wotr/notes_merge.py",
        (
            (
                "        return git.is_ancestor(repo, str(ancestor), str(descendant))",
                "        return bool(repo and _pygit2().Repository(str(repo.git_dir))"
                ".descendant_of(descendant, ancestor)) or str(ancestor) == str(descendant)",
            ),
        ),
        SURROUNDINGS,
    ),
    Mutation(
        "lazy-fetch",
        "§1",
        "wotr/git.py",
        (('        env["GIT_ALLOW_PROTOCOL"] = NO_PROTOCOL', "        pass"),),
        SURROUNDINGS,
    ),
    Mutation(
        "repository-hooks",
        "§1",
        "wotr/git.py",
        (('    f"core.hooksPath={os.devnull}",', ""),),
        SURROUNDINGS,
    ),
    Mutation(
        "fsmonitor",
        "§1",
        "wotr/git.py",
        (
            (
                '_FORCED = ("core.useReplaceRefs=false", "core.fsmonitor=false")',
                '_FORCED = ("core.useReplaceRefs=false",)',
            ),
        ),
        SURROUNDINGS,
    ),
    Mutation(
        "audit-own-git",
        "§1",
        "wotr/audit.py",
        (
            (
                '    argv, env = git.command(repo, "cat-file", "--batch")',
                '    argv, env = ["git", "cat-file", "--batch"], git._proc.clean_env()',
            ),
        ),
        ("tests/test_surroundings.py::test_audit_reads_the_notes_as_they_are",),
    ),
    Mutation(
        "symbolic-tag",
        "§2",
        "wotr/git.py",
        (
            (
                "    if symbolic and _tag_commit(repo, base) is not None:",
                "    if False:",
            ),
        ),
        ("tests/test_surroundings.py::test_a_symbolic_tag_does_not_switch_off_rule_6",),
    ),
    Mutation(
        "group-dash-dash-help",
        "§5",
        "wotr/cli.py",
        (
            (
                '        if args and args[0].startswith("-") and not ctx.resilient_parsing:',
                "        if False:",
            ),
        ),
        ("tests/test_cli.py::test_after_double_dash_a_group_takes_no_help_flag",),
    ),
    Mutation(
        "chain-reads-pinned-whole",
        "§2",
        "wotr/policycmd.py",
        (
            (
                "        return _fs.read_regular(path, policy_mod.MAX_POLICY_FILE, "
                "follow_symlinks=follow_symlinks)",
                "        return path.read_bytes()",
            ),
        ),
        ("tests/test_surroundings.py::test_a_planted_policy_chain_reads_no_pinned_file_whole",),
    ),
    Mutation(
        "policy-from-other-worktree",
        "§2",
        "wotr/git.py",
        (
            (
                "        return any(inside(other) for other in _worktrees(repo))",
                "        return False",
            ),
        ),
        (
            "tests/test_surroundings.py::"
            "test_a_projects_own_gitconfig_names_no_policy_in_a_linked_worktree",
        ),
    ),
    Mutation(
        "relative-wotr-policy",
        "§2",
        "wotr/git.py",
        (
            (
                "    if value is not None and not os.path.isabs(os.path.expanduser(value)):",
                "    if False:",
            ),
        ),
        ("tests/test_surroundings.py::test_a_relative_wotr_policy_is_refused",),
    ),
    Mutation(
        "git-dir-dropped",
        "§2",
        "wotr/_proc.py",
        (('        "GIT_DIR",\n', ""),),
        SURROUNDINGS,
    ),
    Mutation(
        "bare-discovery",
        "§2",
        "wotr/git.py",
        (('    res = _discover(cwd, "explicit")', '    res = _discover(cwd, "all")'),),
        SURROUNDINGS,
    ),
    Mutation(
        "bare-config-trusted",
        "§2",
        "wotr/git.py",
        (
            (
                'res, trusted = _discover(cwd, "all"), False',
                'res, trusted = _discover(cwd, "all"), True',
            ),
            ("        trusted = False\n    return Repo(", "        pass\n    return Repo("),
        ),
        SURROUNDINGS,
    ),
    Mutation(
        "policy-from-any-scope",
        "§2",
        "wotr/git.py",
        (
            (
                'allowed = _USER_SCOPES | ({"local", "worktree"} if repo.config_trusted else frozenset())',
                'allowed = _USER_SCOPES | {"local", "worktree"}',
            ),
        ),
        SURROUNDINGS,
    ),
    Mutation(
        "found-repository-pin",
        "§2",
        "wotr/commands/common.py",
        (
            (
                "common_dir=repo.common_dir if repo and repo.config_trusted else None,",
                "common_dir=repo.common_dir if repo else None,",
            ),
        ),
        SURROUNDINGS,
    ),
    Mutation(
        "policy-from-project-gitconfig",
        "§2",
        "wotr/git.py",
        (("if scope in allowed and not _in_work_tree(repo, origin)", "if scope in allowed"),),
        SURROUNDINGS,
    ),
    Mutation(
        "pinned-file-follows-link",
        "§2",
        "wotr/policy.py",
        (
            (
                "candidate, pin=pin, follow_symlinks=False, prepared=True, worktree=top",
                "candidate, pin=pin, prepared=True, worktree=top",
            ),
        ),
        SURROUNDINGS,
    ),
    Mutation(
        "policy-file-read-whole",
        "§2",
        "wotr/policy.py",
        (
            (
                "data = _fs.read_regular(file, MAX_POLICY_FILE, follow_symlinks=follow_symlinks)",
                "data = file.read_bytes()",
            ),
        ),
        SURROUNDINGS,
    ),
    Mutation(
        "init-writes-through-link",
        "§2",
        "wotr/init.py",
        (
            ("    if os.path.lexists(path):", "    if path.exists():"),
            ("os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW", "os.O_WRONLY | os.O_CREAT"),
        ),
        SURROUNDINGS,
    ),
    Mutation(
        "init-keys-dir-link",
        "§2",
        "wotr/init.py",
        (('        if (top / "keys").is_symlink():', "        if False:"),),
        SURROUNDINGS,
    ),
    Mutation(
        "build-resolves-rev-twice",
        "§10.6",
        "wotr/build.py",
        (
            ("        rev=built.commit,", "        rev=built.rev,"),
            ("        revision=revision,\n", ""),
        ),
        (
            "tests/test_build.py::test_a_build_that_moves_head_or_its_branch_signs_the_commit_it_built",
        ),
    ),
    Mutation(
        "build-signs-after-tag-moved",
        "§10.6",
        "wotr/build.py",
        (("        if now != built.commit:", "        if False:"),),
        (
            "tests/test_build.py::test_a_tag_moved_during_the_build_is_refused_and_nothing_is_signed",
        ),
    ),
    Mutation(
        "build-signs-changed-copy",
        "§10.6",
        "wotr/build.py",
        (("        if digest != art.sha256:", "        if False:"),),
        (
            "tests/test_build.py::test_a_kept_artifact_changed_before_signing_leaves_the_notes_ref_as_it_was",
        ),
    ),
    Mutation(
        "merge-walks-reused-trees",
        "§10.6",
        "wotr/notes_merge.py",
        (("            if len(self.r[entry.id]) == 0:", "            if True:"),),
        ("tests/test_sync.py::test_a_remote_tree_of_billions_of_paths_is_refused_quickly",),
    ),
    Mutation(
        "merge-reads-copies-unbounded",
        "§10.6",
        "wotr/notes_merge.py",
        (("            if self.repeated <= MAX_NOTE_BYTES:", "            if True:"),),
        ("tests/test_sync.py::test_a_remote_copying_one_huge_note_to_every_path_is_refused",),
    ),
    Mutation(
        "merge-trusts-entry-modes",
        "§10.6",
        "wotr/notes_merge.py",
        (
            (
                '    if kind == "blob":\n        try:',
                "    if False:\n        try:",
            ),
            (
                "    return obj if obj is not None and obj.type_str == kind else None",
                "    return obj",
            ),
        ),
        ("tests/test_sync.py::test_a_notes_tree_with_mislabelled_objects_is_not_adopted",),
    ),
    # --- OCI registries (§11, wotr/oci/): a hostile registry can only make verification fail
    Mutation(
        "oci-manifest-digest",
        "§11",
        "wotr/oci/registry.py",
        (
            (
                "        if _DIGEST.fullmatch(reference) and digest != reference:",
                "        if False:",
            ),
        ),
        OCI_TESTS,
    ),
    Mutation(
        "oci-blob-digest",
        "§11",
        "wotr/oci/registry.py",
        (('        if got != size or "sha256:" + h.hexdigest() != digest:', "        if False:"),),
        OCI_TESTS,
    ),
    Mutation(
        "oci-byte-cap",
        "§11",
        "wotr/oci/registry.py",
        (("                if total > limit:", "                if False:"),),
        OCI_TESTS,
    ),
    Mutation(
        "oci-redirect-off-registry",
        "§11",
        "wotr/oci/registry.py",
        (("                if not anywhere:", "                if False:"),),
        OCI_TESTS,
    ),
    Mutation(
        "oci-credentials-follow-redirect",
        "§11",
        "wotr/oci/registry.py",
        (('                headers.pop("Authorization", None)', "                pass"),),
        OCI_TESTS,
    ),
    Mutation(
        "oci-token-realm-anywhere",
        "§11",
        "wotr/oci/registry.py",
        (
            (
                "        if creds is not None and auth.may_send(self.host, parts.netloc):",
                "        if creds is not None:",
            ),
        ),
        OCI_TESTS,
    ),
    Mutation(
        "oci-plain-http-anywhere",
        "§11",
        "wotr/oci/registry.py",
        (
            (
                'self.scheme = "http" if plain_http or is_loopback(host) else "https"',
                'self.scheme = "http"',
            ),
        ),
        OCI_TESTS,
    ),
    Mutation(
        "oci-deadline-watchdog",
        "§11",
        "wotr/oci/registry.py",
        (("            watchdog.start()", "            pass"),),
        OCI_TESTS,
    ),
    Mutation(
        "oci-unbounded-attachments",
        "§11",
        "wotr/oci/referrers.py",
        (("tuple(wotr[:MAX_ATTACHMENTS])", "tuple(wotr)"),),
        OCI_TESTS,
    ),
    Mutation(
        "oci-helm-chart-with-extras",
        "§11",
        "wotr/oci/check.py",
        (
            (
                "        if len(charts) == 1 and not others and len(found) <= 2:",
                "        if len(charts) == 1:",
            ),
        ),
        OCI_TESTS,
    ),
    # --- the policy chain (DESIGN §7) and withdrawals (§8), issue 11 ---
    Mutation(
        "chain-update-threshold",
        "§7",
        "wotr/chain.py",
        (("    ok = len(counted) >= needed", "    ok = len(counted) >= 1"),),
        CHAIN,
    ),
    Mutation(
        "chain-update-signers",
        "§7",
        "wotr/chain.py",
        (("        elif signer.name not in voters:", "        elif False:"),),
        CHAIN,
    ),
    Mutation(
        "chain-self-authorizing",
        "§7",
        "wotr/chain.py",
        (
            (
                "    voters = set(current.update_signers)",
                "    voters = set(candidate.update_signers)",
            ),
            (
                "        signer = current.signer_for(vote.fingerprint)",
                "        signer = candidate.signer_for(vote.fingerprint)",
            ),
        ),
        CHAIN,
    ),
    Mutation(
        "chain-statement-binding",
        "§7",
        "wotr/chain.py",
        (("        if vote.payload != expected:", "        if False:"),),
        CHAIN,
        also=(
            ("wotr/chainstore.py", (("        if env.payload != expected:", "        if False:"),)),
        ),
    ),
    Mutation(
        "chain-fork",
        "§7",
        "wotr/chain.py",
        (("    if len(valid) > 1:", "    if False:"),),
        CHAIN,
    ),
    Mutation(
        "chain-flood-unchecked",
        "§7",
        "wotr/chain.py",
        (("    if not complete:", "    if False:"),),
        CHAIN,
    ),
    Mutation(
        "chain-store-unread-stays-put",
        "§7",
        "wotr/chainstore.py",
        (("    if not store.complete:\n", "    if False:\n"),),
        CHAIN,
    ),
    Mutation(
        "chain-cut-listing-read-as-whole",
        "§7",
        "wotr/chainstore.py",
        (("    if res.returncode != 0 or res.truncated:", "    if res.returncode != 0:"),),
        CHAIN,
    ),
    # --- the policy chain inside bundles (issue 11, DESIGN §7) ---
    Mutation(
        "chain-bundle-carried-followed",
        "§7",
        "wotr/offline.py",
        (
            (
                "        policy, chain_notes = chain(list(carried.values()))",
                "        policy, chain_notes = chain([])",
            ),
        ),
        ("tests/test_chain_bundle.py::test_one_bundle_takes_the_installer_from_serial_1_to_3",),
    ),
    Mutation(
        "chain-bundle-union",
        "§7",
        "wotr/policycmd.py",
        (("    for source, data in carried:", "    for source, data in carried[:1]:"),),
        ("tests/test_chain_bundle.py::test_a_bundle_cannot_hide_the_chain_another_carries",),
    ),
    Mutation(
        "chain-bundle-bytes-cap",
        "§7",
        "wotr/policycmd.py",
        (("        if total > MAX_CHAIN_BYTES:  # rule 8, as for files", "        if False:"),),
        ("tests/test_chain_bundle.py::test_chain_bytes_over_all_bundles_fail_closed",),
    ),
    Mutation(
        "chain-union-proposal-cap",
        "§7",
        "wotr/policycmd.py",
        (("    if len(merged.proposals) > chainstore.MAX_PROPOSALS:", "    if False:"),),
        ("tests/test_chain_bundle.py::test_many_proposals_over_all_bundles_fail_closed",),
    ),
    Mutation(
        "chain-member-size-bound",
        "§7",
        "wotr/policycmd.py",
        (("        if len(data) > MAX_CHAIN_FILE_BYTES:", "        if False:"),),
        ("tests/test_chain_bundle.py::test_an_oversized_chain_member_is_ignored_not_followed",),
    ),
    Mutation(
        "chain-installer-pin-of-this-policy",
        "§7",
        "wotr/policycmd.py",
        (
            (
                '    if doc is None or not _same_source(doc.get("source"), given.path):',
                "    if doc is None:",
            ),
        ),
        ("tests/test_chain_bundle.py::test_another_policy_than_the_pinned_one_ignores_the_chain",),
    ),
    Mutation(
        "chain-deep-toml-no-crash",
        "§7",
        "wotr/chainstore.py",
        (
            (
                "    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):  # deep",
                "    except (UnicodeDecodeError, tomllib.TOMLDecodeError):  # deep",
            ),
        ),
        ("tests/test_chain_bundle.py::test_a_deeply_nested_proposal_is_no_crash",),
    ),
    Mutation(
        "installer-pin-never-back",
        "§7",
        "wotr/policycmd.py",
        (
            (
                "        if isinstance(serial, int) and not isinstance(serial, bool) and serial > st",
                "        if False and serial > st",
            ),
        ),
        ("tests/test_chain_bundle.py::test_pinning_again_never_moves_the_pin_back",),
    ),
    Mutation(
        "installer-pin-racing-verify-never-back",
        "§7",
        "wotr/policycmd.py",
        (
            (
                "                if chainstore.pin_state(state) != doc:  # another run moved it",
                "                if False:  # another run moved it",
            ),
        ),
        ("tests/test_chain_bundle.py::test_a_verify_racing_another_never_moves_the_pin_back",),
    ),
    Mutation(
        "installer-pin-state-of-another-user",
        "§7",
        "wotr/policycmd.py",
        (
            (
                "        return Installed(given)\n    _own_state(state)\n",
                "        return Installed(given)\n",
            ),
        ),
        ("tests/test_chain_bundle.py::test_a_pin_state_another_user_can_write_is_not_trusted",),
    ),
    Mutation(
        "init-unsigned-successor",
        "§7",
        "wotr/init.py",
        (("        if old is not None and loaded.serial > old:", "        if False:"),),
        ("tests/test_chain_bundle.py::test_init_refuses_a_higher_serial_no_signed_chain_reaches",),
    ),
    Mutation(
        "chain-files-beyond-cap-ignored",
        "§7",
        "wotr/policycmd.py",
        (
            (
                '            chainstore.Store((), (f"over {MAX_CHAIN_FILES} chain files; not followed",)'
                ", False)\n",
                '            chainstore.Store((), (f"over {MAX_CHAIN_FILES} chain files",), True)\n',
            ),
        ),
        CHAIN,
    ),
    Mutation(
        "chain-push-blocked-by-rewritten-history",
        "§7",
        "wotr/chainstore.py",
        (
            (
                "            if _has(repo, old, theirs):\n                return False",
                "            if True:\n                return False",
            ),
        ),
        CHAIN,
    ),
    Mutation(
        "chain-secure-reads-any-file",
        "§7, 8",
        "wotr/policycmd.py",
        (
            (
                "        return _fs.read_regular(path, policy_mod.MAX_POLICY_FILE, "
                "follow_symlinks=follow_symlinks)",
                "        return path.read_bytes()",
            ),
        ),
        CHAIN,
    ),
    Mutation(
        "chain-file-and-directory-of-one-name",
        "§7, 8",
        "wotr/chainstore.py",
        (("    if clash:  # a file and a directory", "    if False:  # a file and a directory"),),
        CHAIN,
    ),
    Mutation(
        "chain-proposal-reads-local-files",
        "§7",
        "wotr/chainstore.py",
        (("    _own_keys_only(p)\n", ""),),
        CHAIN,
    ),
    Mutation(
        "withdraw-ignored",
        "§8",
        "wotr/verify.py",
        (("    if withdrawals or left_out:", "    if False:"),),
        WITHDRAW,
    ),
    Mutation(
        "withdraw-by-anyone",
        "§8",
        "wotr/withdraw.py",
        (
            (
                "        line = everything.get(c.signer)",
                "        line = next(iter(everything.values()), None)",
            ),
        ),
        WITHDRAW,
    ),
    Mutation(
        "withdraw-copied",
        "§8",
        "wotr/withdraw.py",
        (("        if w.commit != commit or w.tree != tree:", "        if False:"),),
        WITHDRAW,
        also=(
            (
                "wotr/verify.py",
                (
                    (
                        "        if parsed.commit != ctx.commit or parsed.tree != ctx.tree:",
                        "        if isinstance(parsed, claim_mod.Claim) and (\n"
                        "            parsed.commit != ctx.commit or parsed.tree != ctx.tree\n"
                        "        ):",
                    ),
                ),
            ),
        ),
    ),
    Mutation(
        "withdraw-unchecked-worst-case",
        "§8",
        "wotr/verify.py",
        (
            (
                "    left_out = withdraw.left_out(policy, groups, kept)",
                "    left_out: list[tuple[int, frozenset[str]]] = []",
            ),
        ),
        WITHDRAW,
    ),
    Mutation(
        "withdraw-unchecked-ssh-worst-case",
        "§8",
        "wotr/withdraw.py",
        (
            (
                "    if _sshsig.is_sshsig(sig):\n        fpr = _sshsig.parse_signature(sig)",
                "    if _sshsig.is_sshsig(sig):\n        return frozenset()\n"
                "        fpr = _sshsig.parse_signature(sig)",
            ),
        ),
        ("tests/test_ssh_attacks.py",),
    ),
    Mutation(
        "show-excluded-claims-count",
        "7",
        "wotr/verify.py",
        (
            (
                "    if not result.excluded:\n        return lines",
                "    if True:\n        return lines",
            ),
        ),
        ("tests/test_budgets.py",),
    ),
    Mutation(
        "audit-ssh-lines",
        "§8",
        "wotr/audit.py",
        (
            (
                "                if _sshsig.parse_signature(env.sig).key.fingerprint in ids:",
                "                if False:",
            ),
        ),
        ("tests/test_ssh_attacks.py",),
    ),
    Mutation(
        "withdraw-unchecked-every-owner",
        "§8",
        "wotr/withdraw.py",
        (
            (
                "for name in sorted({n for i in ids for n in owners.get(i, ())}):",
                "for name in sorted({owners[i][0] for i in ids if i in owners}):",
            ),
        ),
        ("tests/test_consensus.py",),
    ),
    Mutation(
        "audit-tag-claims",
        "5",
        "wotr/audit.py",
        (
            (
                "counted=tuple(c for c in checked.counted if consensus.built_for_tag(c.claim, tag)),",
                "counted=checked.counted,",
            ),
        ),
        ("tests/test_audit.py::test_many_tags_on_one_commit_check_its_note_once",),
    ),
    # DESIGN §9: SSH claims (wotr/_sshsig.py, wotr/ssh.py, the policy's ssh field).
    Mutation(
        "ssh-namespace",
        "9",
        "wotr/_sshsig.py",
        (("    if namespace != NAMESPACE.encode():", "    if False:"),),
    ),
    Mutation(
        "ssh-issuer-gate",
        "8",
        "wotr/verify.py",
        (
            (
                "        ours = frozenset({fpr}) if any(f == fpr for f, _ in policy.ssh_keys) else frozenset()",
                "        ours = frozenset({fpr})",
            ),
        ),
    ),
    Mutation(
        "ssh-one-queue",
        "8",
        "wotr/verify.py",
        (("        ours = frozenset({fpr}) if any(", '        ours = frozenset({"ssh"}) if any('),),
    ),
    Mutation(
        "ssh-trailing-bytes",
        "3",
        "wotr/_sshsig.py",
        (("    inner = _Reader(r.string())\n    r.end()\n", "    inner = _Reader(r.string())\n"),),
    ),
    Mutation(
        "ssh-bad-signature-counts",
        "3",
        "wotr/ssh.py",
        (
            (
                '        if res.returncode == 0 and good.startswith(expected) and good.endswith(f" key {fpr}"):',
                "        if True:",
            ),
        ),
    ),
    Mutation(
        "ssh-rsa-bits",
        "9",
        "wotr/_sshsig.py",
        (("        if bits < MIN_RSA_BITS:", "        if False:"),),
    ),
    Mutation("ssh-dsa", "9", "wotr/_sshsig.py", (('    "ssh-dss": "DSA', '    "ssh-dsx": "DSA'),)),
    Mutation(
        "ssh-inprocess-accepts",
        "3",
        "wotr/ssh.py",
        (("            key.verify(sig.value, sig.signed_data(message))", "            pass"),),
    ),
    Mutation(
        "ssh-ed25519-canonical",
        "3",
        "wotr/_sshsig.py",
        (('int.from_bytes(value[32:], "little") >= _ED25519_L', "False"),),
    ),
    Mutation(
        "ssh-key-two-signers",
        "9",
        "wotr/policy.py",
        (("        if key.fingerprint in owner:", "        if False:"),),
    ),
    # the status page and the follower's log: a tag name is the attacker's text
    Mutation(
        "site-surrogate-escaped",
        "site",
        "wotr/site.py",
        (("        elif 0xD800 <= code <= 0xDFFF:", "        elif False:"),),
        ("tests/test_rebuilders.py::test_report_survives_a_tag_name_that_is_not_utf8",),
    ),
    Mutation(
        "follow-log-tag-escaped",
        "follow",
        "wotr/follow.py",
        (("        name = shown(tag)", "        name = tag"),),
        ("tests/test_rebuilders.py::test_follow_log_lines_show_hostile_tag_names_escaped",),
    ),
    Mutation(
        "site-output-link-refused",
        "site",
        "wotr/site.py",
        (('    if (out / "r").is_symlink():', "    if False:"),),
        ("tests/test_rebuilders.py::test_follow_and_report_never_write_through_a_symbolic_link",),
    ),
    Mutation(
        "follow-logs-link-refused",
        "follow",
        "wotr/follow.py",
        (("    if logs.is_symlink():", "    if False:"),),
        ("tests/test_rebuilders.py::test_follow_and_report_never_write_through_a_symbolic_link",),
    ),
    Mutation(
        "follow-claimed-after-crash",
        "7",
        "wotr/follow.py",
        (
            (
                "        if claimed_by(repo, own[0], tag, commit):",
                "        if entry is None and claimed_by(repo, own[0], tag, commit):",
            ),
        ),
        (
            "tests/test_rebuilders.py::test_follow_after_a_crash_between_sign_and_state_save_does_not_sign_again",
        ),
    ),
    # issue 17: a prepared policy is used only while it is what the policy's files give, and
    # only from where nobody else can write (DESIGN §6 rule 1)
    Mutation(
        "prepared-key-digests-checked",
        "1",
        "wotr/policy.py",
        (("            if read_digests[-1] != sha:", "            if False:"),),
        ("tests/test_prepared.py",),
    ),
    Mutation(
        "prepared-private-only",
        "1",
        "wotr/prepared.py",
        (
            (
                "    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)",
                "    return True",
            ),
        ),
        ("tests/test_prepared.py",),
    ),
    Mutation(
        "prepared-no-link",
        "1",
        "wotr/prepared.py",
        (
            (
                "        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)",
                "        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)",
            ),
        ),
        ("tests/test_prepared.py",),
    ),
    # attacker review (rev-startup): an entry that a commit carries, or one a relative
    # WOTR_CACHE_DIR finds in the checkout wotr runs in, is never used
    Mutation(
        "prepared-not-in-worktree",
        "1",
        "wotr/prepared.py",
        (
            (
                "    if inside == top or inside.startswith(top.rstrip(os.sep) + os.sep):",
                "    if False:",
            ),
        ),
        ("tests/test_prepared.py",),
    ),
    Mutation(
        "prepared-parent-owned",
        "1",
        "wotr/prepared.py",
        (
            (
                "    if _private(os.fstat(fd)) and parent_uid in (os.geteuid(), 0):",
                "    if _private(os.fstat(fd)):",
            ),
        ),
        ("tests/test_prepared.py",),  # killed when run as root (the test gives a directory away)
    ),
    Mutation(
        "prepared-entry-0600",
        "1",
        "wotr/prepared.py",
        (("                or st.st_mode & 0o077  #", "                or False  #"),),
        ("tests/test_prepared.py",),
    ),
    Mutation(
        "prepared-absolute-cache-dir",
        "1",
        "wotr/prepared.py",
        (
            (
                "return os.path.normpath(named) if os.path.isabs(named) else None",
                "return os.path.abspath(named)",
            ),
        ),
        ("tests/test_prepared.py",),
    ),
    Mutation(
        "prepared-derivation-checked",
        "1",
        "wotr/prepared.py",
        (('        and doc.get("derivation") == derivation()', ""),),
        ("tests/test_prepared.py",),
    ),
    # issue 17: programs started without subprocess get what subprocess gave them
    Mutation(
        "spawn-closes-inherited-fds",
        "1",
        "wotr/_proc.py",
        (("        *((os.POSIX_SPAWN_CLOSE, fd) for fd in closing),\n", ""),),
        ("tests/test_proc.py",),
    ),
    Mutation(
        "spawn-default-sigpipe",
        "1",
        "wotr/_proc.py",
        (("            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),\n", ""),),
        ("tests/test_proc.py",),
    ),
    Mutation(
        "spawn-stdout-capped",
        "8",
        "wotr/_proc.py",
        (
            (
                "                    if limit is not None and sizes[fd] > limit:",
                "                    if False:",
            ),
        ),
        ("tests/test_proc.py",),
    ),
    Mutation(
        "repo-pin-racing-verify-never-back",
        "§7",
        "wotr/policycmd.py",
        (
            (
                "            if chain.policy_digest(now) != chain.policy_digest(start):",
                "            if False:",
            ),
        ),
        (
            "tests/test_chain.py::test_a_verify_racing_another_in_the_repository_never_moves_the_pin_back",
        ),
    ),
    Mutation(
        "installer-pin-any-spelling",
        "§7",
        "wotr/policycmd.py",
        (
            (
                "    return pinned == str(path) or os.path.realpath(pinned) == os.path.realpath(path)",
                "    return pinned == str(path)",
            ),
        ),
        (
            "tests/test_chain_bundle.py::test_the_pinned_policy_under_another_spelling_follows_the_chain",
        ),
    ),
    Mutation(
        "init-lost-pin-unknown-serial",
        "§7",
        "wotr/init.py",
        (
            (
                "        if old is None and ahead is None and loaded.serial > 1 and policycmd.pin_lost(repo):",
                "        if False:",
            ),
        ),
        (
            "tests/test_chain_bundle.py::test_init_refuses_a_higher_serial_when_the_pinned_files_are_lost",
        ),
    ),
]
MUTATIONS += HOOK_MUTATIONS


def run(mutation: Mutation, scratch: Path) -> bool:
    """True when the mutation is killed (some test fails)."""
    for file, edits in mutation.also:
        text = (ROOT / file).read_text()
        for old, new in edits:
            if old not in text:
                raise SystemExit(f"{mutation.name}: pattern not found in {file}: {old!r}")
            text = text.replace(old, new)
        (scratch / file).write_text(text)
    try:
        return _run_one(mutation, scratch)
    finally:
        for file, _ in mutation.also:
            (scratch / file).write_text((ROOT / file).read_text())


def _run_one(mutation: Mutation, scratch: Path) -> bool:
    target = scratch / mutation.file
    original = (ROOT / mutation.file).read_text()
    text = original
    for old, new in mutation.edits:
        if old not in text:
            raise SystemExit(f"{mutation.name}: pattern not found in {mutation.file}: {old!r}")
        text = text.replace(old, new)
    target.write_text(text)
    try:
        env = {**os.environ, "PYTHONPATH": str(scratch)}
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-x",
                "-q",
                "-n",
                "2",
                "-p",
                "no:cacheprovider",
                *(mutation.tests or TESTS),
            ],
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return res.returncode != 0
    finally:
        target.write_text(original)


def missing_patterns(mutations: list[Mutation]) -> list[str]:
    out = []
    for m in mutations:
        text = (ROOT / m.file).read_text()
        out += [f"{m.name}: {old!r} not in {m.file}" for old, _ in m.edits if old not in text]
        for file, edits in m.also:
            extra = (ROOT / file).read_text()
            out += [f"{m.name}: {old!r} not in {file}" for old, _ in edits if old not in extra]
    return out


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTATIONS if not argv or m.name in argv]
    missing = missing_patterns(chosen)
    if missing:
        print("the source changed; update these mutations:", *missing, sep="\n  ")
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="wotr-mut-"))
    try:
        shutil.copytree(
            ROOT,
            scratch,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.pyc"),
        )
        survived = []
        for m in chosen:
            killed = run(m, scratch)
            print(
                f"rule {m.rule:>3}  {m.name:<28} {'killed' if killed else 'SURVIVED'}", flush=True
            )
            if not killed:
                survived.append(m.name)
        print(f"{len(chosen) - len(survived)}/{len(chosen)} mutations killed")
        return 1 if survived else 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
