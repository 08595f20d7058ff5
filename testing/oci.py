"""Registries for the OCI tests: Debian's real ``docker-registry`` and a small fake one.

The real registry (distribution 2.8) runs on 127.0.0.1 with its storage in a temporary
directory; it has no referrers API, so the referrers tag schema is what it exercises. The fake
registry (:class:`FakeRegistry`, a ``http.server`` on 127.0.0.1) implements the referrers API and
can be told to misbehave: wrong bytes, endless or slow bodies, redirects, fake referrers,
token authentication.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from wotr.oci import registry as reg_mod

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


@dataclass
class Image:
    """A tiny image: config, one layer, the manifest (bytes as pushed)."""

    config: bytes
    layer: bytes
    manifest: bytes
    config_type: str = "application/vnd.oci.image.config.v1+json"
    layer_type: str = "application/vnd.oci.image.layer.v1.tar+gzip"

    @property
    def digest(self) -> str:
        return digest(self.manifest)

    def blobs(self) -> dict[str, bytes]:
        return {digest(self.config): self.config, digest(self.layer): self.layer}


def make_image(text: str = "hello") -> Image:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = text.encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    layer = gzip.compress(buf.getvalue(), mtime=0)
    config = canonical(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [digest(buf.getvalue())]},
        }
    )
    return _image(config, layer)


def make_chart(tgz: bytes) -> Image:
    """A Helm chart as 'helm push' stores it: Chart.yaml as config, the .tgz as the layer."""
    config = canonical({"apiVersion": "v2", "name": "mychart", "version": "1.2.0"})
    return _image(
        config,
        tgz,
        config_type="application/vnd.cncf.helm.config.v1+json",
        layer_type="application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    )


def _image(
    config: bytes,
    layer: bytes,
    config_type: str = "application/vnd.oci.image.config.v1+json",
    layer_type: str = "application/vnd.oci.image.layer.v1.tar+gzip",
) -> Image:
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": digest(config), "size": len(config)},
            "layers": [{"mediaType": layer_type, "digest": digest(layer), "size": len(layer)}],
        }
    )
    return Image(config, layer, manifest, config_type, layer_type)


def push(client: reg_mod.Client, repo: str, tag: str, image: Image) -> str:
    """Push ``image`` as another tool would (no wotr attachments); its digest."""
    for d, data in image.blobs().items():
        client.put_blob(repo, d, len(data), data)
    client.put_manifest(repo, tag, image.manifest, OCI_MANIFEST)
    return image.digest


def write_layout(directory: Path, image: Image, tag: str = "1.0") -> Path:
    """``image`` as an OCI image layout (what 'docker buildx --output type=oci' writes)."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for data in (*image.blobs().values(), image.manifest):
        (blobs / hashlib.sha256(data).hexdigest()).write_bytes(data)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entry = {
        "mediaType": OCI_MANIFEST,
        "digest": image.digest,
        "size": len(image.manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }
    (directory / "index.json").write_bytes(canonical({"schemaVersion": 2, "manifests": [entry]}))
    return directory


# --- the real registry ------------------------------------------------------------------------


def htpasswd_line(user: str, password: str) -> str:
    """A bcrypt htpasswd line (what distribution's htpasswd auth reads)."""
    res = subprocess.run(
        ["htpasswd", "-nbB", user, password], capture_output=True, text=True, check=True
    )
    return res.stdout.strip() + "\n"


@contextmanager
def real_registry(root: Path, *, htpasswd: str | None = None) -> Iterator[str]:
    """``docker-registry serve`` on 127.0.0.1:<free port>; yields ``host:port``."""
    exe = shutil.which("docker-registry")
    if exe is None:
        raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {root / 'data'}",
        "http:",
        f"  addr: 127.0.0.1:{port}",
    ]
    if htpasswd is not None:
        (root / "htpasswd").write_text(htpasswd)
        lines += ["auth:", "  htpasswd:", "    realm: wotr-test", f"    path: {root / 'htpasswd'}"]
    config = root / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log = open(root / "registry.log", "wb")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen([exe, "serve", str(config)], stdout=log, stderr=log)
    host = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://{host}/v2/", timeout=1) as r:
                    if r.status == 200:
                        break
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and htpasswd is not None:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"docker-registry did not start: {(root / 'registry.log').read_text()}"
                )
            time.sleep(0.05)
        yield host
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# --- a fake registry, with the referrers API, that can misbehave ----------------------------


@dataclass
class FakeRegistry:
    """An in-memory registry on ``host``; the flags below make it hostile."""

    host: str = "127.0.0.1"
    referrers_api: bool = True
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # digest or tag
    referrers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # hostility
    wrong_blobs: set[str] = field(default_factory=set)  # serve other bytes for these digests
    wrong_manifests: set[str] = field(default_factory=set)
    endless: set[str] = field(default_factory=set)  # path substrings answered without end
    slow: set[str] = field(default_factory=set)  # path substrings answered one byte a second
    drip_headers: set[str] = field(default_factory=set)  # headers that never end
    redirect_blobs: str | None = None  # base URL to send blob GETs to
    redirect_manifests: str | None = None
    fake_referrers: int = 0
    bearer_realm: str | None = None  # token auth: the realm URL
    basic: tuple[str, str] | None = None
    token: str = "t0ken"
    # what it saw
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, auth
    port: int = 0
    _server: Any = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> FakeRegistry:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_HEAD(self) -> None:
                fake._handle(self, "HEAD")

            def do_PUT(self) -> None:
                fake._handle(self, "PUT")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- the protocol ---------------------------------------------------------------------

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        method: str = "GET",
    ) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if method != "HEAD":
            h.wfile.write(body)

    def _stream(self, h: BaseHTTPRequestHandler, slow: bool) -> None:
        h.send_response(200)
        h.send_header("Content-Type", OCI_MANIFEST)
        h.end_headers()  # no length: read until the connection closes
        try:
            for _ in range(128 if not slow else 60):  # 8 MiB: over any cap, then the end
                h.wfile.write(b"x" if slow else b"x" * 65536)
                h.wfile.flush()
                if slow:
                    time.sleep(1)
        except OSError:
            pass
        h.close_connection = True

    def _authorized(self, h: BaseHTTPRequestHandler) -> bool:
        got = h.headers.get("Authorization", "")
        if self.bearer_realm is not None:
            if got == f"Bearer {self.token}":
                return True
            challenge = f'Bearer realm="{self.bearer_realm}",service="fake"'
            self._send(h, 401, b"{}", {"WWW-Authenticate": challenge})
            return False
        if self.basic is not None:
            want = "Basic " + base64.b64encode(":".join(self.basic).encode()).decode()
            if got == want:
                return True
            self._send(h, 401, b"{}", {"WWW-Authenticate": 'Basic realm="fake"'})
            return False
        return True

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        path = h.path
        self.requests.append((method, path, h.headers.get("Authorization", "")))
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if path.startswith("/token"):
            user_ok = self.basic is None or h.headers.get("Authorization") == (
                "Basic " + base64.b64encode(":".join(self.basic).encode()).decode()
            )
            if not user_ok:
                return self._send(h, 401, b"{}")
            return self._send(h, 200, json.dumps({"token": self.token}).encode())
        if path.startswith("/storage/"):  # a redirect target for blobs
            d = path.rsplit("/", 1)[-1]
            return self._send(h, 200, self.blobs.get(d, b""), method=method)
        if path == "/v2/":
            return self._send(h, 200, b"{}")
        if not self._authorized(h):
            return None
        for s in self.endless:
            if s in path:
                return self._stream(h, False)
        for s in self.slow:
            if s in path:
                return self._stream(h, True)
        for s in self.drip_headers:
            if s in path:
                try:
                    h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
                    for _ in range(60):
                        h.wfile.write(b"x")
                        time.sleep(1)
                except OSError:
                    pass
                h.close_connection = True
                return None
        m = re.fullmatch(r"/v2/(.+)/(blobs|manifests|referrers)/([^?]+)(\?.*)?", path)
        if method == "POST" and path.endswith("/blobs/uploads/"):
            return self._send(h, 202, headers={"Location": f"/upload/{uuid.uuid4().hex}"})
        if method == "PUT" and path.startswith("/upload/"):
            d = path.split("digest=")[1].replace("%3A", ":")
            if digest(body) != d:
                return self._send(h, 400, b'{"errors":[{"message":"digest mismatch"}]}')
            self.blobs[d] = body
            return self._send(h, 201, headers={"Docker-Content-Digest": d})
        if m is None:
            return self._send(h, 404, b"{}")
        _repo, kind, ref = m.group(1), m.group(2), m.group(3)
        if kind == "blobs":
            if self.redirect_blobs and method == "GET":
                return self._send(
                    h, 307, headers={"Location": f"{self.redirect_blobs}/storage/{ref}"}
                )
            if ref not in self.blobs:
                return self._send(h, 404, b"{}", method=method)
            data = self.blobs[ref]
            if ref in self.wrong_blobs:
                data = data[:-1] + bytes([data[-1] ^ 1])
            return self._send(h, 200, data, method=method)
        if kind == "manifests":
            if method == "PUT":
                ctype = h.headers.get("Content-Type", "")
                d = digest(body)
                self.manifests[d] = (body, ctype)
                self.manifests[ref] = (body, ctype)
                headers = {"Docker-Content-Digest": d}
                doc = json.loads(body)
                subject = doc.get("subject")
                if self.referrers_api and subject:
                    entry = {
                        "mediaType": ctype,
                        "digest": d,
                        "size": len(body),
                        "artifactType": doc.get("artifactType"),
                    }
                    self.referrers.setdefault(subject["digest"], []).append(entry)
                    headers["OCI-Subject"] = subject["digest"]
                return self._send(h, 201, headers=headers)
            if self.redirect_manifests:
                return self._send(h, 307, headers={"Location": f"{self.redirect_manifests}{path}"})
            if ref not in self.manifests:
                return self._send(h, 404, b"{}", method=method)
            data, ctype = self.manifests[ref]
            if ref in self.wrong_manifests or digest(data) in self.wrong_manifests:
                data = data.replace(b"}", b" }", 1)
            return self._send(h, 200, data, {"Content-Type": ctype}, method=method)
        if not self.referrers_api:
            return self._send(h, 404, b"{}")
        fakes = [
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest(f"fake {i}".encode()),
                "size": 100,
                "artifactType": "application/vnd.wotr.bundle.v1+json",
            }
            for i in range(self.fake_referrers)
        ]
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": fakes + self.referrers.get(ref, []),
        }
        return self._send(h, 200, canonical(index), {"Content-Type": OCI_INDEX})


@contextmanager
def fake_registry(**kw: Any) -> Iterator[FakeRegistry]:
    fake = FakeRegistry(**kw).start()
    try:
        yield fake
    finally:
        fake.stop()
