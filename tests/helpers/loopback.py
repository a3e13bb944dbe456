"""HTTP servers on loopback for the tests: a folder, or any handler, on a free port (in
this process, or `python -m http.server` as a static server of its own), and reading a
URL back."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class QuietFiles(SimpleHTTPRequestHandler):
    """Static files without a log line per request (pytest shows stderr on failures)."""

    def log_message(self, *args: Any) -> None:
        pass


def files(folder: Path, handler: type[SimpleHTTPRequestHandler] = QuietFiles
          ) -> Callable[..., BaseHTTPRequestHandler]:
    """A handler factory serving `folder`."""
    return functools.partial(handler, directory=str(folder))


@contextmanager
def serving(handler: Callable[..., BaseHTTPRequestHandler],
            poll_interval: float = 0.5) -> Iterator[str]:
    """`handler` on 127.0.0.1 in a background thread; yields the base URL, no trailing
    slash. The server stops and closes its socket on exit, even when the test fails."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(poll_interval,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def http_server(folder: Path) -> Iterator[str]:
    """`python -m http.server` on a free loopback port; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
         "--directory", str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"port (\d+)", line)
        assert match, line
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def fetch(url: str) -> bytes | int:
    """The body at `url`, or the HTTP status code of an error answer."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code


def get(url: str) -> bytes:
    """The body at `url` (an error answer raises)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())
