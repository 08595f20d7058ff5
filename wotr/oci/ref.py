"""OCI references (``registry/repo:tag``, ``registry/repo@sha256:…``) and the mirror settings.

wotr never guesses a registry: the first component must be a host (with a dot or a port, or
``localhost``). Registries on 127.0.0.0/8 and ::1 are spoken to over plain HTTP, any other only
over HTTPS unless the user names it with ``--plain-http`` or in the configuration.

A device names its mirrors in ``/etc/wotr/oci.toml`` (``$WOTR_OCI_CONFIG``), or in
``$WOTR_OCI_MIRRORS`` (``SRC=DST,…``, which wins)::

    plain-http = ["mirror.lan:5000"]            # registries reached over plain HTTP
    [mirrors]
    "registry.example.com" = "mirror.lan:5000"  # a whole registry
    "ghcr.io/acme" = "mirror.lan:5000/acme"     # or a repository prefix

The longest matching prefix rewrites the reference; the original registry is then never
contacted (the mirror alone is used).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from .._record import record
from ..errors import BadInput

DEFAULT_CONFIG = Path("/etc/wotr/oci.toml")
MAX_CONFIG_BYTES = 1024 * 1024

_HOST = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}"
    r"[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?"
)
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPO = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class RefError(BadInput):
    """An OCI reference or the OCI configuration is malformed (exit 2)."""


@record
class Ref:
    host: str  # host[:port], as written (IPv6 in brackets)
    repo: str
    tag: str | None = None
    digest: str | None = None  # sha256:HEX

    def __str__(self) -> str:
        out = f"{self.host}/{self.repo}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def reference(self) -> str:
        """What the manifests endpoint is asked for: the digest if known, else the tag."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Ref:
        return Ref(self.host, self.repo, self.tag, digest)

    def default_name(self) -> str:
        """The artifact name a claim gives this image: last repository component and tag."""
        last = self.repo.rsplit("/", 1)[-1]
        return f"{last}:{self.tag}" if self.tag else last


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.index("]")]
    return host.rsplit(":", 1)[0] if ":" in host else host


def is_loopback(host: str) -> bool:
    """Whether ``host[:port]`` is an IP literal on 127.0.0.0/8 or ::1 (names never are)."""
    try:
        return ipaddress.ip_address(_hostname(host)).is_loopback
    except ValueError:
        return False


def parse(text: str, *, what: str = "reference", need_repo_only: bool = False) -> Ref:
    """A reference; ``need_repo_only`` also accepts ``registry/repo`` without tag or digest."""
    raw = text.removeprefix("oci://")
    hint = (
        "write REGISTRY/REPOSITORY:TAG or REGISTRY/REPOSITORY@sha256:HEX, "
        "e.g. 127.0.0.1:5000/app:1.0"
    )
    rest, at, digest = raw.partition("@")
    if at and not DIGEST.fullmatch(digest):
        raise RefError(f"{what} {text!r}: the digest is not sha256:<64 lowercase hex digits>", hint)
    host, slash, path = rest.partition("/")
    if (
        not slash
        or not _HOST.fullmatch(host)
        or not ("." in host or ":" in host or host == "localhost")
    ):
        raise RefError(f"{what} {text!r} does not start with a registry host", hint)
    tag = None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, _, tag = path.rpartition(":")
        if not _TAG.fullmatch(tag):
            raise RefError(f"{what} {text!r}: {tag!r} is not a valid tag", hint)
    if not _REPO.fullmatch(path) or len(path) > 255:
        raise RefError(f"{what} {text!r}: {path!r} is not a valid repository name", hint)
    if not tag and not at and not need_repo_only:
        raise RefError(f"{what} {text!r} names no tag or digest", hint)
    return Ref(host, path, tag, digest or None)


# --- the device's OCI settings ----------------------------------------------------------------


@record
class Settings:
    mirrors: tuple[tuple[str, str], ...] = ()  # (prefix, replacement), longest first
    plain_http: frozenset[str] = frozenset()
    source: str = ""

    def mirrored(self, ref: Ref) -> Ref:
        """``ref`` rewritten by the longest matching mirror prefix (unchanged if none)."""
        full = f"{ref.host}/{ref.repo}"
        for prefix, target in self.mirrors:
            if full == prefix or full.startswith(prefix + "/"):
                rest = full[len(prefix) :]
                new = parse(f"{target}{rest}", what=f"mirror of {full}", need_repo_only=True)
                return Ref(new.host, new.repo, ref.tag, ref.digest)
        return ref


def _check_prefix(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise RefError(f"{where}: {value!r} is not a string", "write host[:port][/repository]")
    host, _, path = value.partition("/")
    if not _HOST.fullmatch(host) or (path and not _REPO.fullmatch(path)):
        raise RefError(f"{where}: {value!r} is not host[:port][/repository]")
    return value


def settings(env: Mapping[str, str] | None = None) -> Settings:
    """The mirror settings: ``$WOTR_OCI_MIRRORS`` and ``$WOTR_OCI_CONFIG`` (or the default file).

    An unreadable or invalid file is an error (exit 2): a device told to use a mirror must
    never quietly fall back to the original registry.
    """
    env = os.environ if env is None else env
    mirrors: dict[str, str] = {}
    plain: set[str] = set()
    named = env.get("WOTR_OCI_CONFIG")
    path = Path(named) if named else DEFAULT_CONFIG
    source = ""
    if named or path.exists():
        source = str(path)
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_CONFIG_BYTES + 1)
            if len(data) > MAX_CONFIG_BYTES:
                raise RefError(f"{path}: over {MAX_CONFIG_BYTES} bytes")
            doc = tomllib.loads(data.decode("utf-8"))
        except (OSError, UnicodeError, tomllib.TOMLDecodeError) as exc:
            raise RefError(
                f"cannot read the OCI configuration {path}: {exc}",
                "fix the file or point $WOTR_OCI_CONFIG at another one",
            ) from exc
        unknown = set(doc) - {"mirrors", "plain-http"}
        if unknown:
            raise RefError(f"{path}: unknown field {sorted(unknown)[0]!r}")
        table = doc.get("mirrors", {})
        if not isinstance(table, dict):
            raise RefError(f"{path}: [mirrors] is not a table")
        for k, v in table.items():
            mirrors[_check_prefix(k, str(path))] = _check_prefix(v, str(path))
        hosts = doc.get("plain-http", [])
        if not isinstance(hosts, list):
            raise RefError(f"{path}: plain-http is not a list of hosts")
        plain.update(_check_prefix(h, str(path)) for h in hosts)
    spec = env.get("WOTR_OCI_MIRRORS", "").strip()
    if spec:
        source = "$WOTR_OCI_MIRRORS"
        mirrors = {}
        for item in spec.split(","):
            src, eq, dst = item.strip().partition("=")
            if not eq:
                raise RefError(f"$WOTR_OCI_MIRRORS: {item!r} is not SRC=DST")
            mirrors[_check_prefix(src, "$WOTR_OCI_MIRRORS")] = _check_prefix(
                dst, "$WOTR_OCI_MIRRORS"
            )
    ordered = tuple(sorted(mirrors.items(), key=lambda kv: -len(kv[0])))
    return Settings(ordered, frozenset(plain), source)
