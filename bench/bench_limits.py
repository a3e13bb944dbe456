"""What hardening costs and what it saves: ratios measured in one run.

    python -m bench.bench_limits

* os-release parsing: the linear reader against shlex (the old one) on long lines; a
  linear parser takes 4x for 4x the text, shlex about 16x;
* YAML: the strict loader (duplicate keys refused, aliases counted) against a bare
  libyaml load of the same catalog file, with and without an asterisk in the text
  (which makes the loader walk the node graph for aliases);
* an alias bomb refused, against loading a plain file of the same size.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from collections.abc import Callable
from typing import Any

import yaml

from builder.core.catalog import CatalogFile, render
from builder.core.naming import parse_os_release
from builder.core.records import FailureRecord, ProbeRecord
from builder.core.yamlio import YamlSyntaxError, load_text


def best(fn: Callable[[], object], repeat: int) -> float:
    """Best CPU time of `repeat` runs: CPU time, not wall time, because the machines we
    measure on are shared and a busy neighbour stretches wall time, not ours."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def _shlex_os_release(text: str) -> None:
    for line in text.splitlines():
        shlex.split(line.partition("=")[2], comments=True)


def catalog_text(probes: int, asterisk: bool) -> str:
    records = tuple(ProbeRecord(
        "9.1.0+driver", "x86_64", "debian", f"6.1.0-{i}-amd64", "1", f"{i:064x}", 3_400_000,
        f"https://github.com/falcosecurity/falco-probes/releases/download/p/{i}.o",
        release="probes-9.1.0-driver-x86_64-debian-001", built="2026-11-25T08:00:00Z",
        commit="a" * 40, driver_ref="9.1.0+driver") for i in range(probes))
    failures = (FailureRecord("9.1.0+driver", "x86_64", "debian", "6.1.0-0-rt-amd64", "1",
                              "compile", "error: incompatible pointer type 'char *'"),)
    return render(CatalogFile("9.1.0+driver", "x86_64", "debian", records,
                              failures if asterisk else ()))


def bomb(levels: int) -> str:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _refused(text: str) -> None:
    try:
        load_text(text, "bomb.yaml")
    except YamlSyntaxError:
        return
    raise AssertionError("the alias bomb was loaded")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--probes", type=int, default=5000)
    args = parser.parse_args(argv)
    r = args.repeat
    # mypy cannot type a lambda's default argument; `n=n` binds each size to its lambda.
    ours = {n: best(lambda n=n: parse_os_release("ID=" + "a" * n), r)  # type: ignore[misc]
            for n in (1_000_000, 4_000_000)}
    old = {n: best(lambda n=n: _shlex_os_release("ID=" + "a" * n), 1)  # type: ignore[misc]
           for n in (50_000, 200_000)}
    plain, starred = catalog_text(args.probes, False), catalog_text(args.probes, True)
    bare = best(lambda: yaml.load(plain, Loader=yaml.CSafeLoader), r)
    strict = best(lambda: load_text(plain, "c.yaml"), r)
    walked = best(lambda: load_text(starred, "c.yaml"), r)
    billion = bomb(10)
    filler = "x: [" + ", ".join(["lol"] * (len(billion) // 5)) + "]\n"
    figures = {
        "os_release_linear_4M_vs_1M": round(ours[4_000_000] / ours[1_000_000], 1),
        "os_release_shlex_200k_vs_50k": round(old[200_000] / old[50_000], 1),
        "os_release_1M_chars_s": round(ours[1_000_000], 3),
        "os_release_shlex_200k_chars_s": round(old[200_000], 2),
        "catalog_file_mb": round(len(plain) / 1e6, 1),
        "ratio_strict_vs_bare_libyaml": round(strict / bare, 2),
        "ratio_strict_with_alias_walk_vs_bare": round(walked / bare, 2),
        "ratio_alias_bomb_refused_vs_plain_same_size": round(
            best(lambda: _refused(billion), r) / best(lambda: load_text(filler, "f"), r), 2),
    }
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
