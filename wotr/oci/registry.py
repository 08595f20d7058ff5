"""A small OCI distribution client over ``http.client``: bounded, digest-checked, no dependency.

Why not a library: the registry protocol wotr needs is a dozen requests, and every one of them
must be bounded (bytes, time, redirects) and checked (digests) in ways a general client does not
promise; oras-py would add ``requests`` and its stack to an installer's path for less control.

What a registry can do to this client, and what happens:

- wrong bytes for a digest: every manifest and blob fetched by digest is hashed and compared
  (:class:`IntegrityError`); a tag is resolved by hashing the bytes served, never by trusting
  ``Docker-Content-Digest``;
- huge or endless responses: each response has a byte cap (``Content-Length`` over it is refused
  before reading), each socket operation a timeout and the whole command one deadline;
- redirects: followed (at most :data:`MAX_REDIRECTS`) only within the registry's own origin,
  except blob GETs (registries send those to storage hosts), whose content is digest-checked;
  credentials never leave the registry's origin, and a redirect never downgrades to plain HTTP
  off loopback;
- credentials: sent only to the registry and to a token service it names under its own domain
  (:func:`wotr.oci.auth.may_send`).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import IO, Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

from .._record import record
from ..bundle import shown
from ..errors import EXIT_BAD_INPUT, EnvironmentProblem
from . import auth
from .ref import is_loopback

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})

MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # what distribution itself accepts
MAX_TOKEN_BYTES = 64 * 1024
MAX_ERROR_BYTES = 4 * 1024
MAX_REDIRECTS = 3
SOCKET_TIMEOUT = 30.0
DEFAULT_DEADLINE = 300.0  # seconds for one command; $WOTR_OCI_TIMEOUT sets another
_CHUNK = 256 * 1024
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


class RegistryError(EnvironmentProblem):
    """The registry could not be used: unreachable, refused, too slow, or not speaking OCI."""


class IntegrityError(RegistryError):
    """The registry served bytes that are not what it was asked for (or too many of them)."""


class NotFound(RegistryError):
    """The registry has no such manifest or repository (exit 2: check the reference)."""

    exit_code = EXIT_BAD_INPUT


@record
class Manifest:
    data: bytes
    media_type: str
    digest: str  # sha256:HEX of data, computed here

    def doc(self) -> dict[str, Any]:
        try:
            parsed = json.loads(self.data)
        except (ValueError, RecursionError) as exc:
            raise IntegrityError(f"manifest {self.digest} is not JSON") from exc
        if not isinstance(parsed, dict):
            raise IntegrityError(f"manifest {self.digest} is not a JSON object")
        return parsed


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def deadline_seconds(env: Mapping[str, str] | None = None) -> float:
    raw = (os.environ if env is None else env).get("WOTR_OCI_TIMEOUT", "")
    try:
        value = float(raw) if raw else DEFAULT_DEADLINE
    except ValueError:
        value = DEFAULT_DEADLINE
    return value if 0 < value < 10**6 else DEFAULT_DEADLINE


class _Response:
    def __init__(
        self,
        resp: http.client.HTTPResponse,
        conn: http.client.HTTPConnection,
        sock: socket.socket | None,
    ) -> None:
        self.resp = resp
        self.conn = conn
        self.sock = sock  # kept: http.client drops it from conn for a response that closes
        self.status = resp.status
        self.watchdog: threading.Timer | None = None

    def header(self, name: str) -> str:
        return self.resp.getheader(name) or ""

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
        self.resp.close()
        self.conn.close()


def _cut(sock: socket.socket) -> None:
    """The deadline passed: end whatever the connection is blocked in (headers dripping in
    byte by byte would otherwise meet only the per-operation socket timeout, again and again)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
        for m in _PARAM.finditer(rest)
    }
    return scheme.lower(), params


class Client:
    """One registry (``host[:port]``), for one command: tokens and the deadline are shared."""

    def __init__(
        self,
        host: str,
        *,
        plain_http: bool = False,
        deadline: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.host = host
        self.plain_http = plain_http
        self.scheme = "http" if plain_http or is_loopback(host) else "https"
        self.env = os.environ if env is None else env
        self.credentials = auth.lookup(host, self.env)
        self._deadline = time.monotonic() + (deadline or deadline_seconds(self.env))
        self._authz: dict[str, str] = {}  # scope -> Authorization header value
        self.requests = 0

    # --- transport ------------------------------------------------------------------------

    def _left(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise RegistryError(
                f"registry {self.host} did not finish in time",
                "check the network, or raise $WOTR_OCI_TIMEOUT (seconds)",
            )
        return left

    def _allowed_scheme(self, scheme: str, netloc: str) -> bool:
        if scheme == "https":
            return True
        if scheme != "http":
            return False
        return is_loopback(netloc) or (self.plain_http and netloc == self.host)

    def _open(
        self, method: str, url: str, headers: dict[str, str], body: bytes | IO[bytes] | None
    ) -> _Response:
        parts = urlsplit(url)
        if not self._allowed_scheme(parts.scheme, parts.netloc):
            raise RegistryError(
                f"refusing {parts.scheme}://{parts.netloc}: plain HTTP is used only on loopback",
                "use HTTPS, or pass --plain-http if you really mean it",
            )
        timeout = min(SOCKET_TIMEOUT, self._left())
        conn_type = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        conn = conn_type(parts.netloc, timeout=timeout)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        self.requests += 1
        watchdog = None
        try:
            conn.connect()
            sock = conn.sock
            watchdog = threading.Timer(self._left(), _cut, [sock])
            watchdog.daemon = True
            watchdog.start()
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            if watchdog is not None:
                watchdog.cancel()
            conn.close()
            self._left()  # the deadline passed: say so
            why = "timed out" if isinstance(exc, socket.timeout) else f"{type(exc).__name__}: {exc}"
            why = shown(why[:200])  # may quote what the server sent
            raise RegistryError(
                f"registry {parts.netloc}: {method} {parts.path} failed ({why})",
                "check that the registry is up and the reference is right",
            ) from exc
        out = _Response(resp, conn, sock)
        out.watchdog = watchdog
        return out

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | IO[bytes] | None,
        *,
        anywhere: bool,
    ) -> _Response:
        """One request, following redirects: within our origin, or anywhere (``anywhere``, for
        digest-checked blob reads) with the Authorization header dropped off our origin."""
        origin = (self.scheme, self.host)
        headers = dict(headers)
        for _ in range(MAX_REDIRECTS + 1):
            resp = self._open(method, url, headers, body)
            if resp.status not in (301, 302, 303, 307, 308):
                return resp
            location = resp.header("Location")
            resp.close()
            target = urljoin(url, location)
            parts = urlsplit(target)
            if not location or method not in ("GET", "HEAD"):
                raise RegistryError(f"registry {self.host}: unexpected redirect of {method}")
            if (parts.scheme, parts.netloc) != origin:
                if not anywhere:
                    raise RegistryError(
                        f"registry {self.host} redirected a request to {parts.netloc}: refused",
                        "only blob downloads (digest-checked) may be redirected off the registry",
                    )
                headers.pop("Authorization", None)  # never again, even back on our origin
            url = target
        raise RegistryError(f"registry {self.host}: more than {MAX_REDIRECTS} redirects")

    def _read(
        self,
        resp: _Response,
        limit: int,
        what: str,
        sink: Callable[[bytes], object] | None = None,
    ) -> bytes:
        length = resp.header("Content-Length")
        if length.isdigit() and int(length) > limit:
            resp.close()
            raise IntegrityError(f"registry {self.host}: {what} is over {limit} bytes (refused)")
        chunks: list[bytes] = []
        total = 0
        try:
            while True:
                left = self._left()
                if resp.sock is not None:
                    resp.sock.settimeout(min(SOCKET_TIMEOUT, left))
                # read1: what has arrived, so a body dripping byte by byte meets the deadline
                chunk = resp.resp.read1(min(_CHUNK, limit + 1 - total))
                if not chunk:
                    self._left()  # an end cut by the watchdog is the deadline, not the body's end
                    break
                total += len(chunk)
                if total > limit:
                    raise IntegrityError(
                        f"registry {self.host}: {what} is over {limit} bytes (refused)"
                    )
                if sink is not None:
                    sink(chunk)
                else:
                    chunks.append(chunk)
        except (OSError, http.client.HTTPException) as exc:
            if not isinstance(exc, socket.timeout):
                self._left()  # cut by the watchdog: the deadline passed
                why = shown(str(exc)[:200])  # may quote what the server sent
                raise RegistryError(f"registry {self.host}: reading {what} failed ({why})") from exc
            raise RegistryError(
                f"registry {self.host}: reading {what} did not finish in time",
                "check the network, or raise $WOTR_OCI_TIMEOUT (seconds)",
            ) from exc
        finally:
            resp.close()
        return b"".join(chunks)

    def _error(self, resp: _Response, what: str) -> RegistryError:
        try:
            body = self._read(resp, MAX_ERROR_BYTES, "an error message")
        except RegistryError:
            body = b""
        detail = ""
        try:
            errors = json.loads(body).get("errors") or []
            detail = str(errors[0].get("message", ""))[:200]
        except (ValueError, AttributeError, IndexError, TypeError, RecursionError):
            pass
        msg = f"registry {self.host}: {what}: HTTP {resp.status}"
        if detail:
            msg += f" ({shown(detail)})"
        if resp.status == 404:
            return NotFound(msg, "check the registry, repository and tag")
        if resp.status in (401, 403):
            return RegistryError(
                msg,
                f"log in (docker login {self.host}) or add credentials for it to "
                f"{auth.config_path(self.env)}",
            )
        return RegistryError(msg)

    # --- authentication -------------------------------------------------------------------

    def _authorize(self, challenge: str, scope: str) -> str:
        scheme, params = _challenge(challenge)
        creds = self.credentials
        if scheme == "basic":
            if creds is None:
                raise RegistryError(
                    f"registry {self.host} asks for a user name and password",
                    f"add credentials for {self.host} to {auth.config_path(self.env)} "
                    "(docker login)",
                )
            return creds.header()
        if scheme != "bearer" or not params.get("realm"):
            raise RegistryError(f"registry {self.host}: unsupported authentication {scheme!r}")
        realm = params["realm"]
        parts = urlsplit(realm)
        if not self._allowed_scheme(parts.scheme, parts.netloc) or not parts.netloc:
            raise RegistryError(f"registry {self.host}: token service {realm!r} refused")
        query = {"service": params.get("service", ""), "scope": params.get("scope") or scope}
        url = realm + ("&" if parts.query else "?") + urlencode(query)
        headers = {"Accept": "application/json"}
        if creds is not None and auth.may_send(self.host, parts.netloc):
            headers["Authorization"] = creds.header()
        resp = self._open("GET", url, headers, None)
        if resp.status != 200:
            raise self._error(resp, "the token service refused")
        body = self._read(resp, MAX_TOKEN_BYTES, "a token")
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError, RecursionError):
            token = None
        if not isinstance(token, str) or not token or not token.isascii() or "\n" in token:
            raise RegistryError(f"registry {self.host}: the token service gave no token")
        return f"Bearer {token}"

    def request(
        self,
        method: str,
        path: str,
        *,
        repo: str,
        push: bool = False,
        headers: Mapping[str, str] | None = None,
        body: bytes | IO[bytes] | None = None,
        blob: bool = False,
    ) -> _Response:
        """``method`` on ``path`` of this registry, authenticating when challenged."""
        scope = f"repository:{repo}:{'pull,push' if push else 'pull'}"
        url = (
            path
            if path.startswith(("http://", "https://"))
            else (f"{self.scheme}://{self.host}{path}")
        )
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != (self.scheme, self.host):
            raise RegistryError(f"registry {self.host} pointed to {parts.netloc}: refused")
        for attempt in range(2):
            sent = dict(headers or {})
            authz = self._authz.get(scope) or self._authz.get("basic")
            if authz:
                sent["Authorization"] = authz
            if body is not None and not isinstance(body, bytes):
                body.seek(0)
            resp = self._send(method, url, sent, body, anywhere=blob and method in ("GET", "HEAD"))
            if resp.status != 401 or attempt:
                return resp
            challenge = resp.header("WWW-Authenticate")
            resp.close()
            value = self._authorize(challenge, scope)
            self._authz["basic" if value.startswith("Basic ") else scope] = value
        raise AssertionError("unreachable")

    # --- the distribution API ---------------------------------------------------------------

    def get_manifest(self, repo: str, reference: str) -> Manifest:
        """The manifest ``reference`` (tag or digest) names; by digest, checked against it."""
        resp = self.request(
            "GET",
            f"/v2/{repo}/manifests/{quote(reference, safe=':')}",
            repo=repo,
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        if resp.status != 200:
            raise self._error(resp, f"manifest {repo}:{reference}")
        content_type = resp.header("Content-Type").split(";")[0].strip()
        data = self._read(resp, MAX_MANIFEST_BYTES, f"manifest {reference}")
        digest = digest_of(data)
        if _DIGEST.fullmatch(reference) and digest != reference:
            raise IntegrityError(
                f"registry {self.host} served other bytes for {repo}@{reference} "
                f"(they hash to {digest})"
            )
        manifest = Manifest(data, content_type, digest)
        declared = manifest.doc().get("mediaType")
        return Manifest(data, declared if isinstance(declared, str) else content_type, digest)

    def exists(self, repo: str, kind: str, digest: str) -> bool:
        """Whether the registry has the blob or manifest (``kind``) ``digest``."""
        resp = self.request(
            "HEAD",
            f"/v2/{repo}/{kind}/{digest}",
            repo=repo,
            push=True,
            headers={"Accept": ", ".join(MANIFEST_TYPES)} if kind == "manifests" else None,
            blob=kind == "blobs",
        )
        resp.close()
        if resp.status == 404:
            return False
        if resp.status in (200, 307):
            return True
        raise self._error(resp, f"HEAD {kind} {digest}")

    def get_blob(
        self, repo: str, digest: str, size: int, limit: int, sink: IO[bytes] | None = None
    ) -> bytes:
        """The blob ``digest``, checked: its size must be ``size`` (at most ``limit``)."""
        if size > limit:
            raise IntegrityError(f"blob {digest} of {repo} is {size} bytes, over {limit}")
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", repo=repo, blob=True)
        if resp.status != 200:
            raise self._error(resp, f"blob {digest}")
        h = hashlib.sha256()
        got = 0

        def hashed(chunk: bytes) -> None:
            nonlocal got
            h.update(chunk)
            got += len(chunk)
            if sink is not None:
                sink.write(chunk)

        data = self._read(resp, size, f"blob {digest}", sink=hashed if sink else None)
        if sink is None:
            hashed(data)
        if got != size or "sha256:" + h.hexdigest() != digest:
            raise IntegrityError(
                f"registry {self.host} served other bytes for blob {digest} of {repo}"
            )
        return data

    def put_blob(self, repo: str, digest: str, size: int, data: bytes | IO[bytes]) -> None:
        """Upload a blob in one PUT (skipped when the registry has it)."""
        if self.exists(repo, "blobs", digest):
            return
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", repo=repo, push=True)
        if resp.status != 202 or not resp.header("Location"):
            raise self._error(resp, f"starting the upload of {digest}")
        location = urljoin(
            f"{self.scheme}://{self.host}/v2/{repo}/blobs/uploads/", resp.header("Location")
        )
        resp.close()
        sep = "&" if urlsplit(location).query else "?"
        resp = self.request(
            "PUT",
            f"{location}{sep}digest={quote(digest, safe='')}",
            repo=repo,
            push=True,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            body=data,
        )
        if resp.status not in (201, 204):
            raise self._error(resp, f"uploading blob {digest}")
        resp.close()

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> bool:
        """Push a manifest; True when the registry says it indexed its subject (OCI-Subject)."""
        resp = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{quote(reference, safe=':')}",
            repo=repo,
            push=True,
            headers={"Content-Type": media_type, "Content-Length": str(len(data))},
            body=data,
        )
        if resp.status not in (200, 201, 204):
            raise self._error(resp, f"pushing manifest {repo}:{reference}")
        subject = bool(resp.header("OCI-Subject"))
        resp.close()
        return subject

    def get_json(self, path: str, repo: str, limit: int, what: str) -> tuple[int, Any, str]:
        """(status, parsed body or None, Link header) of a small JSON document."""
        resp = self.request("GET", path, repo=repo, headers={"Accept": OCI_INDEX})
        if resp.status == 404:
            resp.close()
            return 404, None, ""
        if resp.status != 200:
            raise self._error(resp, what)
        link = resp.header("Link")
        data = self._read(resp, limit, what)
        try:
            return 200, json.loads(data), link
        except (ValueError, RecursionError) as exc:
            raise IntegrityError(f"registry {self.host}: {what} is not JSON") from exc
