"""The repository's own probes.yaml, sampled end to end: every driver version whose source
is reachable x one kernel of every Debian release, series, flavour and arch (a twin pair
included), built, load-tested, published into a directory store, merged, and asked for
by `find` for every sampled kernel.

    python -m bench.sampled_run [--config probes.yaml] [--sources builder/demo.yaml]
                                [--libs-archive URL_TEMPLATE] [--out build/sampled]
                                [--plan-only]

Driver versions: those of --config whose source this machine can reach (a Debian
package), plus those --sources gives a reachable source for (builder/demo.yaml: Debian's
falcosecurity-scap-dkms of trixie and sid for 8.0.0+driver and 9.1.0+driver), plus every
`libs-archive` one when --libs-archive names where archives are (CI, or a local folder of
`git archive` tarballs). The others are listed as unreachable, not silently dropped.

Kernels: the --config's Debian target planned against the real archive (every suite,
both arches), then the newest kernel of each (Debian release, kernel series, flavour,
arch). The sample's twin groups are printed; the run fails if it has none.

Stages run as the user runs them (`falco-probes plan/build/loadtest/publish/catalog
merge/find`), each timed (wall and CPU of the stage's processes). The summary (JSON on
stdout, and in --out/summary.json) holds the counts the closing note quotes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from builder.core.catalog import load_catalog
from builder.core.config import load_config
from builder.core.paths import apt_cache
from builder.core.records import Kernel
from builder.kernels.select import version_order
from builder.plan import plan_targets

TARGET = "debian"
FALCO = "0.43.1"   # the newest legacy Falco: 9.1.0+driver's names


def reachable_versions(config: dict[str, Any], sources: dict[str, Any] | None,
                       libs_archive: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    """The driver versions this machine can build, and the versions it cannot."""
    given = {d["version"]: d for d in (sources or {}).get("driver_versions", [])}
    kept: list[dict[str, Any]] = []
    unreachable: list[str] = []
    for entry in config["driver_versions"]:
        kind = entry["source"]["kind"]
        if kind != "libs-archive":
            kept.append(entry)
        elif entry["version"] in given:
            kept.append({**entry, "source": given[entry["version"]]["source"]})
        elif libs_archive:
            kept.append({**entry, "source": {"kind": "libs-archive", "url": libs_archive}})
        else:
            unreachable.append(entry["version"])
    return kept, unreachable


def sample_config(config: dict[str, Any], versions: list[dict[str, Any]],
                  releases: Sequence[str] | None, store: Path) -> dict[str, Any]:
    """The config with only its Debian target (to `releases`, when given) and `versions`."""
    (target,) = [t for t in config["targets"] if t["name"] == TARGET]
    target = {**target, "latest": 0}
    if releases is not None:
        target["include"] = "^(" + "|".join(re.escape(r) for r in releases) + ")$"
    return {**config, "driver_versions": versions, "targets": [target],
            "store": {"kind": "directory", "path": str(store)}}


def group_key(kernel: Kernel) -> tuple[str, str, str, str]:
    series = ".".join(kernel.host.uname_r.split(".")[:2])
    return (kernel.host.version_id, series, kernel.flavor, kernel.host.uname_m)


def newest_of_each_group(kernels: Iterable[Kernel]) -> list[Kernel]:
    best: dict[tuple[str, str, str, str], Kernel] = {}
    for kernel in kernels:
        key = group_key(kernel)
        if key not in best or version_order(kernel) > version_order(best[key]):
            best[key] = kernel
    return [best[key] for key in sorted(best)]


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_config(path)  # refuse here, not halfway through a build
    return path


def run_stage(name: str, argv: list[str], allowed: tuple[int, ...] = (0,),
              stdout: Path | None = None) -> dict[str, Any]:
    """One `falco-probes` command, timed: wall seconds and the CPU of its processes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    print(f"sampled: falco-probes {' '.join(argv)}", file=sys.stderr, flush=True)
    with open(stdout or os.devnull, "w") as out:
        code = subprocess.run([sys.executable, "-m", "builder", *argv], stdout=out,
                              check=False).returncode
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code not in allowed:
        raise SystemExit(f"sampled: `falco-probes {name}` exited with {code}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"stage": name, "exit": code, "wall_s": round(time.monotonic() - start, 1),
            "cpu_s": round(cpu, 1)}


def node_line(kernel: Kernel) -> dict[str, str]:
    host = kernel.host
    os_release = f'ID={host.os_id}\nVERSION_ID="{host.version_id}"\n'
    return {"id": host.uname_r, "falco_version": FALCO, "os_release": os_release,
            "uname_r": host.uname_r, "uname_v": host.uname_v, "uname_m": host.uname_m}


def jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def counts(values: Iterable[str]) -> dict[str, int]:
    tally: dict[str, int] = {}
    for value in values:
        tally[value] = tally.get(value, 0) + 1
    return dict(sorted(tally.items()))


def build_outcomes(report: list[dict[str, Any]]) -> dict[str, int]:
    return counts("ok" if r.get("ok") else f"failed: {r.get('category')}" for r in report)


def loadtest_outcomes(report: list[dict[str, Any]]) -> dict[str, int]:
    def verdict(record: dict[str, Any]) -> str:
        load = record.get("loadtest") or {}
        return str(load.get("status") or "not run")
    tested = [r for r in report if r.get("ok")]
    with_events = sum(1 for r in tested if (r.get("loadtest") or {}).get("events", 0) > 0)
    return {**counts(verdict(r) for r in tested), "with events": with_events}


def pick_kernels(config_path: Path, catalog: Path, cache: Path | None) -> list[Kernel]:
    planned = plan_targets(load_config(config_path), load_catalog(catalog),
                           dt.datetime.now(dt.UTC).replace(microsecond=0),
                           cache=apt_cache(cache))
    return newest_of_each_group(planned.found.kernels)


def run_sample(args: argparse.Namespace) -> dict[str, Any]:
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load(args.config.read_text())
    sources = yaml.safe_load(args.sources.read_text()) if args.sources else None
    versions, unreachable = reachable_versions(config, sources, args.libs_archive)
    store = out / "store"
    everything = write_yaml(out / "debian-all.yaml", sample_config(config, versions, None, store))
    kernels = pick_kernels(everything, out / "catalog", args.cache)
    releases = [k.host.uname_r for k in kernels]
    sampled = write_yaml(out / "probes.yaml", sample_config(config, versions, releases, store))
    cache = ["--cache", str(args.cache)] if args.cache else []
    stages = [run_stage("plan", ["plan", "--config", str(sampled), "--catalog",
                                 str(out / "catalog"), "--out", str(out / "plan.json"),
                                 *cache], allowed=(0, 1))]
    plan = json.loads((out / "plan.json").read_text())
    summary: dict[str, Any] = {
        "driver_versions": [v["version"] for v in versions], "unreachable": unreachable,
        "kernels": releases, "plan": plan["summary"], "stages": stages,
        "twin_groups": sorted({(p["kernel_release"], p["arch"]) for j in plan["jobs"]
                               for p in j["probes"] if p["twins"]}),
    }
    if not summary["twin_groups"]:
        raise SystemExit("sampled: the sample holds no twin pair")
    if args.plan_only:
        return summary
    build = out / "build"
    if not args.reuse_build:
        stages.append(run_stage("build", ["build", "--config", str(sampled), "--plan",
                                          str(out / "plan.json"), "--out", str(build),
                                          "--jobs", str(args.jobs), *cache], allowed=(0, 1)))
    vms = ["--jobs", str(args.vms)] if args.vms > 1 else []
    only = ["--kernel", args.loadtest_kernels] if args.loadtest_kernels else []
    stages.append(run_stage("loadtest", ["loadtest", "--config", str(sampled), str(build),
                                         *vms, *only, *cache], allowed=(0, 1)))
    fragment = out / "fragment.jsonl"
    stages.append(run_stage("publish", ["publish", "--config", str(sampled), "--store",
                                        "directory", "--path", str(store), "--base-url",
                                        "http://127.0.0.1:8000/store", "--fragment",
                                        str(fragment), str(build)], allowed=(0, 1)))
    stages.append(run_stage("merge", ["catalog", "merge", "--catalog", str(out / "catalog"),
                                      str(fragment)]))
    nodes = out / "nodes.jsonl"
    nodes.write_text("".join(json.dumps(node_line(k)) + "\n" for k in kernels))
    stages.append(run_stage("find", ["find", "--batch", str(nodes), "--catalog",
                                     str(out / "catalog"), "--config", str(sampled)],
                            allowed=(0, 1), stdout=out / "find.jsonl"))
    report = jsonl(build / "report.jsonl")
    summary.update(build=build_outcomes(report), loadtest=loadtest_outcomes(report),
                   published=len(jsonl(fragment)),
                   find={r["id"]: {k: r.get(k) for k in ("status", "built_for", "root",
                                                         "settings", "sha256")}
                         for r in jsonl(out / "find.jsonl")})
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sampled_run",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("probes.yaml"))
    parser.add_argument("--sources", type=Path, default=Path("builder/demo.yaml"),
                        help="a config whose driver versions' sources replace unreachable "
                             "libs-archive ones (default: builder/demo.yaml)")
    parser.add_argument("--libs-archive", default=None, metavar="URL_TEMPLATE",
                        help="where libs archives are ({ref} in the URL)")
    parser.add_argument("--out", type=Path, default=Path("build/sampled"))
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--jobs", type=int, default=2, help="compiles at once")
    parser.add_argument("--vms", type=int, default=1, help="load-test VMs at once")
    parser.add_argument("--plan-only", action="store_true")
    parser.add_argument("--loadtest-kernels", default="", metavar="REGEX",
                        help="load-test only the kernels whose uname -r matches (a TCG boot "
                             "and its probes take minutes each; the rest stay not_tested)")
    parser.add_argument("--reuse-build", action="store_true",
                        help="load-test, publish and merge the build already in --out "
                             "(its figures were taken when it ran)"),
    args = parser.parse_args(argv)
    summary = run_sample(args)
    text = json.dumps(summary, indent=1)
    (args.out / "summary.json").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
