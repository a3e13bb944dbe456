"""What keeping compile logs and provenance bundles costs a publish, against the fake GitHub.

    python -m bench.bench_publish [--probes 200] [--failures 20]

The same build published twice into fresh fakes: probes only, then with every probe's
and failure's compile log and one bundle. The figures that matter are counts (API calls,
writes: what GitHub's limits count) and their ratio; the seconds are the fake's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

HELPERS = Path(__file__).resolve().parent.parent / "tests" / "helpers"


def run(probes: int, failures: int, sidecars: bool) -> dict[str, Any]:
    sys.path.insert(0, str(HELPERS))
    from attestations import unsigned_bundle
    from buildreports import rewrite_report, specs, write_report
    from fakegithub import FakeGitHub
    from githubstore import TOKEN, make_store

    from builder.publish.attest import Subject, load_bundles, subject_name
    from builder.publish.stage import FragmentFile, Provenance, load_reports, publish

    with tempfile.TemporaryDirectory() as tmp, \
            FakeGitHub(token=TOKEN, owner="acme", repo="probes") as fake:
        folder = Path(tmp) / "build"
        results = write_report(folder, specs(probes), failures=specs(failures, start=probes))
        bundles = []
        if sidecars:
            logged = []
            for result in results:
                log = folder / "logs" / f"{result.file}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(f"compile log of {result.file}\n" * 40)
                logged.append(replace(result, log=str(log.relative_to(folder))))
            rewrite_report(folder, logged)
            bundles = [unsigned_bundle(Path(tmp) / "bundle.json", [
                Subject(subject_name(r.driver_version, r.arch, r.file), r.sha256)
                for r in results if r.ok])]
        items, failed = load_reports([folder], Provenance(), load_bundles(bundles))
        started = time.perf_counter()
        with FragmentFile(Path(tmp) / "f.jsonl") as fragment:
            summary = publish(items, failed, make_store(fake), fragment)
        seconds = time.perf_counter() - started
        return {"api_calls": fake.count(), "writes": fake.count("POST"),
                "assets": sum(len(r["assets"]) for r in fake.releases()),
                "uploaded": summary.uploaded, "seconds": round(seconds, 2)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--failures", type=int, default=20)
    args = parser.parse_args(argv)
    plain = run(args.probes, args.failures, sidecars=False)
    kept = run(args.probes, args.failures, sidecars=True)
    figures = {"probes": args.probes, "failures": args.failures, "probes_only": plain,
               "with_logs_and_bundle": kept,
               "writes_ratio": round(kept["writes"] / plain["writes"], 2),
               "writes_per_probe": round(kept["writes"] / args.probes, 2)}
    print(json.dumps(figures, indent=1), file=sys.stderr)
    return figures


if __name__ == "__main__":
    main()
