"""`falco-probes catalog check|merge|migrate`: validate the catalog, fold fragments into it,
rewrite it in the current schema."""

from __future__ import annotations

import argparse
from pathlib import Path

from builder.commands.common import add_catalog_option, add_json_option, catalog_dir
from builder.core.catalog import (
    SCHEMA_VERSION,
    check_catalog,
    merge_into,
    migrate,
    older_schema_files,
)
from builder.core.errors import EXIT_NEGATIVE, EXIT_OK
from builder.ui import emit, emit_json, info


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("catalog", help="check, migrate or merge fragments into the catalog",
                            description="Validate the YAML catalog or merge publish/build "
                                        "fragments into it. See docs/catalog.md.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    check = actions.add_parser("check", help="validate every catalog file",
                               description="Validate every file; print path:line: message for "
                                           "each problem. Exit 1 if any.")
    check.add_argument("path", nargs="?", type=Path, default=None,
                       help="catalog folder (default: --catalog, $FALCO_PROBES_CATALOG or "
                            "./catalog)")
    add_catalog_option(check)
    add_json_option(check)
    check.set_defaults(func=run_check)

    migrate_ = actions.add_parser(
        "migrate", help="rewrite the catalog in the current schema",
        description="Rewrite every catalog file in the current schema version (all files "
                    "or none). `catalog check` lists the files an older schema wrote; they "
                    "are read as they are, and `catalog merge` rewrites the ones it touches.")
    add_catalog_option(migrate_)
    add_json_option(migrate_)
    migrate_.set_defaults(func=run_migrate)

    merge = actions.add_parser(
        "merge", help="merge fragment files into the catalog",
        description="Merge JSON Lines fragments (from `publish` and `build`) into the "
                    "catalog: idempotent; a probe with another digest is a conflict (exit 3) "
                    "and nothing is written; only changed files are rewritten.")
    merge.add_argument("fragments", nargs="+", type=Path, metavar="FRAGMENT")
    add_catalog_option(merge)
    add_json_option(merge)
    merge.set_defaults(func=run_merge)


def run_check(args: argparse.Namespace) -> int:
    root = args.path or catalog_dir(args)
    problems = check_catalog(root)
    if args.json:
        emit_json({"catalog": str(root), "ok": not problems,
                   "problems": [{"path": p.path, "line": p.line, "record": p.record,
                                 "field": p.field, "message": p.message} for p in problems]})
    else:
        for problem in problems:
            emit(str(problem))
        info(f"{root}: {len(problems)} problem(s)" if problems else f"{root}: ok")
    if not problems:
        _explain_older_schemas(root)
    return EXIT_NEGATIVE if problems else EXIT_OK


def _explain_older_schemas(root: Path) -> None:
    older = older_schema_files(root)
    for path, version in older[:10]:
        info(f"{path}: schema_version {version}, read as it is (schema {SCHEMA_VERSION} adds "
             "each probe's kernel, compiler and twin root: docs/catalog.md)")
    if older:
        info(f"{len(older)} file(s) of an older schema: `falco-probes catalog migrate` "
             f"rewrites them as schema {SCHEMA_VERSION} (so does `catalog merge`, file by file)")


def run_migrate(args: argparse.Namespace) -> int:
    root = catalog_dir(args)
    written = migrate(root)
    if args.json:
        emit_json({"catalog": str(root), "schema_version": SCHEMA_VERSION,
                   "files_written": [str(p) for p in written]})
    else:
        for path in written:
            emit(f"wrote {path}")
        info(f"{root}: {len(written)} file(s) rewritten as schema {SCHEMA_VERSION}")
    return EXIT_OK


def run_merge(args: argparse.Namespace) -> int:
    root = catalog_dir(args)
    report = merge_into(root, args.fragments)
    if args.json:
        emit_json(report.as_dict())
    else:
        for path in report.files_written:
            emit(f"wrote {path}")
        for alias in report.aliases_dropped:
            info(f"dropped ambiguous alias {alias}")
        info(f"merged: {report.added} added, {report.updated} updated, {report.unchanged} "
             f"unchanged, {report.failures_recorded} failures recorded, "
             f"{report.failures_cleared} failures cleared; {len(report.files_written)} "
             "file(s) written")
    return EXIT_OK
