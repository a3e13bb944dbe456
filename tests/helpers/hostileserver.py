"""An attacker's HTTP server: endless or oversized bodies, a kernel list naming local
files, a site index linking file:// and `..` URLs."""

from __future__ import annotations

import http.server
import json
import time

KERNELS = {"AmazonLinux": [  # a served kernel list whose second entry names a local file
    {"kernelversion": 1, "kernelrelease": f"4.14.77-70.{i}.amzn1.x86_64", "target": "amazonlinux",
     "headers": [f"{scheme}/Packages/kernel-devel-4.14.77-70.{i}.amzn1.x86_64.rpm"]}
    for i, scheme in enumerate(("https://al1.mirror.example", "file:///etc"))]}


class Hostile(http.server.BaseHTTPRequestHandler):
    """Answers as an attacker's server would: forever, with lies, or with local links."""

    def do_GET(self) -> None:
        if self.path.startswith("/endless"):
            self._head(200, {})
            block = b"x" * 65536
            try:
                while True:
                    self.wfile.write(block)
            except OSError:  # the client stopped reading: what we want
                return
        if self.path.startswith("/drip"):  # a byte at a time, never done, never silent
            self._head(200, {})
            try:
                while True:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                return
        if self.path.startswith("/huge"):
            self._head(200, {"Content-Length": str(10 ** 15)})
            return
        if self.path == "/kernels.json":
            self._json(KERNELS)
            return
        links = {"/index-local.json": "file:///dev/zero", "/index-up.json": "../../etc/passwd"}
        if self.path in links:
            body = json.dumps({"driver_versions": [{"driver_version": "5.0.1+driver",
                                                    "probes_url": links[self.path]}]}).encode()
            self._head(200, {"Content-Length": str(len(body))})
            self.wfile.write(body)
            return
        self._head(404, {"Content-Length": "0"})

    def _json(self, data: object) -> None:
        body = json.dumps(data).encode()
        self._head(200, {"Content-Length": str(len(body))})
        self.wfile.write(body)

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass
