"""compile/stage.py, `falco-probes build` end to end: a real Debian kernel, the real
Debian-packaged driver source, real clang; and the failures that must not stop the other
kernels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from realprobe import (
    DKMS_DRIVER_VERSION,
    DKMS_PACKAGE_VERSION,
    DKMS_SUITE,
    debian_source,
    real_kernel,
    shared_cache,
)

from builder.cli import main
from builder.core.catalog import fragment_line, load_catalog, merge_into
from builder.core.naming import host_from_inputs, probe_name
from builder.core.records import HeaderPackage, Kernel, ProbeRecord
from builder.core.report import read_report
from builder.core.versions import BUILTIN_RELEASES, v
from builder.plan import Plan, plan_job, plan_to_dict
from builder.shared.elfcheck import check_probe
from builder.shared.fetch import sha256_file

BROKEN = "9.9.9+broken"


def write_config(tmp: Path, broken_dir: Path) -> Path:
    path = tmp / "probes.yaml"
    path.write_text(f"""\
schema_version: 1
driver_versions:
  - version: {DKMS_DRIVER_VERSION}
    ref: e5c53d64
    source: {{kind: debian-package, package: falcosecurity-scap-dkms, suite: {DKMS_SUITE},
              version: {DKMS_PACKAGE_VERSION}}}
  - version: {BROKEN}
    source: {{kind: directory, path: {broken_dir}}}
targets:
  - {{name: debian, kernels: apt}}
build: {{jobs: 2, timeout: 300}}
""")
    return path


def debian_kernel(headers: tuple[HeaderPackage, ...], uname_r: str, version: str) -> Kernel:
    host = host_from_inputs("ID=debian\nVERSION_ID=12\n", uname_r,
                            f"#1 SMP PREEMPT_DYNAMIC Debian {version} (2025-11-09)", "x86_64")
    return Kernel("debian", host, headers, "apt", uname_r.split("-", 2)[-1], version)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("build")
    kernel = real_kernel()
    broken = tmp / "broken-driver"
    shutil.copytree(debian_source().driver_dir, broken)
    for path in broken.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    config_h = broken / "driver_config.h"
    config_h.write_text(config_h.read_text().replace(DKMS_DRIVER_VERSION, BROKEN))
    probe_c = broken / "bpf" / "probe.c"
    probe_c.write_text(probe_c.read_text() + "\nthis is not C;\n")
    good = debian_kernel(kernel.headers, kernel.uname_r, kernel.package_version)
    no_common = debian_kernel(tuple(h for h in kernel.headers if "-common" not in h.name),
                              kernel.uname_r.replace("-amd64", "-cloud-amd64"),
                              kernel.package_version)
    missing = debian_kernel((HeaderPackage("gone.deb", (tmp / "gone.deb").as_uri(), "0" * 64,
                                           10),), "6.1.0-99-amd64", "6.1.999-1")
    plan = Plan((plan_job(good, (DKMS_DRIVER_VERSION, BROKEN), BUILTIN_RELEASES, (1, 2)),
                 plan_job(no_common, (DKMS_DRIVER_VERSION,), BUILTIN_RELEASES),
                 plan_job(missing, (DKMS_DRIVER_VERSION,), BUILTIN_RELEASES)), ())
    plan_file = tmp / "plan.json"
    plan_file.write_text(json.dumps(plan_to_dict(plan)))
    out = tmp / "out"
    args = ["build", "--config", str(write_config(tmp, broken)), "--plan", str(plan_file),
            "--out", str(out), "--cache", str(shared_cache() / "build-cache")]
    code = main(args)
    return {"code": code, "out": out, "kernel": kernel, "args": args, "tmp": tmp,
            "results": {(r.driver_version, r.kernel_release): r
                        for r in read_report(out / "report.jsonl")}}


def test_real_probe_is_built_checked_and_named(built: dict[str, Any]) -> None:
    kernel = built["kernel"]
    assert built["code"] == 0
    release = f"{kernel.package_version.split('~')[0]}-amd64"
    result = built["results"][(DKMS_DRIVER_VERSION, release)]
    assert result.ok, result.reason
    probe = built["out"] / result.path
    assert probe.name == f"falco_debian_{release}_1.o"
    assert sha256_file(probe) == result.sha256 and probe.stat().st_size == result.size > 100_000
    check = check_probe(probe, kernel_release=kernel.uname_r)
    assert check.ok, check.reason
    # Falco 0.33-0.34 with DRIVER_VERSION set request it under `uname -r`.
    assert result.aliases == (f"falco_debian_{kernel.uname_r}_1.o",)
    assert result.compiler["clang"].startswith("Debian clang version")
    assert [h["name"] for h in result.headers] == [h.name for h in kernel.headers]
    assert result.driver_ref == "e5c53d64" and len(result.driver_source_sha256) == 64
    assert (built["out"] / result.log).read_text()


def test_every_supported_falco_release_finds_it(built: dict[str, Any], tmp_path: Path) -> None:
    """Publish-like records from the report; each release's loader request resolves."""
    kernel = built["kernel"]
    ok = [r for r in built["results"].values() if r.ok]
    records = [ProbeRecord(r.driver_version, r.arch, r.target, r.kernel_release,
                           r.kernel_version, r.sha256, r.size, "file:///p.o",
                           aliases=r.aliases) for r in ok]
    frag = tmp_path / "f.jsonl"
    frag.write_text("".join(json.dumps(fragment_line(r)) + "\n" for r in records))
    merge_into(tmp_path / "cat", [frag])
    catalog = load_catalog(tmp_path / "cat")
    host = host_from_inputs("ID=debian\n", kernel.uname_r,
                            f"#1 SMP PREEMPT_DYNAMIC Debian {kernel.package_version}", "x86_64")
    for falco in ("0.33.0", "0.34.1", "0.35.0", "0.35.1", "0.36.2", "0.37.1", "0.43.1"):
        name = probe_name(host, v(falco))
        assert catalog.lookup(DKMS_DRIVER_VERSION, "x86_64", name.file), falco


def test_compile_error_is_a_recorded_failure_with_log(built: dict[str, Any]) -> None:
    kernel = built["kernel"]
    release = f"{kernel.package_version.split('~')[0]}-amd64"
    failure = built["results"][(BROKEN, release)]
    assert not failure.ok and failure.step == "compile" and failure.attempts == 2
    assert "error:" in failure.reason and "probe.c" in failure.reason
    assert "this is not C" in (built["out"] / failure.log).read_text()


def test_missing_common_headers_and_download_failures_are_recorded(built: dict[str, Any]
                                                                    ) -> None:
    by_step = {r.step: r for r in built["results"].values() if not r.ok}
    assert "no kernel build directory" in by_step["extract"].reason
    assert by_step["download"].kernel_release == "6.1.999-1-amd64"
    assert len(built["results"]) == 4  # one result per (kernel, driver version), none lost


def test_strict_exit_code(built: dict[str, Any]) -> None:
    out = built["tmp"] / "again"
    args = [a if a != str(built["out"]) else str(out) for a in built["args"]]
    assert main([*args, "--strict"]) == 1


def test_build_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, tmp_path)
    assert main(["build", "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    assert "say what to build" in capsys.readouterr().err
    bad = tmp_path / "plan.json"
    bad.write_text('{"schema_version": 3, "jobs": [{"kernel": {"target": "x/y"}}]}')
    assert main(["build", "--config", str(config), "--plan", str(bad), "--out",
                 str(tmp_path / "o")]) == 2
    assert "field 'target'" in capsys.readouterr().err
