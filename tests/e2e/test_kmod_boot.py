"""One real boot for the kernel module: the session's falco.ko (sid's 9.1.0+driver source,
built by tests/compile/test_kmod.py's compile with the kernel's own gcc-12 against real
Debian 12 6.1 headers) loaded in that very kernel, booted from its linux-image package in
QEMU, and a copy whose first imported symbol's CRC is not the kernel's (what a twin
kernel's module is to it), which the kernel must refuse.

From there the results go the whole way: into the report, through publish (which records
the refused copy as a failure), into the catalog, and out of `find --driver-type kmod`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loadtestreports import Built, by_driver, write_built, wrong_crc_copy
from realprobe import compiled_module, real_kernel, shared_cache
from vmtools import needs_vm_tools

from builder.cli import main
from builder.core.catalog import read_fragments

pytestmark = pytest.mark.slow

REFUSED_DRIVER = "0.0.0+othercrc"


@pytest.fixture(scope="module")
def tested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A build folder with the module and its refused copy, load-tested (one boot)."""
    needs_vm_tools()
    base = tmp_path_factory.getbasetemp()
    module = compiled_module(base)
    assert module.probe is not None
    kernel = real_kernel()
    out = tmp_path_factory.mktemp("kmodtest") / "out"
    # the loader's name for it: the package version in `uname -v`, as build names it
    loader_name = f"{kernel.package_version}-amd64"
    write_built(out, [
        Built(kernel.uname_r, kernel.package_version, "9.1.0+driver", probe=module.probe,
              kernel_release=loader_name, driver_type="kmod",
              interface=dict(module.interface)),
        Built(kernel.uname_r, kernel.package_version, REFUSED_DRIVER, driver_type="kmod",
              kernel_release=loader_name,
              probe=wrong_crc_copy(module.probe, base / "othercrc.ko"),
              interface=dict(module.interface))])
    assert main(["loadtest", str(out), "--cache", str(shared_cache())]) == 0
    return out, kernel.uname_r


def test_the_module_loads_answers_its_api_captures_and_unloads(
        tested: tuple[Path, str]) -> None:
    out, uname_r = tested
    result = by_driver(out)["9.1.0+driver"]
    test = result.loadtest
    assert test is not None and test.status == "passed", test
    assert (test.kernel, test.api_version, test.schema_version) == (uname_r, "8.0.4", "4.1.0")
    assert test.events >= 40          # 20 opens and closes of the child, enter and exit
    log = (out / "logs" / "9.1.0+driver" / "x86_64" / uname_r /
           f"{result.file}.loadtest.log").read_text()
    assert "devices: falco0" in log and "corrupt: 0" in log
    assert "falco: driver loading, falco 0.23.2" in log    # sid's libs version, as Debian's


def test_a_module_with_another_kernels_symbol_crc_is_refused_and_not_published(
        tested: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = tested
    test = by_driver(out)[REFUSED_DRIVER].loadtest
    assert test is not None and test.status == "rejected"
    # the kernel's words: the CRC of the first imported symbol is not its own
    assert test.reason.startswith("insmod refused: finit_module: EINVAL Invalid argument")
    assert "disagrees about version of symbol" in test.reason
    fragment = tmp_path / "fragment.jsonl"
    assert main(["publish", str(out), "--store", "directory", "--path",
                 str(tmp_path / "store"), "--fragment", str(fragment)]) == 0
    done = read_fragments([fragment])
    assert [p.driver_type for p in done.probes] == ["kmod"]
    (failure,) = done.failures
    assert (failure.category, failure.driver_version) == ("refused", REFUSED_DRIVER)


def test_find_answers_with_the_load_tested_module(tested: tuple[Path, str], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out, uname_r = tested
    fragment = tmp_path / "fragment.jsonl"
    assert main(["publish", str(out), "--store", "directory", "--path",
                 str(tmp_path / "store"), "--base-url", "http://127.0.0.1:8000/store",
                 "--fragment", str(fragment)]) == 0
    assert main(["catalog", "merge", "--catalog", str(tmp_path / "catalog"),
                 str(fragment)]) == 0
    kernel = real_kernel()
    version = kernel.package_version
    os_release = tmp_path / "os-release"
    os_release.write_text("ID=debian\nVERSION_ID=12\n")
    capsys.readouterr()
    assert main(["find", "--catalog", str(tmp_path / "catalog"), "--falco-version", "0.43.1",
                 "--driver-type", "kmod", "--os-release", str(os_release), "--uname-r",
                 uname_r, "--uname-v", f"#1 SMP PREEMPT_DYNAMIC Debian {version} (2026)",
                 "--uname-m", "x86_64", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["falcoctl_request_path"] == \
        f"9.1.0%2Bdriver/x86_64/falco_debian_{version}-amd64_1.ko"
    assert doc["loadtest"]["status"] == "passed" and doc["loadtest"]["api_version"] == "8.0.4"
