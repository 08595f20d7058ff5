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

Errors fail closed; ``WOTR_HOOK_ALLOW_UNVERIFIED=1`` lets errors (never rejections) through with a
loud warning.  Install: copy to a dnf plugin directory (e.g.
/usr/lib/python3/dist-packages/dnf-plugins/ on Debian, /usr/lib/python3.X/site-packages/
dnf-plugins/ on Fedora) and wotr.conf to /etc/dnf/plugins/.  Standard library + dnf only.
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
    pass


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


def _run(cmd: list[str], paths: list[str], quiet: bool = False) -> int:
    out: int = subprocess.DEVNULL if quiet else sys.stderr.fileno()
    raw = os.environ.get("WOTR_HOOK_TIMEOUT", "")
    try:
        limit = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        raise _HookError(f"WOTR_HOOK_TIMEOUT={raw!r} is not a number") from None
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
        raise _HookError(f"verifier {cmd[0]!r} not found (WOTR_VERIFY_CMD / PATH)") from None
    except subprocess.TimeoutExpired:
        raise _HookError("verifier did not finish in time") from None
    except OSError as exc:
        raise _HookError(f"cannot run verifier {cmd[0]!r}: {exc.strerror}") from None
    return proc.returncode


def _override_requested() -> bool:
    value = os.environ.get(OVERRIDE_VAR)
    if value is None:
        return False
    if value == "1":
        return True
    _say(f"ignoring {OVERRIDE_VAR}={value!r}: only the exact value 1 overrides")
    return False


def check(packages: list[tuple[str, str]], *, policy: str = "", bundles: str = "") -> None:
    """Verify (label, path) pairs; raise dnf.exceptions.Error when they may not be installed.

    `policy` / `bundles`: the plugin configuration's values ("" = not set)."""
    try:
        if not packages:
            return
        for label, path in packages:
            if not path or not os.path.isfile(path):
                raise _HookError(f"package file for {label} not found at {path!r}")
        cmd = _verify_command(policy, bundles)
        paths = [os.path.abspath(p) for _, p in packages]
        rc = _run(cmd, paths)
        if rc == V_OK:
            _say(f"verified {len(packages)} package file(s)")
            return
        if rc == V_UNVERIFIED:
            bad: list[str] = []
            if len(packages) == 1:
                bad = [packages[0][0]]
            elif len(packages) <= MAX_RECHECK:
                try:
                    bad = [lb for lb, p in packages if _run(cmd, [os.path.abspath(p)], True) != 0]
                except _HookError:
                    bad = []
            names = (
                ", ".join(bad) if bad else "at least one of " + ", ".join(lb for lb, _ in packages)
            )
            raise dnf.exceptions.Error(
                f"wotr: REFUSED: not verified: {names}. Nothing was installed. "
                f"{OVERRIDE_VAR} never lets a rejected package through; {DISABLE_HINT}."
            )
        if rc == V_BAD_INPUT:
            raise _HookError(f"verifier reported bad input (exit {rc})")
        if rc == V_ENVIRONMENT:
            raise _HookError(f"verifier reported an environment problem (exit {rc})")
        if rc < 0:
            raise _HookError(f"verifier was killed by signal {-rc}")
        raise _HookError(f"verifier failed with unexpected exit code {rc}")
    except _HookError as exc:
        _fail_closed(str(exc))
    except dnf.exceptions.Error:
        raise
    except Exception as exc:
        _fail_closed(f"internal error: {type(exc).__name__}: {exc}")


def _fail_closed(reason: str) -> None:
    if _override_requested():
        bar = "!" * 72
        _say(bar)
        _say(f"WARNING: {reason}")
        _say(f"WARNING: {OVERRIDE_VAR}=1 is set: installing packages that were NOT verified.")
        _say(bar)
        return
    raise dnf.exceptions.Error(
        f"wotr: {reason}; refusing to install unverified packages (fail closed). To install "
        f"anyway, knowingly: rerun with {OVERRIDE_VAR}=1, or {DISABLE_HINT}."
    )


class Wotr(dnf.Plugin):  # type: ignore[misc]
    name = "wotr"

    def _option(self, key: str) -> str:
        """`key` of [main] in the plugin's wotr.conf ("" when unset)."""
        try:
            parser = self.read_config(self.base.conf)
            if parser.has_section("main") and parser.has_option("main", key):
                return str(parser.getValue("main", key)).strip()
        except Exception as exc:
            _fail_closed(f"cannot read the wotr plugin configuration: {exc}")
        return ""

    def pre_transaction(self) -> None:
        transaction = self.base.transaction
        if transaction is None:
            return
        packages = [(str(pkg), str(pkg.localPkg() or "")) for pkg in transaction.install_set]
        if not packages:
            return
        check(sorted(packages), policy=self._option("policy"), bundles=self._option("bundles"))
