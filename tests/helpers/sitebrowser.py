"""Headless Chromium for the site's browser tests: Debian's chromium driven by Playwright.

Off CI a missing browser skips the browser tests (with the command that installs it);
on CI (CI=true, which .ci/run sets) it fails them: the naming.js differential test and
the browser tests must run on every change, not quietly disappear.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from loopback import files, serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def missing(reason: str) -> None:
    """Skip, or on CI fail: a browser test that cannot run is a failure there."""
    if on_ci():
        pytest.fail(f"{reason} (CI=true: the browser tests must run)", pytrace=False)
    pytest.skip(reason)


def playwright_api() -> Any:
    try:
        import playwright.sync_api as api
    except ImportError:
        missing("playwright is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        missing("Debian's chromium is not installed (apt-get install chromium)")
    return api


@contextmanager
def chromium_context(profile: Path, **options: Any) -> Iterator[Any]:
    """A persistent Chromium context (one profile folder), closed on exit."""
    api = playwright_api()
    with api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), headless=True, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
            **options)
        try:
            yield context
        finally:
            context.close()


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """`folder` over loopback HTTP; yields the base URL (with a trailing slash)."""

    with serving(files(folder)) as url:
        yield url + "/"
