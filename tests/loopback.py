"""HTTP servers on loopback for the tests: a folder, or any handler, on a free port."""

from __future__ import annotations

import functools
import threading
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
