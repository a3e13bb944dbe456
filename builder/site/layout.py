"""Where every generated page and API file lives, relative to the site root.

Pages are `<folder>/index.md` so that their URL is the folder (with
use_directory_urls) or `<folder>/index.html`. Name parts (driver versions,
targets) are validated by the catalog to be path-safe; links quote them
(`6.0.1+driver` -> `6.0.1%2Bdriver`), as MkDocs does for its own files.
"""

from __future__ import annotations

import posixpath
from urllib.parse import quote

HOME = "index.md"
DRIVERS = "drivers/index.md"
TARGETS = "targets/index.md"
FAILURES = "failures/index.md"
API_DIR = "api"
API_INDEX = "api/index.json"
KERNELS_DIR = "api/kernels"
KERNELS_INDEX = "api/kernels/index.json"
ASSETS_DIR = "assets/falco-probes"
# Scripts in load order: naming.js (the loaders' rules) and lookup.js (the JSON API)
# before find.js and site.js, which use them.
SCRIPTS = ("naming.js", "lookup.js", "find.js", "tables.js", "site.js")
ASSETS = ("site.css", *SCRIPTS)


def driver_page(driver_version: str) -> str:
    return f"drivers/{driver_version}/index.md"


def table_page(driver_version: str, target: str, part: str = "") -> str:
    folder = f"drivers/{driver_version}/{target}"
    return f"{folder}/{part}/index.md" if part else f"{folder}/index.md"


def coverage_page(target: str, part: str = "") -> str:
    return f"targets/{target}/{part}/index.md" if part else f"targets/{target}/index.md"


def failures_page(part: str = "") -> str:
    return f"failures/{part}/index.md" if part else FAILURES


def api_driver_dir(driver_version: str) -> str:
    return f"{API_DIR}/{driver_version}"


def api_probes(driver_version: str) -> str:
    return f"{api_driver_dir(driver_version)}/probes.json"


def api_sums(driver_version: str) -> str:
    return f"{api_driver_dir(driver_version)}/SHA256SUMS"


def kernels_chunk(n: int) -> str:
    return f"{KERNELS_DIR}/{n}.json"


def api_target(target: str) -> str:
    return f"{API_DIR}/targets/{target}.json"


def asset(name: str) -> str:
    return f"{ASSETS_DIR}/{name}"


def page_url(src_uri: str, use_directory_urls: bool = True) -> str:
    """The unquoted URL of a Markdown page, as MkDocs computes it."""
    folder, name = posixpath.split(src_uri)
    stem = posixpath.splitext(name)[0]
    if stem in ("index", "README"):
        if use_directory_urls:
            return f"{folder}/" if folder else "./"
        return posixpath.join(folder, "index.html")
    if use_directory_urls:
        return posixpath.join(folder, stem) + "/"
    return posixpath.join(folder, stem + ".html")


def quote_url(url: str) -> str:
    return quote(url, safe="/#:")


def relative(target: str, current: str) -> str:
    """`target` (a quoted site URL) as seen from the page at `current` (also quoted).

    Always up to the root and down again: correct from any depth, and cheap
    enough to call for every link of a 100,000-row table.
    """
    prefix = "../" * (0 if current in ("", ".", "./") else current.count("/"))
    if target in ("", "./"):
        return prefix or "./"
    return prefix + target
