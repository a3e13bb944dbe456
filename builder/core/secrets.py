"""The secrets a run holds (the GitHub token), so that no output carries them.

Whoever reads a secret registers it here; the terminal layer (ui.py) passes every line
it writes, to stdout, stderr and logs, tracebacks included, through `redact`. A
server that echoes the Authorization header into an error body cannot put the
token into a CI log this way, whatever path the error takes.
"""

from __future__ import annotations

import base64
import threading
import urllib.parse

MASK = "***"
_MIN_LENGTH = 8  # shorter values are too common to mask without mangling output
_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def register(secret: str) -> None:
    """Mask `secret`, and the forms it travels in (URL-quoted, base64 in basic auth)."""
    global _secrets
    secret = secret.strip()
    if len(secret) < _MIN_LENGTH:
        return
    forms = {secret, urllib.parse.quote(secret, safe=""),
             base64.b64encode(secret.encode()).decode("ascii").rstrip("=")}
    with _lock:
        # Longest first, so a form that contains another is masked whole.
        _secrets = tuple(sorted(set(_secrets) | forms, key=len, reverse=True))


def redact(text: str) -> str:
    """`text` with every registered secret replaced by ***."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def forget_all() -> None:
    """For tests: a new run holds no secret."""
    global _secrets
    with _lock:
        _secrets = ()
