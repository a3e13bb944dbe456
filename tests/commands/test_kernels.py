"""commands/kernels.py: `falco-probes kernels` output (plain, JSON, skipped kernels),
exit codes, and targets read from probes.yaml."""

from __future__ import annotations

import json
import shutil
from dataclasses import fields
from pathlib import Path

import pytest
from crawlerlists import CURRENT, JUNK, LISTS, OLD

from builder.cli import main
from builder.core.records import HostFacts, Kernel

# --- the command ----------------------------------------------------------------------------

def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["kernels", *argv])
    out, err = capsys.readouterr()
    return code, out, err


KERNEL_KEYS = {f.name for f in fields(Kernel)} | {"arch", "key", "skipped"}


def test_json_output_has_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--source", f"kernel-crawler:{CURRENT}", "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 12
    assert all(set(row) == KERNEL_KEYS for row in rows)
    debian = next(r for r in rows if r["flavor"] == "rt-amd64")
    assert debian["host"] == {"os_id": "debian", "uname_r": "6.1.0-47-rt-amd64",
                              "uname_v": "#1 SMP PREEMPT_RT Debian 6.1.158-1",
                              "uname_m": "x86_64", "version_id": "", "variant_id": "",
                              **{f.name: f.default for f in fields(HostFacts)
                                 if f.name in ("build_id", "etc_version", "fallback")}}
    assert debian["headers"][0] == {
        "name": "linux-headers-6.1.0-47-rt-amd64_6.1.158-1_amd64.deb",
        "url": "https://mirror.example/debian/pool/main/l/linux/"
               "linux-headers-6.1.0-47-rt-amd64_6.1.158-1_amd64.deb",
        "sha256": "", "size": 0, "kind": "deb"}
    assert (debian["arch"], debian["key"], debian["skipped"]) == (
        "x86_64", "debian/x86_64/6.1.0-47-rt-amd64/6.1.158-1", None)
    assert "listed 12 kernels, skipped 0, 0 junk entries left out" in err


def test_plain_output_one_line_per_kernel_and_a_summary(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--source", f"kernel-crawler:{JUNK}", "--target", "ubuntu")
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["ubuntu-generic", "x86_64", "5.15.0-100-generic", "5.15.0-100.110", "1", "headers"],
        ["ubuntu-generic", "x86_64", "5.15.0-9-generic", "#12-Ubuntu", "0", "headers"]]
    assert "listed 2 kernels, skipped 0, 20 junk entries left out" in err
    assert f"junk: {JUNK}: record Ubuntu[2] field 'kernelrelease'" in err


def test_show_skipped_lists_every_skipped_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--source", f"kernel-crawler:{OLD}", "--min-kernel", "5.0",
                             "--target", "debian", "--show-skipped", "--json")
    rows = json.loads(out)
    assert code == 0
    assert [(r["host"]["uname_r"], r["skipped"]) for r in rows if r["target"] == "debian"] == [
        ("5.10.0-16-amd64", None),
        ("4.19.0-0.bpo.19-amd64", "kernel 4.19.0-0.bpo.19-amd64 is older than 5.0, the "
                                  "minimum for eBPF probes on x86_64")]
    assert len(rows) == 13 and sum(r["skipped"] is None for r in rows) == 1
    assert "skipped 12 (1 by min-kernel, 11 by target)" in err
    assert "skipped: amazonlinux x86_64 4.14.77-70.59.amzn1.x86_64: target amazonlinux is not "\
           "debian" in err


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--source", f"kernel-crawler:{OLD}", "--release-pattern", "^nothing$"], 1,
     "listed 0 kernels, skipped 13 (12 by include, 1 by min-kernel)"),
    (["--source", "yum"], 2, "error: 'yum' is not a kernel source"),
    (["--source", "kernel-crawler:/nonexistent/list.json"], 2, "no such file"),
    (["--source", f"kernel-crawler:{OLD}", "--exclude", "(["], 2, "not a valid regular"),
    (["--source", f"kernel-crawler:{OLD}", "--arch", "sparc"], 2, "--arch 'sparc'"),
    (["--source", f"kernel-crawler:{OLD}", "--min-kernel", "new"], 2, "--min-kernel 'new'"),
    (["--source", f"kernel-crawler:{OLD}", "--latest", "-2"], 2, "--latest -2"),
    (["--source", f"kernel-crawler:{OLD}", "--sources", "x.list"], 2, "for apt sources"),
    (["--source", "apt:a.list", "--sources", "b.list"], 2, "names a sources file"),
    (["--config", "/nonexistent/probes.yaml"], 2, "error:"),
])
def test_exit_codes(capsys: pytest.CaptureFixture[str], argv: list[str], code: int,
                    message: str) -> None:
    got, _, err = run_cli(capsys, *argv)
    assert got == code
    assert message in err


def test_a_list_of_nothing_but_junk_is_bad_input(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    only_junk = tmp_path / "list.json"
    only_junk.write_text(json.dumps({"Ubuntu": [{"kernelrelease": "a/b"}]}))
    code, out, err = run_cli(capsys, "--source", f"kernel-crawler:{only_junk}")
    assert (code, out) == (2, "")
    assert f"error: {only_junk}: record Ubuntu[0] field 'kernelrelease': 'a/b' is not" in err
    assert f"error: {only_junk}: record Ubuntu[0] field 'kernelversion': missing required" in err
    assert "hint: kernel-crawler:" in err


PROBES_YAML = """\
schema_version: 1
driver_versions:
  - version: 6.0.1+driver
    falco: [0.36.2]
    source: {kind: libs-archive}
targets:
  - name: ubuntu
    kernels: kernel-crawler:lists/old-format.json
    latest: 1
  - name: debian
    kernels: "kernel-crawler:lists/{arch}/list.json"
    arch: [x86_64, aarch64]
    min_kernel: {x86_64: "6.2"}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    shutil.copytree(LISTS, tmp_path / "lists")
    path = tmp_path / "probes.yaml"
    path.write_text(PROBES_YAML)
    return path


def test_config_target_brings_its_source_and_filters(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--config", str(config), "--target", "ubuntu", "--json")
    assert code == 0
    assert [(r["target"], r["host"]["uname_r"]) for r in json.loads(out)] == [
        ("ubuntu-oracle", "4.15.0-1087-oracle"), ("ubuntu-gke-4.15", "4.15.0-1032-gke"),
        ("ubuntu-hwe", "4.18.0-13-generic")]
    code, out, _ = run_cli(capsys, "--config", str(config), "--target", "debian", "--json")
    assert code == 0
    assert [(r["arch"], r["host"]["uname_r"]) for r in json.loads(out)] == [
        ("x86_64", "6.12.48+deb12-cloud-amd64"), ("aarch64", "6.1.0-47-arm64")]
    # Options given on the command line override the target's.
    code, out, _ = run_cli(capsys, "--config", str(config), "--target", "debian", "--arch",
                           "x86_64", "--min-kernel", "0.0", "--json")
    assert len(json.loads(out)) == 3


@pytest.mark.parametrize(("target", "message"), [
    (None, "--config needs --target NAME"), ("fedora", "no target named 'fedora'")])
def test_config_needs_a_known_target(config: Path, capsys: pytest.CaptureFixture[str],
                                     target: str | None, message: str) -> None:
    argv = ["--config", str(config), *(["--target", target] if target else [])]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err
    assert "hint: targets" in err and ": ubuntu, debian" in err
