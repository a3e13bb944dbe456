"""`falco-probes attest subjects`: what a run built, as the subject lists an attestation
signs (actions/attest-build-provenance's `subject-checksums`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from builder.commands.common import add_json_option
from builder.core.errors import EXIT_NEGATIVE, EXIT_OK
from builder.core.files import atomic_write
from builder.publish.attest import MAX_SUBJECTS, checksums_text, chunks, report_subjects
from builder.ui import emit, emit_json, info

DESCRIPTION = """\
Read build reports (report.jsonl files, or folders holding them at any depth) and write
the probes they built as sha256sum-style subject lists, at most --chunk-size per file
(one attestation each; actions/attest takes at most 1,024 subjects):
  DIR/001.sha256sums, DIR/002.sha256sums, ...
each line `<sha256>  <driver_version>/<arch>/<file>`, sorted. --matrix-out writes the
chunk names as JSON (["001", ...]) for a GitHub Actions matrix. See docs/publishing.md.

exit codes: 0 lists written, 1 the reports name no built probe, 2 bad input.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("attest", help="list built probes for build-provenance attestation",
                            description="Prepare build-provenance attestations. See "
                                        "docs/publishing.md.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    subjects = actions.add_parser("subjects", help="subject lists of what the reports built",
                                  description=DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    subjects.add_argument("reports", nargs="+", type=Path, metavar="REPORT",
                          help="a report.jsonl, or a folder searched for them")
    subjects.add_argument("--out", type=Path, required=True, metavar="DIR",
                          help="folder for the NNN.sha256sums files (created)")
    subjects.add_argument("--chunk-size", type=int, default=MAX_SUBJECTS, metavar="N",
                          help=f"subjects per file, 1 to {MAX_SUBJECTS} (default {MAX_SUBJECTS})")
    subjects.add_argument("--matrix-out", type=Path, default=None, metavar="FILE",
                          help="write the chunk names as a JSON list to FILE")
    add_json_option(subjects)
    subjects.set_defaults(func=run_subjects)


def run_subjects(args: argparse.Namespace) -> int:
    lists = chunks(report_subjects(args.reports), args.chunk_size)
    names = [f"{number:03d}" for number in range(1, len(lists) + 1)]
    for name, subjects in zip(names, lists, strict=True):
        path = args.out / f"{name}.sha256sums"
        atomic_write(path, checksums_text(subjects))
        if not args.json:
            emit(f"wrote {path} ({len(subjects)} subjects)")
    if args.matrix_out is not None:
        atomic_write(args.matrix_out, json.dumps(names) + "\n")
    if args.json:
        emit_json({"chunks": names, "subjects": sum(len(s) for s in lists),
                   "out": str(args.out)})
    info(f"{sum(len(s) for s in lists)} probe(s) to attest in {len(names)} list(s)")
    return EXIT_OK if lists else EXIT_NEGATIVE
