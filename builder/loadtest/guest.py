"""Inside the load-test VM: load each probe of the job, one JSON line of results per probe.

    python -m builder.loadtest.guest JOB.json

JOB.json (written by the host's `stage`): {"probes": [{"key": K, "path": P, "recipe":
R}, ...], "results": "<file>"}, R being what events.count_events needs (or null). A
kernel module's entry says `"driver_type": "kmod"` and carries its `interface`
(kmodguest.py loads it).
Each probe's result is appended to the results file as soon as it is known (and
fsynced: the file is on the host, over 9p), so a probe that crashes the kernel
leaves the others' results behind. Progress goes to stdout, which is the VM's serial console.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from dataclasses import asdict
from typing import Any

from builder.loadtest.bpf import Bpf
from builder.loadtest.loader import Capture, ProbeResult, load_probe

MARK = "falco-probes-vm:"


def result_line(key: str, result: ProbeResult) -> dict[str, Any]:
    data = asdict(result)
    data["key"] = key
    data["passed"] = result.passed
    data["reason"] = result.reason()
    return data


def run(job: dict[str, Any]) -> int:
    # Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; libscap raises it too.
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    bpf = Bpf()
    with open(job["results"], "a", encoding="utf-8") as out:
        for probe in job["probes"]:
            print(f"{MARK} loading {os.path.basename(probe['path'])}", flush=True)
            if probe.get("driver_type") == "kmod":
                line, said = _module(probe)
            else:
                line, said = _probe(probe, bpf)
            out.write(json.dumps(line) + "\n")
            out.flush()
            os.fsync(out.fileno())
            print(f"{MARK} {said}", flush=True)
    return 0


def _probe(probe: dict[str, Any], bpf: Bpf) -> tuple[dict[str, Any], str]:
    recipe = probe.get("recipe")
    result = load_probe(probe["path"], bpf, capture=_capture(recipe) if recipe else None)
    line = result_line(probe["key"], result)
    state = "passed" if result.passed else f"rejected: {line['reason'][:300]}"
    events = f", {result.events} events" if recipe else ""
    return line, f"{result.accepted}/{result.total} programs in {result.seconds:.1f} s" \
                 f"{events}, {state}"


def _module(probe: dict[str, Any]) -> tuple[dict[str, Any], str]:
    from builder.loadtest.kmodguest import load_module  # only when there is a module

    line = {**load_module(probe["path"], probe.get("interface") or {}), "key": probe["key"]}
    state = "passed" if line["passed"] else f"rejected: {line['reason'][:300]}"
    return line, f"module loaded in {line.get('insmod_seconds', 0)} s, API " \
                 f"{line.get('api_version', '?')}, {line['events']} events, {state}"


def _capture(recipe: dict[str, Any]) -> Capture:
    from builder.loadtest.events import count_events  # only when there is something to capture

    return lambda maps, fillers, bpf: count_events(recipe, maps, fillers, bpf)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"usage: python -m builder.loadtest.guest JOB.json\n{__doc__}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with open(argv[0], encoding="utf-8") as handle:
        job = json.load(handle)
    code = run(job)
    print(f"{MARK} guest done in {time.perf_counter() - started:.1f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
