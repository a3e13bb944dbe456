"""HTTP plumbing: a threading server on loopback whose handler reads each request
(bodies, chunked or not), hands it to the fake and writes the answer, cut or dropped
when a fault says so."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, cast

from .model import _Request, _Response

_DRAIN_LIMIT = 64 * 1024 * 1024
_DRAIN_SECONDS = 2.0


class Endpoint(Protocol):
    """What the handler hands each request to (FakeGitHub)."""

    def _reads_body(self, method: str, path: str, headers: dict[str, str]) -> bool: ...

    def _handle(self, req: _Request) -> _Response: ...


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, fake: Endpoint) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that hang up (the default prints a traceback)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    sys_version = ""
    timeout = 60

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server = cast(_Server, self.server)
        with server.connections_lock:
            server.connections.add(self.connection)

    def finish(self) -> None:
        server = cast(_Server, self.server)
        with server.connections_lock:
            server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        fake = cast(_Server, self.server).fake
        split = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        body: bytes | None
        try:
            if fake._reads_body(method, split.path, headers):
                body = self._read_body(headers)
            else:
                body = None
        except (ValueError, OSError):
            self.close_connection = True
            return
        request = _Request(method, split.path, query, headers, body, self.client_address[0])
        response = fake._handle(request)
        self._send(request, response)

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = int(headers.get("content-length") or "0")
        if length <= 0:
            return b""
        data = self.rfile.read(length)
        if len(data) != length:
            raise ValueError("short body")
        return data

    def _send(self, request: _Request, response: _Response) -> None:
        if response.drop:
            self.close_connection = True
            if request.body is None:
                self._linger()
            return
        unread = request.body is None
        truncated = response.truncate_at is not None
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status != 204 and response.status != 304:
            self.send_header("Content-Length", str(len(response.body)))
        if unread or truncated:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if request.method != "HEAD" and response.body:
            body = response.body
            if response.truncate_at is not None:
                body = body[: max(0, response.truncate_at)]
            self.wfile.write(body)
        if unread or truncated:
            self._linger()

    def _linger(self) -> None:
        """Half-close and drain what the client still sends, so it reads our answer (no RST)."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + _DRAIN_SECONDS
            drained = 0
            while drained < _DRAIN_LIMIT:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.connection.settimeout(remaining)
                chunk = self.connection.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass
