"""`falco-probes mirror DEST`: catalogued probes into a folder any web server can serve."""

from __future__ import annotations

import argparse

from builder.commands.common import (
    add_catalog_option,
    add_config_option,
    add_json_option,
    catalog_dir,
    config_from,
    folder,
    int_in,
)
from builder.consumers.mirror import Filters, mirror, select
from builder.core.catalog import load_catalog
from builder.core.config import driver_version_for, falco_releases
from builder.core.drivertypes import DRIVER_TYPES
from builder.core.errors import EXIT_NEGATIVE, EXIT_OK, EXIT_STORE
from builder.core.limits import MAX_JOBS
from builder.core.records import ARCHES
from builder.core.versions import FalcoVersion
from builder.publish.stores.directory import DirectoryStore
from builder.ui import emit, emit_json, info, progress

DESCRIPTION = """\
Download probes listed in the catalog (from their http, https or file URLs), check each
sha256, and write them into DEST in the loader's layout: DEST/<driver_version>/<arch>/
<file>, every alias, the no-arch path old loaders use, and both + and %2B spellings.
Serve DEST with any static web server and point DRIVERS_REPO (falco-driver-loader) or
FALCOCTL_DRIVER_REPOS (falcoctl) at it. Resumable: probes already in DEST with the
right digest are not downloaded again.

exit codes: 0 every selected probe is in DEST, 1 no probe matches the filters,
2 bad input, 4 some downloads failed (run again to resume).
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("mirror", help="copy probes into a local folder to serve",
                            description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=folder, metavar="DEST", help="folder to write (created)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--driver-version", action="append", default=None, metavar="D",
                       help="only this driver version (repeatable)")
    which.add_argument("--falco-version", action="append", default=None, metavar="V",
                       help="only the driver version this Falco release loads (repeatable)")
    parser.add_argument("--target", default=None, metavar="T",
                        help="only this target (ubuntu-generic, debian, cos, ...)")
    parser.add_argument("--arch", default=None, choices=ARCHES, help="only this arch")
    parser.add_argument("--driver-type", default=None, choices=DRIVER_TYPES,
                        help="only eBPF probes (.o) or only kernel modules (.ko); default both")
    parser.add_argument("--jobs", type=int_in(1, MAX_JOBS), default=4, metavar="N",
                        help="parallel downloads (default 4)")
    add_catalog_option(parser)
    add_config_option(parser)
    add_json_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from(args, required=args.config is not None)
    drivers: set[str] | None = set(args.driver_version) if args.driver_version else None
    if args.falco_version:
        drivers = set()
        for text in args.falco_version:
            drivers.add(driver_version_for(FalcoVersion.parse(text), config))
    catalog = load_catalog(catalog_dir(args))
    records = select(catalog, Filters(frozenset(drivers) if drivers is not None else None,
                                      args.target, args.arch, args.driver_type))
    if not records:
        info("no catalogued probe matches the filters")
        if args.json:
            emit_json({"dest": str(args.dest), "selected": 0, "downloaded": 0, "present": 0,
                       "failed": [], "complete": True})
        return EXIT_NEGATIVE
    store = DirectoryStore(args.dest, falco_releases(config).falco_for)
    info(f"mirroring {len(records)} probe(s) into {args.dest}")
    with progress() as bar:
        task = bar.add_task("mirror", total=len(records))
        summary = mirror(records, store, jobs=args.jobs, on_done=lambda _r: bar.advance(task))
    if args.json:
        emit_json({"dest": str(args.dest), "selected": len(records), **summary.as_dict()})
    else:
        for probe, reason in summary.failed:
            emit(f"FAILED  {probe}: {reason}")
    info(f"{summary.downloaded} downloaded, {summary.present} already present, "
         f"{len(summary.failed)} failed; serve {args.dest} and point DRIVERS_REPO at it")
    return EXIT_STORE if summary.failed else EXIT_OK
