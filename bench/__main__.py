"""`python -m bench`: every benchmark in turn, figures as one JSON document on stdout."""

from __future__ import annotations

import importlib
import json
import sys

BENCHES = ("bench_catalog", "bench_build", "bench_site", "bench_loadtest", "bench_publish",
           "bench_limits")


def main() -> int:
    figures = {}
    for name in BENCHES:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            print(f"{name}: not available ({exc})", file=sys.stderr)
            continue
        print(f"== {name}", file=sys.stderr)
        figures[name] = module.main([])
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
