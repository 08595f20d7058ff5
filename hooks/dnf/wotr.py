"""wotr dnf plugin: refuse package files that wotr cannot verify, before rpm installs them.

dnf 4 calls ``pre_transaction()`` after resolving and downloading and before the rpm
transaction runs.  The plugin collects ``pkg.localPkg()`` of every package in
``base.transaction.install_set`` (installs, upgrades, reinstalls, downgrades: the cached
download for repository packages, the given path for local files) and hands them to the shared
fail-closed runner (wotr_hooklib.py, installed beside this file or in /usr/local/lib/wotr/hooks):
ONE `wotr verify --json` run from ``/`` over every in-scope file; anything but "verified" raises
``dnf.exceptions.Error``, which makes dnf abort with nothing installed.  The policy and bundles
are the HOST's (the machine running dnf), also with --installroot.

Settings: ``policy`` / ``bundles`` in [main] of the plugin's wotr.conf, else $WOTR_POLICY /
$WOTR_BUNDLES, else /etc/wotr/hooks.toml (or $WOTR_HOOKS_CONFIG), else the defaults.  The scope
of hooks.toml: package-name patterns, and ``[scope.dnf] repos`` (dnf repo ids; a local file's
repo id is ``@commandline``).  Any other key in [main] than enabled, policy, bundles refuses.

If the shared runner cannot be imported, the plugin still loads and refuses every transaction
(dnf would otherwise go on without a plugin that failed to import).  To install a refused
package knowingly: ``dnf --disableplugin=wotr``.  Standard library + dnf only.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import dnf  # type: ignore[import-not-found, unused-ignore]
import dnf.exceptions  # type: ignore[import-not-found, unused-ignore]

DISABLE_HINT = "disable the plugin knowingly with `dnf --disableplugin=wotr ...`"
LIB_DIRS = ("/usr/local/lib/wotr/hooks", "/usr/lib/wotr/hooks")
KNOWN_OPTIONS = frozenset({"enabled", "policy", "bundles"})

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here), *LIB_DIRS]
try:
    import wotr_hooklib as lib  # type: ignore[import-not-found, unused-ignore]
except Exception as exc:  # refuse every transaction instead of failing to load (fail open)
    lib = None  # type: ignore[assignment, unused-ignore]
    _LIB_ERROR = f"{type(exc).__name__}: {exc}"


def _error(lines: list[str]) -> Any:
    clean = lib.clean if lib is not None else (lambda t: t.encode("ascii", "replace").decode())
    return dnf.exceptions.Error("\n".join(f"wotr: {clean(line)}" for line in lines))


def check(
    packages: list[tuple[str, str, str, str]], *, policy: str = "", bundles: str = ""
) -> None:
    """Verify (label, path, name, repo id) tuples; raise dnf.exceptions.Error when they may
    not be installed.  `policy` / `bundles`: the plugin configuration's values ("" = unset)."""
    if lib is None:
        raise _error(
            [
                "REFUSED: the packages of this transaction: wotr failed: cannot load "
                f"wotr_hooklib.py ({_LIB_ERROR}); nothing was installed (fail closed). "
                f"Reinstall the hooks, or {DISABLE_HINT}."
            ]
        )
    labels = [p[0] for p in packages]
    try:
        for label, path, _, _ in packages:
            if not path or not os.path.isfile(path):
                raise lib.HookError(f"package file for {label} not found at {path!r}")
        s = lib.settings(policy=policy or None, bundles=bundles or None)
        items = [
            lib.Item(label, os.path.abspath(path), name, frozenset({f"repos:{repo}"}))
            for label, path, name, repo in packages
        ]
        verdict = lib.check(items, s, manager="dnf", disable_hint=DISABLE_HINT, prog="wotr")
    except lib.HookError as exc:
        verdict = lib.refuse_all(labels, str(exc), DISABLE_HINT)
    except Exception as exc:  # fail closed on our own bugs too
        verdict = lib.refuse_all(
            labels, f"internal error: {type(exc).__name__}: {exc}", DISABLE_HINT
        )
    if not verdict.ok:
        raise _error(verdict.lines)
    for line in verdict.lines:
        lib.say("wotr", line)


class Wotr(dnf.Plugin):  # type: ignore[misc]
    name = "wotr"

    def _options(self) -> dict[str, str]:
        """[main] of the plugin's wotr.conf, as dnf's own parser reads it (libdnf's ConfigParser:
        option names as written; an unknown one is refused, not ignored)."""
        try:
            parser = self.read_config(self.base.conf)
            found: dict[str, str] = {}
            if parser.has_section("main"):
                for key in parser.options("main"):
                    folded = str(key).strip().lower()
                    if folded not in KNOWN_OPTIONS:
                        raise ValueError(
                            f"unknown option {key!r} in [main] (known: enabled, policy, bundles)"
                        )
                    found[folded] = str(parser.getValue("main", key)).strip()
            return found
        except Exception as exc:
            raise _error(
                [
                    f"REFUSED: the packages of this transaction: cannot read the wotr plugin "
                    f"configuration: {exc}; nothing was installed (fail closed)."
                ]
            ) from None

    def pre_transaction(self) -> None:
        transaction = self.base.transaction
        if transaction is None:
            return
        packages = [
            (str(pkg), str(pkg.localPkg() or ""), str(pkg.name), str(pkg.reponame))
            for pkg in transaction.install_set
        ]
        if not packages:
            return
        options = self._options()
        check(
            sorted(packages), policy=options.get("policy", ""), bundles=options.get("bundles", "")
        )
