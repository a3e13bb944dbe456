"""`falco-probes audit`: does the store hold exactly what the catalog says?"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from builder.commands.common import (
    add_catalog_option,
    add_config_option,
    add_json_option,
    add_store_options,
    catalog_dir,
    config_from,
    store_choice,
)
from builder.consumers.audit import MISSING_PATH, REPAIRABLE, audit, report_probes
from builder.core.catalog import load_catalog
from builder.core.errors import EXIT_NEGATIVE, EXIT_OK, InputError
from builder.publish.stage import FragmentFile
from builder.publish.stores import Budget
from builder.publish.stores.choice import open_store
from builder.ui import emit, emit_json, info

DESCRIPTION = """\
Compare the catalog with a store and list the drift: probes in the catalog but missing
or different in the store, probes in the store but not in the catalog, failed uploads
(GitHub "starter" assets) and probes waiting in unpublished draft releases.

--repair records, in the --fragment file, every probe the store holds that is not in
the catalog when a build report (--report) names it with the same sha256 (merge it
with `falco-probes catalog merge`); for a directory store it also recreates missing
alias and %2B paths of catalogued probes whose bytes are present. Everything else is
reported, never changed: missing and different probes need a publish run or a
rebuild, unknown ones a human decision. See docs/publishing.md.

exit codes: 0 no drift (or all of it repaired), 1 drift remains, 2 bad input,
4 store or network error.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("audit", help="compare the catalog with a store",
                            description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_options(parser)
    add_catalog_option(parser)
    add_config_option(parser)
    parser.add_argument("--driver-version", default=None, metavar="D",
                        help="audit only this driver version")
    parser.add_argument("--report", type=Path, action="append", default=[], metavar="REPORT",
                        help="a build report (folder or report.jsonl) naming probes that may "
                             "be in the store but not in the catalog; repeatable")
    parser.add_argument("--repair", action="store_true",
                        help="record repairable probes in --fragment (and relink directory "
                             "store paths)")
    parser.add_argument("--fragment", type=Path, default=None, metavar="FILE",
                        help="fragment --repair appends to")
    add_json_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.repair and args.fragment is None:
        raise InputError("--repair needs --fragment FILE", hint="the fragment is merged with "
                                                               "`falco-probes catalog merge`")
    config = config_from(args, required=args.config is not None)
    catalog = load_catalog(catalog_dir(args))
    store = open_store(store_choice(args), config, Budget(), dict(os.environ))
    reported = report_probes(args.report) if args.report else []
    result = audit(catalog, store, reported=reported, driver_version=args.driver_version)
    fixed: set[str] = set()
    if args.repair:
        with FragmentFile(args.fragment) as fragment:
            for record in result.repairs:
                if record.key not in fragment.probes:
                    fragment.append(record)
        fixed.add(REPAIRABLE)
        for probe in result.relink:
            store.relink(probe)
        fixed.add(MISSING_PATH)
    remaining = [d for d in result.drifts if d.kind not in fixed]
    if args.json:
        emit_json({**result.as_dict(), "repaired": len(result.drifts) - len(remaining),
                   "remaining": len(remaining)})
    else:
        for drift in result.drifts:
            mark = " (repaired)" if drift.kind in fixed else ""
            emit(f"{drift.kind}{mark}: {drift.message}")
        info(f"{result.store}: {result.checked} catalogued probe(s) checked, {result.ok} ok, "
             f"{result.stored} item(s) in the store, {len(result.drifts)} drift(s)"
             + (f", {len(result.drifts) - len(remaining)} repaired" if args.repair else ""))
        if args.repair and result.repairs:
            info(f"recorded {len(result.repairs)} probe(s) in {args.fragment}; run "
                 f"`falco-probes catalog merge {args.fragment}`")
    return EXIT_NEGATIVE if remaining else EXIT_OK
