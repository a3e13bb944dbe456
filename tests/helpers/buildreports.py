"""Build output folders as `falco-probes build` writes them, with fast fake probes and
modules (and, for the sidecar tests, real-looking compile logs and a CI job link)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fakeprobe import make_fake_module, make_fake_probe

from builder.core.records import Twin
from builder.core.report import BuildResult, result_to_dict

BUILT = "2025-01-02T03:04:05Z"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass(frozen=True)
class Spec:
    kernel_release: str
    kernel_version: str = "1"
    driver_version: str = "6.0.1+driver"
    arch: str = "x86_64"
    target: str = "ubuntu-generic"
    aliases: tuple[str, ...] = ()
    payload: str = ""
    driver_type: str = "ebpf"       # kmod: a fake falco.ko (API 8.0.4, schema 4.1.0)
    uname_r: str = ""            # the kernel the bytes are for (twins share a file name)
    package_version: str = ""
    root: str = ""               # twin root: "" = the loader's default path
    twins: tuple[Twin, ...] = ()


def specs(count: int, start: int = 0, **fields: Any) -> list[Spec]:
    """`count` distinct probes; Ubuntu HWE-style kernel versions carry a `~`."""
    return [Spec(f"5.15.0-{i}-generic", f"{i}~20.04.1", **fields)
            for i in range(start, start + count)]


def write_report(folder: Path, probes: Iterable[Spec], failures: Iterable[Spec] = ()
                 ) -> list[BuildResult]:
    """A build output folder as `falco-probes build` writes it, with fast fake probes."""
    results = []
    for spec in probes:
        draft = BuildResult(True, spec.driver_version, spec.arch, spec.target,
                            spec.kernel_release, spec.kernel_version, uname_r=spec.uname_r,
                            package_version=spec.package_version, root=spec.root,
                            twins=spec.twins, driver_type=spec.driver_type)
        kernel = spec.uname_r or spec.kernel_release
        rel = f"probes/{spec.driver_version}/{spec.arch}/{kernel}/{draft.file}"
        make = make_fake_module if spec.driver_type == "kmod" else make_fake_probe
        path = make(_mkdir(folder / rel),
                    spec.payload or f"{spec.driver_version} {kernel} {draft.file}",
                    kernel_release=kernel)
        data = path.read_bytes()
        results.append(replace(draft, aliases=spec.aliases, path=rel,
                               sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                               built=BUILT, driver_ref=spec.driver_version))
    for spec in failures:
        results.append(BuildResult(False, spec.driver_version, spec.arch, spec.target,
                                   spec.kernel_release, spec.kernel_version, step="compile",
                                   reason="clang: error: unknown argument\nsecond line",
                                   built=BUILT, attempts=2, log="logs/x.log"))
    rewrite_report(folder, results)
    return results


def rewrite_report(folder: Path, results: Iterable[BuildResult]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(result_to_dict(r), sort_keys=True) for r in results]
    (folder / "report.jsonl").write_text("".join(line + "\n" for line in lines))


def _mkdir(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


JOB = "https://github.com/acme/probes/actions/runs/7/job/99"


def build_with_logs(folder: Path, probes: list[Spec], failures: Iterable[Spec] = ()) -> \
        list[BuildResult]:
    """A build folder whose results name their job and have real compile logs."""
    results = write_report(folder, probes, failures)
    out = []
    for result in results:
        rel = f"logs/{result.driver_version}/{result.arch}/{result.file}.log"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(f"clang log of {result.file} ok={result.ok}\n")
        out.append(replace(result, log=rel, job=JOB, source="debian-package scap-dkms 1.0"))
    rewrite_report(folder, out)
    return out
