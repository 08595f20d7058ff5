"""wotr dnf plugin: refuse package files that wotr cannot verify, before rpm installs them.

dnf 4 calls ``pre_transaction()`` after resolving and downloading and before the rpm
transaction runs.  The plugin collects ``pkg.localPkg()`` of every package in
``base.transaction.install_set`` (installs, upgrades, reinstalls, downgrades: the cached
download for repository packages, the given path for local files), runs the verifier ONCE on all
of them, with cwd ``/`` -- ``$WOTR_VERIFY_CMD`` (default ``wotr verify``, split with shlex),
``--policy P`` when wotr.conf sets ``policy``, ALWAYS ``--bundles DIR`` (wotr.conf ``bundles``,
else $WOTR_BUNDLES, else /var/lib/wotr/bundles), ``--`` and the absolute paths -- and raises
``dnf.exceptions.Error`` unless it exits 0, which makes dnf abort with nothing installed.
``--bundles`` and cwd ``/`` make ``wotr verify`` read bundles (and FILE.wotr sidecars) as an
installer must, never the notes and pinned policy of a git repository dnf was started in.  The
policy and bundles are the HOST's (the machine running dnf), also with --installroot.

Fail closed: only exit 0 installs.  The verifier's exit 1, 2, 3 or any other code, death by a
signal, a timeout and every error of the plugin itself refuse, whatever the environment says:
attacker-controlled files (a garbage sidecar, a hostile bundle, a FIFO) can cause any of them.
``WOTR_HOOK_ALLOW_UNVERIFIED=1`` (exactly 1) has ONE effect: when the verifier cannot be started at
all (command missing or not executable, so it read nothing), the packages are installed UNVERIFIED
under a loud banner.  To install a refused package knowingly: ``dnf --disableplugin=wotr``.

Install: copy to a dnf plugin directory (e.g. /usr/lib/python3/dist-packages/dnf-plugins/ on
Debian, /usr/lib/python3.X/site-packages/dnf-plugins/ on Fedora) and wotr.conf to
/etc/dnf/plugins/.  Standard library + dnf only.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys

import dnf  # type: ignore[import-not-found, unused-ignore]
import dnf.exceptions  # type: ignore[import-not-found, unused-ignore]

logger = logging.getLogger("dnf.plugin.wotr")

OVERRIDE_VAR = "WOTR_HOOK_ALLOW_UNVERIFIED"
DEFAULT_VERIFY_CMD = "wotr verify"
DEFAULT_BUNDLES = "/var/lib/wotr/bundles"
DEFAULT_TIMEOUT = 900.0
V_OK, V_UNVERIFIED, V_BAD_INPUT, V_ENVIRONMENT = 0, 1, 2, 3
MAX_RECHECK = 64
DISABLE_HINT = "disable the plugin knowingly with `dnf --disableplugin=wotr ...`"


class _HookError(Exception):
    """Anything that stops the plugin from reaching a verdict: always refuses."""


class _NotStarted(Exception):
    """The verifier could not be started at all (missing, not executable): nothing was read."""


def _say(msg: str) -> None:
    print(f"wotr: {msg}", file=sys.stderr, flush=True)


def _verify_command(policy: str = "", bundles: str = "") -> list[str]:
    raw = os.environ.get("WOTR_VERIFY_CMD", DEFAULT_VERIFY_CMD)
    try:
        cmd = shlex.split(raw)
    except ValueError as exc:
        raise _HookError(f"WOTR_VERIFY_CMD={raw!r} cannot be split: {exc}") from None
    if not cmd:
        raise _HookError("WOTR_VERIFY_CMD is empty")
    if policy:
        cmd += ["--policy", policy]
    bundles = bundles or os.environ.get("WOTR_BUNDLES", "") or DEFAULT_BUNDLES
    if not os.path.isabs(bundles):
        raise _HookError(f"bundles directory {bundles!r} must be an absolute path")
    if not os.path.isdir(bundles):
        raise _HookError(
            f"bundles directory {bundles} does not exist: create it (it may stay empty when "
            "every package has a FILE.wotr sidecar), or set bundles= in the plugin's wotr.conf"
        )
    return [*cmd, "--bundles", bundles]


def _timeout() -> float:
    raw = os.environ.get("WOTR_HOOK_TIMEOUT", "")
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise _HookError(f"WOTR_HOOK_TIMEOUT={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise _HookError(f"WOTR_HOOK_TIMEOUT={raw!r} must be positive")
    return value


def _run(cmd: list[str], paths: list[str], quiet: bool = False) -> int | None:
    """The verifier's exit code (negative: killed by that signal), None on timeout.  Raises
    _NotStarted only when the command cannot be executed at all, _HookError otherwise."""
    out: int = subprocess.DEVNULL if quiet else sys.stderr.fileno()
    limit = _timeout()
    try:
        proc = subprocess.run(
            [*cmd, "--", *paths],
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            timeout=limit,
        )
    except FileNotFoundError:
        raise _NotStarted(f"verifier {cmd[0]!r} not found (WOTR_VERIFY_CMD / PATH)") from None
    except PermissionError:
        raise _NotStarted(f"verifier {cmd[0]!r} is not executable") from None
    except subprocess.TimeoutExpired:
        return None
    except OSError as exc:
        raise _HookError(f"cannot run verifier {cmd[0]!r}: {exc.strerror}") from None
    return proc.returncode


def _describe(rc: int | None) -> str:
    if rc is None:
        return f"the verifier did not finish within {_timeout():g} s (WOTR_HOOK_TIMEOUT)"
    if rc == V_UNVERIFIED:
        return "not verified by wotr"
    if rc == V_BAD_INPUT:
        return f"the verifier reported bad input (exit {rc}), see its message above"
    if rc == V_ENVIRONMENT:
        return f"the verifier reported an environment problem (exit {rc}), see above"
    if rc < 0:
        return f"the verifier was killed by signal {-rc}"
    return f"the verifier failed with unexpected exit code {rc}"


def _culprits(cmd: list[str], packages: list[tuple[str, str]], rc: int | None) -> list[str]:
    """Labels to name as refused: re-checked one by one when the run failed with an exit code;
    every label when they cannot be told apart."""
    labels = [lb for lb, _ in packages]
    if len(packages) == 1 or rc is None or rc < 0 or len(packages) > MAX_RECHECK:
        return labels  # a hang or a crash is not worth repeating once per file
    try:
        bad = [lb for lb, p in packages if _run(cmd, [os.path.abspath(p)], True) != V_OK]
    except (_HookError, _NotStarted):
        return labels  # the verdict (refused) stands; only the naming failed
    return bad or labels


def _override_requested() -> bool:
    value = os.environ.get(OVERRIDE_VAR)
    if value is None:
        return False
    if value == "1":
        return True
    _say(f"ignoring {OVERRIDE_VAR}={value!r}: only the exact value 1 overrides")
    return False


def _refuse(names: list[str], reason: str, *, not_started: bool = False) -> dnf.exceptions.Error:
    what = ", ".join(names) if names else "the packages of this transaction"
    if not_started:
        hint = (
            f"Install the verifier or fix WOTR_VERIFY_CMD; to install anyway, knowingly and "
            f"UNVERIFIED: rerun with {OVERRIDE_VAR}=1 (it applies only while the verifier cannot "
            f"be started at all), or {DISABLE_HINT}."
        )
    else:
        hint = (
            f"To install anyway, {DISABLE_HINT}. {OVERRIDE_VAR}=1 does not apply: it only lets "
            "packages through when the verifier cannot be started at all."
        )
    return dnf.exceptions.Error(
        f"wotr: REFUSED: {what}: {reason}. Nothing was installed (fail closed). {hint}"
    )


def check(packages: list[tuple[str, str]], *, policy: str = "", bundles: str = "") -> None:
    """Verify (label, path) pairs; raise dnf.exceptions.Error when they may not be installed.

    `policy` / `bundles`: the plugin configuration's values ("" = not set)."""
    labels = [lb for lb, _ in packages]
    try:
        if not packages:
            return
        for label, path in packages:
            if not path or not os.path.isfile(path):
                raise _HookError(f"package file for {label} not found at {path!r}")
        cmd = _verify_command(policy, bundles)
        paths = [os.path.abspath(p) for _, p in packages]
        try:
            rc = _run(cmd, paths)
        except _NotStarted as exc:
            # The one case the override covers: nothing, attacker-controlled or not, was read.
            if not _override_requested():
                raise _refuse(labels, str(exc), not_started=True) from None
            bar = "!" * 72
            _say(bar)
            _say(f"WARNING: {exc}")
            _say(f"WARNING: {OVERRIDE_VAR}=1 is set: installing {len(labels)} package(s) that")
            _say(f"WARNING: were NOT verified by anyone: {', '.join(labels)}")
            _say(bar)
            return
        if rc == V_OK:
            _say(f"verified {len(packages)} package file(s)")
            return
        raise _refuse(_culprits(cmd, packages, rc), _describe(rc))
    except _HookError as exc:
        raise _refuse(labels, str(exc)) from None
    except dnf.exceptions.Error:
        raise
    except Exception as exc:  # fail closed on our own bugs too
        raise _refuse(labels, f"internal error: {type(exc).__name__}: {exc}") from None


class Wotr(dnf.Plugin):  # type: ignore[misc]
    name = "wotr"

    def _option(self, key: str) -> str:
        """`key` of [main] in the plugin's wotr.conf ("" when unset)."""
        try:
            parser = self.read_config(self.base.conf)
            if parser.has_section("main") and parser.has_option("main", key):
                return str(parser.getValue("main", key)).strip()
        except Exception as exc:
            raise _refuse([], f"cannot read the wotr plugin configuration: {exc}") from None
        return ""

    def pre_transaction(self) -> None:
        transaction = self.base.transaction
        if transaction is None:
            return
        packages = [(str(pkg), str(pkg.localPkg() or "")) for pkg in transaction.install_set]
        if not packages:
            return
        check(sorted(packages), policy=self._option("policy"), bundles=self._option("bundles"))
