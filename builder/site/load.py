"""Load the catalog and write each driver version's API files, on every core.

Loading and validating 100,000 catalog records is most of a site build, and the
API files of a driver version (probes.json, SHA256SUMS, lookup shards) depend
on that driver version's catalog files only. So big catalogs are split by driver
version over worker processes, each loading its share with
`builder.core.catalog.load_catalog(only=...)` and writing its API files straight into
the site folder; the parent merges the loaded files. Small catalogs (and any
problem at all) take the plain path in this process, so errors read exactly as
`falco-probes catalog check` reports them.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from builder.core.catalog import Catalog, CatalogFile, FileKey, catalog_files, load_catalog
from builder.core.errors import ProbesError
from builder.core.versions import FalcoReleases
from builder.site import api

# Below this many bytes of catalog YAML, starting workers costs more than it saves.
PARALLEL_BYTES = 8_000_000
log = logging.getLogger("mkdocs.plugins.falco-probes")


def write_text(site_dir: Path, path: str, text: str) -> None:
    target = site_dir / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def write_driver_api(site_dir: Path, driver_version: str, releases: FalcoReleases,
                     files: Sequence[CatalogFile]) -> None:
    served = tuple(str(f) for f in releases.falco_for(driver_version))
    for path, text in api.driver_documents(driver_version, served, files):
        write_text(site_dir, path, text)


def _folders(root: Path) -> dict[str, list[tuple[tuple[str, str], int]]]:
    """driver version -> [((driver version, arch), bytes of YAML)]."""
    sizes: dict[tuple[str, str], int] = defaultdict(int)
    for path in catalog_files(root):
        parts = path.relative_to(root).parts
        if len(parts) >= 2:
            sizes[(parts[0], parts[1])] += path.stat().st_size
    out: dict[str, list[tuple[tuple[str, str], int]]] = defaultdict(list)
    for folder, size in sizes.items():
        out[folder[0]].append((folder, size))
    return out


def _balance(folders: dict[str, list[tuple[tuple[str, str], int]]],
             workers: int) -> list[list[str]]:
    """Driver versions dealt to workers, biggest first, each to the least loaded."""
    loads = [0] * workers
    shares: list[list[str]] = [[] for _ in range(workers)]
    for driver in sorted(folders, key=lambda d: -sum(s for _, s in folders[d])):
        slot = loads.index(min(loads))
        shares[slot].append(driver)
        loads[slot] += sum(s for _, s in folders[driver])
    return [share for share in shares if share]


def _worker(root: str, site_dir: str, releases: FalcoReleases,
            folders: list[tuple[str, str]]) -> dict[FileKey, CatalogFile] | None:
    """Load some folders and write their API files; None when anything is wrong."""
    try:
        catalog = load_catalog(Path(root), only=folders)
    except ProbesError:
        return None  # the parent reloads in-process for the located message
    write_apis(Path(site_dir), catalog.files.values(), releases)
    return catalog.files


def write_apis(site_dir: Path, files: Iterable[CatalogFile], releases: FalcoReleases) -> None:
    by_driver: dict[str, list[CatalogFile]] = defaultdict(list)
    for cat_file in files:
        by_driver[cat_file.driver_version].append(cat_file)
    for driver, of_driver in by_driver.items():
        write_driver_api(site_dir, driver, releases, of_driver)


def load_and_write(root: Path, site_dir: Path, releases: FalcoReleases,
                   workers: int | None = None, min_bytes: int = PARALLEL_BYTES) -> Catalog:
    """The loaded catalog; every driver version's API files are written under site_dir."""
    folders = _folders(root)
    workers = workers or min(4, os.cpu_count() or 1)
    total = sum(size for sizes in folders.values() for _, size in sizes)
    if workers > 1 and len(folders) > 1 and total >= min_bytes:
        try:
            catalog = _parallel(root, site_dir, releases, folders, workers)
        except (OSError, BrokenProcessPool, pickle.PicklingError) as exc:
            log.info("loading the catalog in one process (%s: %s)", type(exc).__name__, exc)
            catalog = None
        if catalog is not None:
            return catalog
    catalog = load_catalog(root)
    write_apis(site_dir, catalog.files.values(), releases)
    return Catalog(root, {key: catalog.files[key] for key in sorted(catalog.files)})


def _parallel(root: Path, site_dir: Path, releases: FalcoReleases,
              folders: dict[str, list[tuple[tuple[str, str], int]]],
              workers: int) -> Catalog | None:
    shares = _balance(folders, workers)
    jobs = [[folder for driver in share for folder, _ in folders[driver]] for share in shares]
    # fork when this process runs no other thread (mkdocs build); with threads
    # (mkdocs serve) forking could copy a lock some thread holds: spawn instead, which
    # re-imports the main module (a failure there falls back to loading in-process).
    method = "fork" if threading.active_count() == 1 and os.name == "posix" else "spawn"
    context = multiprocessing.get_context(method)
    loaded: dict[FileKey, CatalogFile] = {}
    with ProcessPoolExecutor(len(jobs), mp_context=context) as pool:
        for result in pool.map(_worker, [str(root)] * len(jobs), [str(site_dir)] * len(jobs),
                               [releases] * len(jobs), jobs):
            if result is None:
                return None
            loaded.update(result)
    return Catalog(root, {key: loaded[key] for key in sorted(loaded)})
