"""Compatibility matrix: every driver version (and driver type) of a probes.yaml against
one kernel of every Debian series and architecture, built for real by `falco-probes build`.

    python -m bench.matrix [--config probes.yaml] [--libs-archive URL_TEMPLATE]
                           [--arch x86_64 --arch aarch64] [--driver-type kmod]
                           [--markdown FILE]

Kernels: the newest plain-flavour kernel of Debian 11 (5.10), Debian 12 (6.1 and
6.12+deb12), Debian 13 (6.12+deb13) and sid, read from the mirror this machine's apt
uses. `--libs-archive` replaces the URL of every `libs-archive` source (for example a
folder of `git archive` tarballs, file:///srv/libs/{ref}.tar.gz, where GitHub cannot be
reached). Each row is a driver version and type (`9.1.0+driver kmod`: the types its
`types:` lists, or only `--driver-type`); each cell is `ok` or the failure's category
(records.FAILURE_CATEGORIES), a kernel module's also the gcc that built it; the report and
every log stay in --out. `make matrix` runs it on builder/demo.yaml, whose
sources (Debian's packages) are reachable from any Debian machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from builder.core.config import load_config
from builder.core.drivertypes import DRIVER_TYPES
from builder.core.paths import apt_cache
from builder.core.records import Kernel
from builder.core.report import BuildResult, read_report
from builder.kernels.select import version_order
from builder.plan import Job, Plan, plan_probe, plan_to_dict
from builder.shared.apt import AptArchive

# (column, suites, uname -r pattern with {flavor})
SERIES = (
    ("Debian 11 5.10", ("bullseye", "bullseye-security"), r"5\.10\.0-\d+-{flavor}"),
    ("Debian 12 6.1", ("bookworm", "bookworm-updates", "bookworm-security"),
     r"6\.1\.0-\d+-{flavor}"),
    ("Debian 12 6.12", ("bookworm", "bookworm-updates", "bookworm-security"),
     r"6\.12\.\d+\+deb12-{flavor}"),
    ("Debian 13 6.12", ("trixie", "trixie-updates", "trixie-security"),
     r"6\.12\.\d+\+deb13-{flavor}"),
    ("sid", ("sid",), r"\d+\.\d+\.\d+\+deb\d+-{flavor}"),
)
FLAVOR = {"x86_64": "amd64", "aarch64": "arm64"}


def newest(suites: tuple[str, ...], pattern: str, arch: str) -> Kernel | None:
    import re

    archive = AptArchive(apt_cache(), suites=suites, arch=arch)
    archive.update()
    wanted = re.compile(pattern.format(flavor=FLAVOR[arch]))
    found = [k for k in archive.kernels() if wanted.fullmatch(k.host.uname_r)]
    return max(found, key=version_order) if found else None


def with_archives(config_path: Path, template: str | None, work: Path) -> Path:
    """The config, with every libs-archive source read from `template` instead."""
    if template is None:
        return config_path
    text = config_path.read_text()
    text = text.replace("{kind: libs-archive}", f"{{kind: libs-archive, url: '{template}'}}")
    out = work / "probes.yaml"
    out.write_text(text)
    load_config(out)  # fail here, not halfway through the build
    return out


def table(rows: list[str], columns: list[str], cells: dict[tuple[str, str], str]) -> str:
    lines = ["| driver version | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    for row in rows:
        lines.append(f"| {row} | " + " | ".join(cells.get((row, c), "-") for c in columns)
                     + " |")
    return "\n".join(lines) + "\n"


def cell(result: BuildResult) -> str:
    """`ok` or the failure's category; a module's with the gcc major that built it."""
    text = "ok" if result.ok else result.category or result.step
    gcc = result.compiler.get("gcc", "").split(" ", 1)[0]
    return f"{text} ({gcc})" if result.ok and gcc else text


def main(argv: list[str]) -> dict[str, object]:
    parser = argparse.ArgumentParser(prog="python -m bench.matrix", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("builder/demo.yaml"))
    parser.add_argument("--libs-archive", default=None, metavar="URL_TEMPLATE")
    parser.add_argument("--arch", action="append", choices=sorted(FLAVOR))
    parser.add_argument("--driver-type", action="append", choices=DRIVER_TYPES,
                        help="only this type (repeatable; default: each version's `types`)")
    parser.add_argument("--series", action="append", metavar="LABEL",
                        help="only these columns (e.g. 'sid', 'Debian 12 6.1'; repeatable)")
    parser.add_argument("--out", type=Path, default=Path("build/matrix"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write the table to this file")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    config_path = with_archives(args.config.resolve(), args.libs_archive, args.out)
    config = load_config(config_path)
    rows = [(d.version, kind) for d in config.driver_versions for kind in d.types
            if not args.driver_type or kind in args.driver_type]
    jobs, columns = [], []
    for arch in args.arch or ["x86_64", "aarch64"]:
        for label, suites, pattern in SERIES:
            if args.series and label not in args.series:
                continue
            kernel = newest(suites, pattern, arch)
            if kernel is None:
                print(f"{label} {arch}: no kernel in {', '.join(suites)}", file=sys.stderr)
                continue
            column = f"{label} {arch} ({kernel.host.uname_r})"
            columns.append(column)
            jobs.append(Job(kernel, tuple(plan_probe(kernel, version, config.releases,
                                                     driver_type=kind)
                                          for version, kind in rows)))
    plan = args.out / "plan.json"
    plan.write_text(json.dumps(plan_to_dict(Plan(tuple(jobs), ()))))
    report = args.out / "build"
    shutil.rmtree(report, ignore_errors=True)  # build appends to a report; start afresh
    subprocess.run([sys.executable, "-m", "builder", "build", "--config", str(config_path),
                    "--plan", str(plan), "--out", str(report), "--jobs", str(args.jobs)],
                   check=True)
    by_key = {job.kernel.key: column for job, column in zip(jobs, columns, strict=True)}
    cells = {(f"{r.driver_version} {r.driver_type}", by_key[r.kernel_key]): cell(r)
             for r in read_report(report / "report.jsonl")}
    markdown = table([f"{version} {kind}" for version, kind in rows], columns, cells)
    print(markdown)
    if args.markdown is not None:
        args.markdown.write_text(markdown)
    return {"columns": columns, "cells": {f"{k[0]} | {k[1]}": v for k, v in cells.items()}}


if __name__ == "__main__":
    main(sys.argv[1:])
