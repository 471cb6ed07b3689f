"""`harness report --serve`: the site on a local port, rebuilt when the ledger or the selector history changes.

Where it listens: 127.0.0.1 unless told otherwise. `bind_host` refuses an address that is not a loopback
one unless the caller allows it (the CLI does only when `--host` was given explicitly). While bound to
loopback, a request whose Host header names another host is refused, so a web page elsewhere cannot reach
the report through DNS rebinding.

What it serves: the output folder's files, and the repository files that the pages link to (the build's
`linked` set: evidence files and specs). Nothing else of the repository is reachable: no source, no
.git, no harness.yaml. URLs mirror the file system below the folder that holds both the site and the
repository, so the pages' relative links work as they do from file://; `/` redirects to the index.
Evidence is sent as text/plain (a gzipped file as a download), never as HTML, and every response says
nosniff and carries the report's Content-Security-Policy, so nothing an agent wrote can run.

Rebuilds run on a watcher thread that compares the ledger's and the history's size and times every
`interval` seconds; a failed rebuild (a ledger caught mid-edit) is reported and the old site stays. The
first build is made before the threads start, so it may spread the item pages over forked workers
(harness.webreport.item_pages); the rebuilds, made while the server threads run, stay in this process.
"""
from __future__ import annotations

import ipaddress
import os
import posixpath
import shutil
import socket
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from harness.errors import HarnessError
from harness.webreport import publish
from harness.webreport.build import CSP, BuildResult, build_site
from harness.webreport.gather import ReportCache
from harness.webreport.paths import inside
from harness.workspace import Workspace

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
SITE_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
              ".js": "text/javascript; charset=utf-8"}
LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]")


def bind_host(host: str | None, *, allow_remote: bool) -> str:
    """The address to listen on: loopback by default; any other only with `allow_remote`."""
    if host is None:
        return DEFAULT_HOST
    name = "127.0.0.1" if host == "localhost" else host
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        raise publish.ReportError(f"--host {host!r} is not an IP address; give one such as 127.0.0.1 "
                                  "(or 0.0.0.0 to listen on every interface)") from None
    if not address.is_loopback and not allow_remote:
        raise publish.ReportError(f"refusing to serve the report on {host}, which is not a loopback address: "
                                  "anyone who can reach it could read the evidence. Pass --host explicitly to "
                                  "mean it")
    return str(address)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], report: ReportServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.report = report
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "harness-report"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # the base class names it `format`
        pass  # one line per request would bury the rebuild messages

    def _refuse(self, status: HTTPStatus, why: str) -> None:
        body = f"{status.value} {status.phrase}: {why}\n".encode()
        self.send_response(status)
        self._headers("text/plain; charset=utf-8", len(body))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _headers(self, content_type: str, length: int) -> None:
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        report = self.server.report
        host = (self.headers.get("Host") or "").lower()
        if report.loopback and host.rsplit(":", 1)[0] not in LOCAL_NAMES and host not in LOCAL_NAMES:
            self._refuse(HTTPStatus.MISDIRECTED_REQUEST, f"this server answers to localhost only, not {host!r}")
            return
        path = unquote(urlsplit(self.path).path)
        if path in ("", "/"):
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", report.index_url_path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        found = report.resolve(path)
        if found is None:
            self._refuse(HTTPStatus.NOT_FOUND, "not part of the report")
            return
        file, content_type = found
        try:
            with publish.lock:  # the site folder is not swapped while a file of it is being opened
                handle = open(file, "rb")  # noqa: SIM115 - closed below, after the lock is released
        except OSError:
            self._refuse(HTTPStatus.NOT_FOUND, "not part of the report")
            return
        with handle:
            size = os.fstat(handle.fileno()).st_size
            self.send_response(HTTPStatus.OK)
            self._headers(content_type, size)
            self.end_headers()
            if self.command != "HEAD":
                shutil.copyfileobj(handle, self.wfile)


class ReportServer:
    """Builds the site, serves it, and rebuilds it on change; `start` returns once it answers."""

    def __init__(self, ws: Workspace, out: Path, *, host: str, port: int, interval: float = 1.0,
                 say: Callable[[str], None] = print) -> None:
        self.ws, self.out, self.interval, self.say = ws, Path(os.path.abspath(out)), interval, say
        self.cache = ReportCache()
        self.loopback = ipaddress.ip_address(host).is_loopback
        self.docroot = Path(os.path.commonpath([self.ws.root, self.out]))
        self.index_url_path = "/" + quote((self.out / "index.html").relative_to(self.docroot).as_posix())
        self._linked: frozenset[str] = frozenset()
        self._signature = self._watched()
        self._stop = threading.Event()
        self.result = self._build()
        try:
            self.httpd = _Server((host, port), self)
        except OSError as exc:
            raise publish.ReportError(f"cannot listen on {host} port {port}: {exc.strerror or exc}; pass another "
                                      "--port (0 picks a free one)") from None
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{self.httpd.server_address[1]}" \
                   f"{self.index_url_path}"
        self._threads = [threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                          name="report-http", daemon=True),
                         threading.Thread(target=self._watch, name="report-watch", daemon=True)]

    def _build(self) -> BuildResult:
        result = build_site(self.ws, self.out, cache=self.cache)
        self._linked = result.linked
        return result

    def _watched(self) -> tuple:
        signature = []
        for path in (self.ws.ledger_path, self.ws.root / self.ws.config.selectors.history):
            try:
                st = path.stat()
                signature.append((st.st_size, st.st_mtime_ns, st.st_ino))
            except OSError:
                signature.append(None)
        return tuple(signature)

    def rebuild_if_changed(self) -> bool:
        signature = self._watched()
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            self.result = self._build()
        except HarnessError as exc:
            self.say(f"harness report: not rebuilt, the old site stays: {exc}")
            return False
        self.say(f"harness report: rebuilt {self.result.items} item(s) in {self.result.seconds:.1f} s")
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.rebuild_if_changed()
            except Exception as exc:  # noqa: BLE001 - a watcher that dies would silently serve a stale site
                print(f"harness report: rebuild failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    def resolve(self, url_path: str) -> tuple[Path, str] | None:
        """The file a URL path names and its content type, or None when it is not part of the report."""
        rel = posixpath.normpath(url_path.lstrip("/"))
        if rel.startswith("..") or "\0" in rel or "\\" in rel:
            return None
        full = self.docroot / rel
        if full.is_relative_to(self.out):
            site_rel = full.relative_to(self.out).as_posix()
            if any(part.startswith(".") for part in site_rel.split("/")) or not full.is_file():
                return None
            if not os.path.realpath(full).startswith(os.path.realpath(self.out) + os.sep):
                return None
            return full, SITE_TYPES.get(full.suffix, "text/plain; charset=utf-8")
        if not full.is_relative_to(self.ws.root):
            return None
        repo_rel = full.relative_to(self.ws.root).as_posix()
        if repo_rel not in self._linked or not full.is_file() or not inside(self.ws.root, repo_rel):
            return None
        return full, "application/gzip" if full.suffix == ".gz" else "text/plain; charset=utf-8"

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
