"""OHIF's prebuilt viewer (npm @ohif/app dist/, fetched by deploy/viewer/fetch-ohif.sh)
served on a free port, with `/dicom-web/...` proxied to an Orthanc DICOMweb plugin so the
viewer and the PACS share one origin (no CORS set-up on Orthanc).

    with OhifServer(dist, orthanc.url) as viewer:
        page.goto(viewer.url + "/viewer?StudyInstanceUIDs=" + study_uid)
"""

from __future__ import annotations

import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import httpx

OHIF_VERSION = "3.13.2"
OHIF_DIST = Path(os.environ.get(
    "OHIF_DIST", Path.home() / ".cache" / "radraft" / "ohif" / OHIF_VERSION / "dist"))
_DEMO_SERVER = "https://d14fa38qiwhyfd.cloudfront.net/dicomweb"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
          ".json": "application/json", ".wasm": "application/wasm", ".svg": "image/svg+xml",
          ".png": "image/png", ".ico": "image/x-icon", ".woff2": "font/woff2"}


def app_config(dist: Path) -> bytes:
    """The shipped app-config.js pointed at this origin's /dicom-web (Orthanc, not static
    WADO); fails loudly when an OHIF release changes what is replaced."""
    text = (dist / "app-config.js").read_text()
    replacements = [(_DEMO_SERVER, "/dicom-web", 3), ("staticWado: true", "staticWado: false", 1),
                    ("thumbnailRendering: 'thumbnail'", "thumbnailRendering: 'wadors'", 1),
                    ("routerBasename: null", "routerBasename: '/'", 1)]
    for old, new, count in replacements:
        found = text.count(old)
        if found != count:
            raise RuntimeError(f"OHIF app-config.js: {old!r} found {found} times, not {count}")
        text = text.replace(old, new)
    return text.encode()


class OhifServer:
    def __init__(self, dist: Path, orthanc_url: str) -> None:
        if not (dist / "index.html").exists():
            raise RuntimeError(f"no OHIF build in {dist}: run deploy/viewer/fetch-ohif.sh")
        self.dist, self.orthanc_url = dist, orthanc_url
        self.config = app_config(dist)
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                owner.requests.append(self.path)

            def do_GET(self) -> None:
                if self.path.startswith("/dicom-web/"):
                    self._proxy()
                    return
                path = self.path.split("?", 1)[0]
                if path == "/app-config.js":
                    self._send(200, "text/javascript", owner.config)
                    return
                target = (owner.dist / path.lstrip("/")).resolve()
                if not target.is_relative_to(owner.dist.resolve()) or not target.is_file():
                    target = owner.dist / "index.html"  # a single-page app's routes
                self._send(200, _TYPES.get(target.suffix, "application/octet-stream"),
                           target.read_bytes())

            def _proxy(self) -> None:
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("accept", "range")}
                with httpx.stream("GET", owner.orthanc_url + self.path, headers=headers,
                                  timeout=120) as answer:
                    body = answer.read()
                self._send(answer.status_code,
                           answer.headers.get("content-type", "application/octet-stream"), body)

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                # OHIF's SharedArrayBuffer decoders want a cross-origin isolated page.
                self.send_header("Cross-Origin-Opener-Policy", "same-origin")
                self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def __enter__(self) -> OhifServer:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


