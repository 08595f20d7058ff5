"""Registry credentials from the standard Docker config, and where they may be sent.

``$DOCKER_CONFIG/config.json`` (else ``~/.docker/config.json``), ``auths`` entries keyed by
host (``127.0.0.1:5000``) or URL (``https://registry.example.com/v1/``), each with ``auth`` =
base64 of ``user:password`` (or ``username``/``password``). Credential helpers
(``credsStore``/``credHelpers``) are not run: wotr starts no program it was not told about.

Credentials for a registry go to that registry, and to a token service (``WWW-Authenticate:
Bearer realm=…``) only on the same host or a sibling under the registry's parent domain
(``registry-1.docker.io`` -> ``auth.docker.io``): a hostile registry cannot name a realm
elsewhere to collect them.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from pathlib import Path

from .._record import record

MAX_CONFIG_BYTES = 4 * 1024 * 1024


@record
class Credentials:
    username: str
    password: str = ""

    def header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]) / "config.json"
    return Path.home() / ".docker" / "config.json"


def _key_host(key: str) -> str:
    """``https://host:port/v1/`` or ``host:port`` -> ``host:port``."""
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key.split("/", 1)[0]


def lookup(host: str, env: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials the Docker config holds for ``host`` (None when none or unreadable)."""
    path = config_path(env)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
        doc = json.loads(data) if len(data) <= MAX_CONFIG_BYTES else None
    except (OSError, ValueError, RecursionError):
        return None
    auths = doc.get("auths") if isinstance(doc, dict) else None
    if not isinstance(auths, dict):
        return None
    names = {host}
    if host in ("docker.io", "registry-1.docker.io", "index.docker.io"):
        names |= {"docker.io", "index.docker.io", "registry-1.docker.io"}
    for key, entry in auths.items():
        if not isinstance(key, str) or _key_host(key) not in names or not isinstance(entry, dict):
            continue
        auth = entry.get("auth")
        if isinstance(auth, str) and auth:
            try:
                user, sep, password = base64.b64decode(auth, validate=True).decode().partition(":")
            except (binascii.Error, ValueError):
                continue
            if sep:
                return Credentials(user, password)
        name, secret = entry.get("username"), entry.get("password")
        if isinstance(name, str) and isinstance(secret, str) and name:
            return Credentials(name, secret)
    return None


def _bare(host: str) -> str:
    if host.startswith("["):
        return host[: host.index("]") + 1].lower()
    return host.rsplit(":", 1)[0].lower() if ":" in host else host.lower()


def may_send(registry_host: str, realm_host: str) -> bool:
    """Whether credentials for ``registry_host`` may go to a token service on ``realm_host``."""
    reg, realm = _bare(registry_host), _bare(realm_host)
    if reg == realm:
        return True
    labels = reg.split(".")
    if len(labels) < 3 or reg.startswith("["):
        return False  # example.com: its parent "com" is no one's domain
    parent = ".".join(labels[1:])
    return realm.endswith("." + parent)
