"""wotr_hooklib: the fail-closed runner that every wotr installer hook shares.

Installed beside the hooks (hooks/wotr_hooklib.py; each hook finds it in its own directory or
the one above), standard library only, never imports wotr: the hooks must keep refusing when
wotr itself is broken.  One copy of every rule, so a fix lands once:

* the settings -- /etc/wotr/hooks.toml (or $WOTR_HOOKS_CONFIG), DESIGN.md section 10, and the
  environment variables ($WOTR_POLICY, $WOTR_BUNDLES, $WOTR_VERIFY_CMD, $WOTR_HOOK_TIMEOUT,
  $WOTR_HOOK_ALLOW_UNVERIFIED), each read exactly one way (`env`);
* the scope: which packages must verify (`Scope.covers`);
* ONE verifier run over every in-scope file (`check`), its outcome described, the culprits
  named from the verifier's own ``--json`` report (never by re-running it), the refusal and the
  one override.

Fail closed: only the verifier's exit 0 together with its report saying ``"verified": true``
lets anything through.  Exit 1 with a report is "not verified"; every other outcome (exit 1
without a report -- a crash or an import error --, exit 2, 3 or any other code, a signal, a
timeout, an unreadable configuration, an error of the hook) is "wotr failed: ..." and refuses.
``WOTR_HOOK_ALLOW_UNVERIFIED=1`` (exactly 1) has one effect: when the verifier cannot be started
at all (missing or not executable, so it read nothing), the files go through UNVERIFIED under a
loud banner.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import os
import shlex
import signal
import stat
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

OVERRIDE_VAR = "WOTR_HOOK_ALLOW_UNVERIFIED"
CONFIG_VAR = "WOTR_HOOKS_CONFIG"
DEFAULT_CONFIG = "/etc/wotr/hooks.toml"
DEFAULT_VERIFY_CMD = "wotr verify"
DEFAULT_POLICY = "/etc/wotr/policy.toml"
DEFAULT_BUNDLES = "/var/lib/wotr/bundles"
DEFAULT_TIMEOUT = 900.0
#: Every environment variable a hook reads.  A variable whose name differs from one of these
#: only in case (``wotr_policy``) is refused: ignoring it would quietly fall back to a default.
ENV_VARS = (
    "WOTR_POLICY",
    "WOTR_BUNDLES",
    "WOTR_VERIFY_CMD",
    "WOTR_HOOK_TIMEOUT",
    CONFIG_VAR,
    OVERRIDE_VAR,
    "WOTR_PACMAN_CACHEDIR",
)
MAX_CONFIG_BYTES = 1 << 20
MAX_REPORT_BYTES = 256 << 20
MAX_STDERR_SHOWN = 64 << 10
# Exit codes of `wotr verify` (DESIGN.md section 2).
V_OK, V_UNVERIFIED, V_BAD_INPUT, V_ENVIRONMENT = 0, 1, 2, 3
#: Package managers that have source selectors in [scope], and the selectors each takes.
SELECTORS = {
    "apt": ("origins", "labels", "sites"),
    "pacman": ("repositories",),
    "dnf": ("repos",),
}


class HookError(Exception):
    """Anything that stops the hook from reaching a verdict: always refuses."""


class NotStarted(Exception):
    """The verifier could not be started at all (missing, not executable): nothing was read."""


def clean(text: str) -> str:
    """`text` with every unprintable character (terminal escapes from a hostile bundle or file
    name, newlines) shown as '?': one message is one line, and only text reaches the terminal."""
    return "".join(c if c.isprintable() else "?" for c in text)


def say(prog: str, msg: str) -> None:
    print(f"{prog}: {clean(msg)}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- environment


def env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of one of ENV_VARS; None when unset or set to the empty string.

    Refuses when a variable with the same name in another case is set (``Wotr_Policy``): the
    caller meant it, and quietly using a default instead is how a hook loses its policy."""
    assert name in ENV_VARS, name
    environ = os.environ if environ is None else environ
    for other in environ:
        if other != name and other.upper() == name:
            raise HookError(
                f"environment variable {other} is set: the name is {name} (upper case); "
                f"rename it (or unset {other})"
            )
    value = environ.get(name)
    return value if value else None


def override_requested(prog: str) -> bool:
    value = env(OVERRIDE_VAR)
    if value is None:
        return False
    if value == "1":
        return True
    say(prog, f"ignoring {OVERRIDE_VAR}={value!r}: only the exact value 1 overrides")
    return False


def parse_timeout(raw: object, where: str) -> float:
    """A positive, finite number of seconds (bool, NaN and infinity are not)."""
    if isinstance(raw, bool):
        raise HookError(f"{where}={raw!r} is not a number of seconds")
    if isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise HookError(f"{where}={raw!r} is not a number of seconds") from None
    elif isinstance(raw, (int, float)):
        value = float(raw)
    else:
        raise HookError(f"{where}={raw!r} is not a number of seconds")
    if not math.isfinite(value) or value <= 0:
        raise HookError(f"{where}={raw!r} must be a positive number of seconds")
    return value


def absolute(path: str, where: str, *, relative_to: str | None = None) -> str:
    """`path` made absolute: against `relative_to` (a caller's working directory), else refused
    (a package manager's working directory means nothing to the administrator)."""
    if "\0" in path:
        raise HookError(f"{where} contains a NUL byte")
    if os.path.isabs(path):
        return os.path.normpath(path)
    if relative_to is None:
        raise HookError(f"{where}={path!r} must be an absolute path")
    return os.path.normpath(os.path.join(relative_to, path))


# --------------------------------------------------------------------------- hooks.toml


@dataclass(frozen=True)
class Scope:
    """Which packages must verify (DESIGN.md section 10).  None everywhere: every package."""

    packages: tuple[str, ...] | None = None
    selectors: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)

    def applies(self, manager: str) -> bool:
        """Whether anything narrows the scope for `manager` (else every package is in it)."""
        return self.packages is not None or bool(self.selectors.get(manager))

    def needs_sources(self, manager: str) -> bool:
        return bool(self.selectors.get(manager))

    def covers(self, manager: str, name: str | None, sources: Iterable[str] | None) -> bool:
        """Whether a package must verify.

        `name` is the package name (None: unknown); `sources` are what the package manager's
        selectors match (apt: "origins:X", "labels:X", "sites:HOST"; pacman:
        "repositories:NAME"; dnf: "repos:ID"),
        None when they cannot be known for certain.  Anything unknown is inside.
        A package is inside when its name matches a pattern OR one of its sources matches a
        selector; with no pattern and no selector for `manager`, every package is inside."""
        if not self.applies(manager):
            return True
        if self.packages is not None and (
            name is None or any(fnmatch.fnmatchcase(name, p) for p in self.packages)
        ):
            return True
        wanted = self.selectors.get(manager) or {}
        if not wanted:
            return False
        if sources is None:
            return True
        for source in sources:
            kind, _, value = source.partition(":")
            if any(fnmatch.fnmatchcase(value, p) for p in wanted.get(kind, ())):
                return True
        return False


@dataclass(frozen=True)
class Config:
    path: str  # the file read, or "" when the default file does not exist
    policy: str | None = None
    bundles: str | None = None
    timeout: float | None = None
    scope: Scope = field(default_factory=Scope)


def _patterns(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise HookError(f"{where} must be a non-empty list of strings")
    for p in value:
        if not isinstance(p, str) or not p or "\0" in p:
            raise HookError(f"{where} holds {p!r}: every entry must be a non-empty string")
    return tuple(value)


def _unknown(table: Mapping[str, object], known: Iterable[str], where: str) -> None:
    extra = sorted(set(table) - set(known))
    if extra:
        raise HookError(f"{where}: unknown key {extra[0]!r} (known: {', '.join(sorted(known))})")


def parse_config(text: str, path: str) -> Config:
    """hooks.toml's content; anything unknown or of the wrong type is an error (refuses)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HookError(f"{path} is not valid TOML: {exc}") from None
    _unknown(doc, ("policy", "bundles", "timeout", "scope"), path)
    strings: dict[str, str | None] = {}
    for key in ("policy", "bundles"):
        value = doc.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise HookError(f"{path}: {key} must be a non-empty string (an absolute path)")
        strings[key] = absolute(value, f"{path}: {key}") if value else None
    timeout = parse_timeout(doc["timeout"], f"{path}: timeout") if "timeout" in doc else None
    scope = Scope()
    if "scope" in doc:
        table = doc["scope"]
        if not isinstance(table, dict):
            raise HookError(f"{path}: scope must be a table ([scope])")
        _unknown(table, ("packages", *SELECTORS), f"{path}: [scope]")
        if not table:
            raise HookError(
                f"{path}: [scope] names nothing; remove it to verify every package, or give "
                "packages = [...] or a source selector"
            )
        packages = (
            _patterns(table["packages"], f"{path}: scope.packages")
            if ("packages" in table)
            else None
        )
        selectors: dict[str, dict[str, tuple[str, ...]]] = {}
        for manager, kinds in SELECTORS.items():
            if manager not in table:
                continue
            sub = table[manager]
            if not isinstance(sub, dict) or not sub:
                names = ", ".join(kinds)
                raise HookError(f"{path}: [scope.{manager}] must be a table naming {names}")
            _unknown(sub, kinds, f"{path}: [scope.{manager}]")
            selectors[manager] = {
                k: _patterns(v, f"{path}: scope.{manager}.{k}") for k, v in sub.items()
            }
        scope = Scope(packages, selectors)
    return Config(path, strings["policy"], strings["bundles"], timeout, scope)


def read_regular(path: str, limit: int, what: str) -> bytes:
    """A regular file's bytes, at most `limit` (never blocks on a FIFO, never reads a device)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise HookError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise HookError(f"{what} {path} is not a regular file")
        if st.st_size > limit:
            raise HookError(f"{what} {path} is larger than {limit} bytes")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise HookError(f"{what} {path} is larger than {limit} bytes")
        return data
    finally:
        os.close(fd)


def load_config(*, relative_to: str | None = None) -> Config:
    """hooks.toml: $WOTR_HOOKS_CONFIG (must exist), else /etc/wotr/hooks.toml (absent = the
    defaults).  Unreadable or invalid: HookError, which refuses every package."""
    named = env(CONFIG_VAR)
    path = absolute(named, CONFIG_VAR, relative_to=relative_to) if named else DEFAULT_CONFIG
    if named is None and not os.path.lexists(path):
        return Config("")
    data = read_regular(path, MAX_CONFIG_BYTES, "hook configuration")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise HookError(f"hook configuration {path} is not UTF-8") from None
    return parse_config(text, path)


@dataclass(frozen=True)
class Settings:
    """What one verifier run uses, every source already applied (see `settings`)."""

    command: tuple[str, ...]
    policy: str
    bundles: str
    timeout: float
    scope: Scope
    config_path: str


def settings(
    *,
    policy: str | None = None,
    bundles: str | None = None,
    relative_to: str | None = None,
    bundles_must_exist: bool = True,
) -> Settings:
    """The settings of one hook run.  Precedence, highest first: the package manager's own
    configuration (`policy`/`bundles`, e.g. apt's Wotr::Policy), $WOTR_POLICY/$WOTR_BUNDLES,
    hooks.toml, the defaults.  Paths must be absolute unless `relative_to` is given."""
    config = load_config(relative_to=relative_to)
    raw = env("WOTR_VERIFY_CMD") or DEFAULT_VERIFY_CMD
    try:
        command = tuple(shlex.split(raw))
    except ValueError as exc:
        raise HookError(f"WOTR_VERIFY_CMD={raw!r} cannot be split: {exc}") from None
    if not command:
        raise HookError(f"WOTR_VERIFY_CMD={raw!r} names no command")
    pol = policy or env("WOTR_POLICY") or config.policy or DEFAULT_POLICY
    pol = absolute(pol, "policy (WOTR_POLICY)", relative_to=relative_to)
    bun = bundles or env("WOTR_BUNDLES") or config.bundles or DEFAULT_BUNDLES
    bun = absolute(bun, "bundles directory (WOTR_BUNDLES)", relative_to=relative_to)
    if bundles_must_exist and not os.path.isdir(bun):
        raise HookError(
            f"bundles directory {bun} does not exist: create it (it may stay empty when every "
            "package has a FILE.wotr sidecar), or set bundles in the hook configuration"
        )
    raw_timeout = env("WOTR_HOOK_TIMEOUT")
    if raw_timeout is not None:
        limit = parse_timeout(raw_timeout, "WOTR_HOOK_TIMEOUT")
    else:
        limit = config.timeout or DEFAULT_TIMEOUT
    return Settings(command, pol, bun, limit, config.scope, config.path)


# --------------------------------------------------------------------------- one verifier run


@dataclass(frozen=True)
class Item:
    """One file a package manager is about to install."""

    label: str  # what the administrator reads: "name version", never a /proc path
    path: str  # how this process opens the file
    name: str | None = None  # package name for the scope (None: unknown)
    sources: frozenset[str] | None = None  # for the source selectors (None: unknown)


@dataclass(frozen=True)
class Outcome:
    rc: int | None  # exit code (negative: signal), None: timed out
    report: dict[str, Any] | None  # the --json report, when it printed a usable one
    stderr: str


def _tail(data: bytes) -> str:
    return data[-MAX_STDERR_SHOWN:].decode("utf-8", "replace")


def run_verifier(s: Settings, paths: Sequence[str], *, bundles: bool = True) -> Outcome:
    """Run the verifier once on `paths`, from ``/``, with ``--json``.  Raises NotStarted only
    when the command cannot be executed at all, HookError on any other failure to run it."""
    cmd = [*s.command, "--json", "--policy", s.policy]
    if bundles:
        cmd += ["--bundles", s.bundles]
    cmd += ["--", *paths]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                cmd,
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # a timeout kills the verifier and gpg it started
            )
        except FileNotFoundError:
            raise NotStarted(f"verifier {cmd[0]!r} not found (WOTR_VERIFY_CMD / PATH)") from None
        except PermissionError:
            raise NotStarted(f"verifier {cmd[0]!r} is not executable") from None
        except OSError as exc:
            raise HookError(f"cannot run verifier {cmd[0]!r}: {exc.strerror}") from None
        rc: int | None
        try:
            rc = proc.wait(timeout=s.timeout)
        except subprocess.TimeoutExpired:
            rc = None
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
            proc.wait()
        err.seek(0, os.SEEK_END)
        size = err.tell()
        err.seek(max(0, size - MAX_STDERR_SHOWN))
        stderr = _tail(err.read())
        report: dict[str, Any] | None = None
        out.seek(0, os.SEEK_END)
        if rc is not None and 0 < out.tell() <= MAX_REPORT_BYTES:
            out.seek(0)
            try:
                doc = json.loads(out.read())
            except ValueError:
                doc = None
            if isinstance(doc, dict) and isinstance(doc.get("verified"), bool):
                report = doc
    return Outcome(rc, report, stderr)


def failure(o: Outcome, timeout: float) -> str:
    """Why an outcome that is not "not verified" refuses: always "wotr failed: ..."."""
    last = next((ln.strip() for ln in reversed(o.stderr.splitlines()) if ln.strip()), "")
    said = f": {last}" if last else ""
    if o.rc is None:
        return f"wotr failed: did not finish within {timeout:g} s (WOTR_HOOK_TIMEOUT / timeout)"
    if o.rc < 0:
        return f"wotr failed: killed by signal {-o.rc}{said}"
    if o.rc == V_OK:
        return "wotr failed: exit 0 without a report saying verified (WOTR_VERIFY_CMD?)"
    if o.rc == V_UNVERIFIED:
        return f"wotr failed: exit 1 without a report (it crashed or could not start){said}"
    if o.rc == V_BAD_INPUT:
        return f"wotr failed: bad input (exit 2){said}"
    if o.rc == V_ENVIRONMENT:
        return f"wotr failed: environment problem (exit 3){said}"
    return f"wotr failed: unexpected exit code {o.rc}{said}"


def sha256_of(path: str) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def _why(entries: list[dict[str, Any]], threshold: object) -> str:
    """One readable reason from the report's entries for one digest (none verified)."""
    if not entries:
        return "not verified: wotr's report does not mention this file"
    best = max(entries, key=lambda a: len(a.get("signers") or []))
    signers = [str(x) for x in best.get("signers") or []]
    reason = str(best.get("reason") or "no quorum")
    who = ", ".join(signers) if signers else "no trusted signer"
    need = f"{len(signers)} of {threshold} needed" if isinstance(threshold, int) else ""
    return f"not verified: {reason} ({need}; signed by {who})"


def culprits(items: Sequence[Item], report: dict[str, Any]) -> list[tuple[Item, str]]:
    """(item, reason) for every item the report does not show as verified, from the report
    alone (the files are hashed here to find their entries; the verifier is not run again)."""
    by_digest: dict[str, list[dict[str, Any]]] = {}
    artifacts = report.get("artifacts")
    for a in artifacts if isinstance(artifacts, list) else []:
        if isinstance(a, dict) and isinstance(a.get("sha256"), str):
            by_digest.setdefault(a["sha256"], []).append(a)
    out: list[tuple[Item, str]] = []
    for item in items:
        digest = sha256_of(item.path)
        if digest is None:
            out.append((item, "not verified: the file cannot be read"))
            continue
        entries = by_digest.get(digest, [])
        if not any(e.get("verified") is True for e in entries):
            out.append((item, _why(entries, report.get("threshold"))))
    return out


@dataclass
class Verdict:
    """What a hook shows and returns: `ok` lets the package manager go on."""

    ok: bool
    lines: list[str]  # each line is said (prefixed by the hook's name) in this order
    code: int  # wotr's exit code to pass on (verify-file): 0, 1, 2 or 3


def check(
    items: Sequence[Item],
    s: Settings,
    *,
    manager: str,
    disable_hint: str,
    prog: str,
    bundles: bool = True,
) -> Verdict:
    """The whole fail-closed decision for one transaction: scope, one verifier run, culprits.

    `manager` picks the scope's selectors ("apt", "pacman", "dnf", "" for none);
    `disable_hint` says how an administrator installs a refused package knowingly."""
    inside = [i for i in items if s.scope.covers(manager, i.name, i.sources)]
    lines: list[str] = []
    outside = len(items) - len(inside)
    if outside:
        lines.append(
            f"{outside} package(s) outside wotr's scope ({s.config_path or 'hooks.toml'}): "
            "left to the package manager's own checks"
        )
    if not inside:
        return Verdict(True, lines, 0)
    try:
        o = run_verifier(s, [i.path for i in inside], bundles=bundles)
    except NotStarted as exc:
        # The one case the override covers: nothing, attacker-controlled or not, was read.
        if override_requested(prog):
            bar = "!" * 72
            names = ", ".join(i.label for i in inside)
            lines += [
                bar,
                f"WARNING: {exc}",
                f"WARNING: {OVERRIDE_VAR}=1 is set: going on with {len(inside)} package(s) "
                "that were NOT",
                f"WARNING: verified by anyone: {names}",
                bar,
            ]
            return Verdict(True, lines, 0)
        lines += [f"REFUSED: {i.label}: wotr failed: {exc}" for i in inside]
        lines.append(
            "nothing was installed (fail closed). Install wotr or fix WOTR_VERIFY_CMD; to go on "
            f"anyway, knowingly and UNVERIFIED: set {OVERRIDE_VAR}=1 (it applies only while the "
            f"verifier cannot be started at all), or {disable_hint}."
        )
        return Verdict(False, lines, V_ENVIRONMENT)
    if o.stderr.strip():
        lines += [f"  wotr: {ln}" for ln in o.stderr.rstrip().splitlines()]
    if o.rc == V_OK and o.report is not None and o.report["verified"] is True:
        lines.append(f"verified {len(inside)} package file(s)")
        return Verdict(True, lines, V_OK)
    tail = (
        f"nothing was installed (fail closed). To install anyway, knowingly: {disable_hint}. "
        f"{OVERRIDE_VAR}=1 does not apply: it only covers a verifier that cannot be started."
    )
    if o.rc == V_UNVERIFIED and o.report is not None and o.report["verified"] is False:
        bad = culprits(inside, o.report)
        if bad:
            lines += [f"REFUSED: {i.label}: {why}" for i, why in bad]
        else:
            reason = str(o.report.get("reason") or "not every artifact reached a quorum")
            lines += [f"REFUSED: {i.label}: not verified: {reason}" for i in inside]
        lines.append(tail)
        return Verdict(False, lines, V_UNVERIFIED)
    why = failure(o, s.timeout)
    lines += [f"REFUSED: {i.label}: {why}" for i in inside]
    lines.append(tail)
    code = o.rc if o.rc in (V_BAD_INPUT, V_ENVIRONMENT) else V_ENVIRONMENT
    return Verdict(False, lines, code)


def refuse_all(labels: Sequence[str], reason: str, disable_hint: str) -> Verdict:
    """A refusal before any verdict (bad configuration, unreadable input, a bug of the hook)."""
    lines = [f"REFUSED: {lb}: {reason}" for lb in labels] or [
        f"REFUSED: cannot check the packages of this transaction: {reason}"
    ]
    lines.append(
        f"nothing was installed (fail closed). To install anyway, knowingly: {disable_hint}."
    )
    return Verdict(False, lines, V_BAD_INPUT)


def show(prog: str, verdict: Verdict) -> int:
    for line in verdict.lines:
        say(prog, line)
    return 0 if verdict.ok else 1
