"""consumers/find.py, `falco-probes find`: one node, a fleet (--batch), what it says when
there is no probe, the attestation it points to; node files and batch lines bounded."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from buildreports import JOB, Spec, write_report
from commandline import NODE, cli, empty_catalog, os_release
from hostileinputs import fifo
from publishing import publish_all
from testpaths import NAMING_CASES

from builder.cli import main
from builder.consumers.find import twin_settings
from builder.core.catalog import fragment_line, load_catalog, merge_into
from builder.core.naming import host_from_inputs, probe_name
from builder.core.records import FailureRecord, LoadTest, ProbeRecord, Twin
from builder.core.versions import BUILTIN_RELEASES, FalcoVersion
from builder.publish.stores.directory import DirectoryStore

CASES: list[dict[str, Any]] = yaml.safe_load(
    NAMING_CASES.read_text())
REQUESTED = [c for c in CASES if c["expect"].get("requested") is not False
             and "/" in c["expect"]["request_path"]]


def catalog_with(tmp: Path, records: list[ProbeRecord | FailureRecord]) -> Path:
    frag = tmp / "fragment.jsonl"
    frag.write_text("".join(json.dumps(fragment_line(r)) + "\n" for r in records))
    root = tmp / "catalog"
    merge_into(root, [frag])
    return root


def record_for(case: dict[str, Any], index: int) -> ProbeRecord:
    expect = case["expect"]
    arch = case["uname_m"]
    return ProbeRecord(case["driver_version"], arch, expect["target"], expect["kernel_release"],
                       expect["kernel_version"], f"{index:064x}", 100 + index,
                       f"https://example.org/p/{index}.o")


def batch_line(case: dict[str, Any]) -> dict[str, Any]:
    line = {k: case[k] for k in ("uname_r", "uname_v", "uname_m")}
    line.update(falco_version=case["falco"], os_release=case["os_release"], id=case["case"])
    if case.get("driver_version"):
        line["driver_version"] = case["driver_version"]
    if case.get("etc_version") is not None:
        line["etc_version"] = case["etc_version"]
    if case.get("fallback"):
        line["fallback"] = case["fallback"]
    return line


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str],
            stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None
            ) -> tuple[int, str, str]:
    if stdin is not None and monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_batch_reproduces_every_loader_request(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case of the loader table: the same file and request path, found in the catalog."""
    usable = [c for c in REQUESTED if c["uname_m"] in ("x86_64", "aarch64")
              and c["expect"]["kernel_release"]]
    seen: dict[tuple[str, str, str], ProbeRecord] = {}
    for i, case in enumerate(usable):
        rec = record_for(case, i)
        seen.setdefault((rec.driver_version, rec.arch, rec.file), rec)
    root = catalog_with(tmp_path, list(seen.values()))
    lines = [batch_line(c) for c in CASES if "/" not in c["uname_r"]]
    stdin = "".join(json.dumps(line) + "\n" for line in lines)
    code, out, _ = run_cli(["find", "--catalog", str(root), "--batch", "-"], capsys, stdin,
                           monkeypatch)
    results = {r["id"]: r for r in map(json.loads, out.splitlines())}
    assert len(results) == len(lines)
    for case in usable:
        got = results[case["case"]]
        assert got["file"] == case["expect"]["file"], case["case"]
        assert got["request_path"] == case["expect"]["request_path"], case["case"]
        assert got["available"] is True, (case["case"], got)
        assert got["url"] == seen[(got["driver_version"], got["arch"], got["file"])].url
    for case in CASES:
        if case["expect"].get("requested") is False:
            assert results[case["case"]]["available"] is False
            assert results[case["case"]]["status"] == "not_requested"
    assert code == 1  # some lines (the not-requested ones) have no probe


def test_batch_keeps_order_and_reports_bad_lines(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    good = {"falco_version": "0.36.2", "os_release": "ID=debian\n", "uname_r": "6.1.0-1-amd64",
            "uname_v": "#1 SMP Debian 6.1.4-1", "uname_m": "x86_64"}
    lines = [json.dumps(good), "{not json",
             json.dumps({**good, "uname_r": "6.1/../x", "falco_version": "0.34.1"}),
             json.dumps({**good, "kernel": "x"}), json.dumps({**good, "falco_version": "0.99.0"}),
             json.dumps({k: v for k, v in good.items() if k != "uname_v"}), json.dumps(good)]
    batch = tmp_path / "fleet.jsonl"
    batch.write_text("\n".join(lines) + "\n")
    code, out, _ = run_cli(["find", "--catalog", str(empty_catalog(tmp_path)), "--batch",
                            str(batch)], capsys)
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in results] == [1, 2, 3, 4, 5, 6, 7]
    assert results[0]["status"] == "not_built" and results[6]["status"] == "not_built"
    assert "invalid JSON" in results[1]["error"]
    assert "'6.1/../x' is not allowed" in results[2]["error"]
    assert "unknown key 'kernel'" in results[3]["error"]
    assert "outside the supported range" in results[4]["error"]
    assert "'uname_v' is required" in results[5]["error"]
    assert code == 2


def host_root(tmp: Path, os_release: str | None, etc_version: str | None = None,
              fallback: str | None = None) -> Path:
    etc = tmp / "host" / "etc"
    etc.mkdir(parents=True)
    if os_release is not None:
        (etc / "os-release").write_text(os_release)
    if etc_version is not None:
        (etc / "VERSION").write_text(etc_version)
    if fallback:
        (etc / fallback).write_text("x\n")
    return tmp / "host"


def test_single_node_from_host_root_found(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    host = host_from_inputs("ID=debian\n", "6.1.0-13-cloud-amd64",
                            "#1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 (2023-09-29)", "x86_64")
    name = probe_name(host, FalcoVersion.parse("0.36.2"))
    rec = ProbeRecord("6.0.1+driver", "x86_64", name.target, name.kernel_release,
                      name.kernel_version, "c" * 64, 42, "https://example.org/x.o")
    root = catalog_with(tmp_path, [rec])
    code, out, _ = run_cli(["find", "--catalog", str(root), "--json", "--falco-version",
                            "0.36.2", "--host-root", str(host_root(tmp_path, "ID=debian\n")),
                            "--uname-r", host.uname_r, "--uname-v", host.uname_v,
                            "--uname-m", "x86_64"], capsys)
    doc = json.loads(out)
    assert code == 0
    assert doc["file"] == "falco_debian_6.1.55-1-cloud-amd64_1.o"
    assert doc["request_path"] == "6.0.1%2Bdriver/x86_64/falco_debian_6.1.55-1-cloud-amd64_1.o"
    assert doc["falcoctl_request_path"] == doc["request_path"]
    assert (doc["url"], doc["sha256"], doc["size"]) == ("https://example.org/x.o", "c" * 64, 42)
    for key in ("target", "kernel_release", "kernel_version", "arch", "driver_version"):
        assert doc[key]


def test_alias_of_an_older_release_is_found(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    rec = ProbeRecord("5.0.1+driver", "x86_64", "debian", "6.1.55-1-cloud-amd64", "1", "d" * 64,
                      7, "https://example.org/y.o", aliases=("falco_debian_6.1.55-1-amd64_1.o",))
    root = catalog_with(tmp_path, [rec])
    code, out, _ = run_cli(["find", "--catalog", str(root), "--json", "--falco-version", "0.35.0",
                            "--os-release", str(host_root(tmp_path, "ID=debian\n") /
                                                "etc/os-release"),
                            "--uname-r", "6.1.0-13-cloud-amd64", "--uname-v",
                            "#1 SMP Debian 6.1.55-1 (2023-09-29)", "--uname-m", "x86_64"], capsys)
    assert code == 0 and json.loads(out)["file"] == "falco_debian_6.1.55-1-amd64_1.o"


@pytest.mark.parametrize(("uname_r", "status", "reason"), [
    ("4.9.0-13-amd64", "kernel_too_old", "too old"),
    ("6.1.0-2-amd64", "failed", "the build failed at compile (3x): error: no"),
    ("6.1.0-3-amd64", "not_built", "not built yet"),
])
def test_why_there_is_no_probe(tmp_path: Path, capsys: pytest.CaptureFixture[str], uname_r: str,
                               status: str, reason: str) -> None:
    failure = FailureRecord("6.0.1+driver", "x86_64", "debian", "6.1.0-2-amd64", "1", "compile",
                            "error: no", "https://ci.example.org/log", 3,
                            "2026-11-20T00:00:00Z")
    root = catalog_with(tmp_path, [failure])
    code, out, _ = run_cli(["find", "--catalog", str(root), "--json", "--falco-version", "0.34.1",
                            "--driver-version", "6.0.1+driver", "--os-release",
                            str(host_root(tmp_path, "ID=debian\n") / "etc/os-release"),
                            "--uname-r", uname_r, "--uname-v", "#1 SMP", "--uname-m", "x86_64"],
                           capsys)
    doc = json.loads(out)
    assert code == 1
    assert doc["available"] is False and doc["status"] == status and reason in doc["reason"]
    if status == "failed":
        assert doc["log"] == "https://ci.example.org/log"


def test_minikube_and_fallback_files_from_host_root(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    root = host_root(tmp_path, "ID=buildroot\n", etc_version="v1.26.0-1655407986-14197\n")
    code, out, _ = run_cli(["find", "--catalog", str(empty_catalog(tmp_path)), "--json",
                            "--falco-version", "0.36.2", "--host-root", str(root),
                            "--uname-r", "5.10.57", "--uname-v", "#1 SMP Thu Jun 16",
                            "--uname-m", "x86_64"], capsys)
    assert json.loads(out)["file"] == "falco_minikube_5.10.57_1_1.26.0.o" and code == 1
    other = host_root(tmp_path / "b", None, fallback="centos-release")
    run_cli(["find", "--catalog", str(empty_catalog(tmp_path)), "--json", "--falco-version",
             "0.30.0",
             "--host-root", str(other), "--uname-r", "3.10.0-1160.el7.x86_64",
             "--uname-v", "#1 SMP", "--uname-m", "x86_64"], capsys)


@pytest.mark.parametrize(("args", "message"), [
    (["--falco-version", "0.25.0"], "outside the supported range"),
    (["--falco-version", "banana"], "is not a version"),
    (["--uname-r", "6.1.0<script>"], "uname -r '6.1.0<script>': '6.1.0<script>' is not allowed"),
    (["--uname-r", "a b"], "uname -r 'a b'"),
    (["--uname-r", "6.1..0"], "must not contain '..'"),
    (["--uname-v", "#1\x00"], "uname -v"),
    (["--uname-m", "x86/64"], "uname -m"),
    (["--os-release", "/nonexistent/os-release"], "no such file"),
])
def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                args: list[str], message: str) -> None:
    base = ["find", "--catalog", str(empty_catalog(tmp_path)), "--os-release",
            str(host_root(tmp_path, "ID=debian\n") / "etc/os-release"), "--uname-r",
            "6.1.0-1-amd64", "--uname-v", "#1 SMP", "--uname-m", "x86_64"]
    code, _, err = run_cli([*base, *args], capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_os_release_without_id_is_bad_input(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["find", "--catalog", str(empty_catalog(tmp_path)), "--os-release",
                            str(host_root(tmp_path, "NAME=x\n") / "etc/os-release")], capsys)
    assert code == 2 and "no ID= line" in err


# --- never misleading -------------------------------------------------------------------

DEBIAN_12 = "ID=debian\nVERSION_ID=12\n"


def debian_node(tmp: Path, flavor: str) -> list[str]:
    os_release = tmp / "os-release"
    os_release.write_text(DEBIAN_12)
    return ["--os-release", str(os_release), "--uname-r", f"6.1.0-27-{flavor}",
            "--uname-v", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)",
            "--uname-m", "x86_64"]


def test_missing_catalog_folder_is_bad_input(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["find", "--catalog", str(tmp_path / "nope"),
                              *debian_node(tmp_path, "amd64")], capsys)
    assert code == 2 and out == ""
    assert f"error: no catalog at {tmp_path / 'nope'}" in err and "--catalog" in err


def test_another_flavours_probe_is_said_to_be_one(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Falco 0.35.0 asks a cloud-amd64 node for the plain -amd64 file: say whose it is."""
    plain = ProbeRecord("5.0.1+driver", "x86_64", "debian", "6.1.115-1-amd64", "1", "a" * 64,
                        10, "https://example.org/plain.o")
    cloud = ProbeRecord("5.0.1+driver", "x86_64", "debian", "6.1.115-1-cloud-amd64", "1",
                        "b" * 64, 10, "https://example.org/cloud.o")
    root = catalog_with(tmp_path, [plain, cloud])
    node = debian_node(tmp_path, "cloud-amd64")
    code, out, _ = run_cli(["find", "--catalog", str(root), "--falco-version", "0.35.0",
                            "--json", *node], capsys)
    result = json.loads(out)
    assert code == 0 and result["url"] == plain.url
    assert "the probe built for kernel 6.1.115-1-amd64" in result["note"]
    assert "falco_debian_6.1.115-1-cloud-amd64_1.o" in result["note"]
    code, out, _ = run_cli(["find", "--catalog", str(root), "--falco-version", "0.35.1",
                            "--json", *node], capsys)
    result = json.loads(out)
    assert code == 0 and result["url"] == cloud.url and "note" not in result


def test_a_failure_answers_under_its_old_names(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    failure = FailureRecord("5.0.1+driver", "x86_64", "debian", "6.1.115-1-amd64", "1",
                            "compile", "error: boom", log="https://example.org/log",
                            category="unsupported-kernel",
                            aliases=("falco_debian_6.1.0-27-amd64_1.o",))
    root = catalog_with(tmp_path, [failure])
    code, out, _ = run_cli(["find", "--catalog", str(root), "--falco-version", "0.34.0",
                            "--driver-version", "5.0.1+driver", "--json",
                            *debian_node(tmp_path, "amd64")], capsys)
    result = json.loads(out)
    assert code == 1 and result["status"] == "failed"
    assert result["file"] == "falco_debian_6.1.0-27-amd64_1.o"
    assert result["log"] == "https://example.org/log"


def _zero_root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "etc").mkdir(parents=True)
    (tmp_path / "root" / "etc" / "os-release").symlink_to("/dev/zero")
    return tmp_path / "root"


def _big(tmp_path: Path) -> Path:
    path = tmp_path / "big"
    path.write_text("ID=debian\n" + "#" * 70_000 + "\n")
    return path


NODE_CASES: list[tuple[str, list[str], Callable[[Path], Path], str]] = [
    ("/dev/zero as os-release", ["--os-release"], lambda _: Path("/dev/zero"),
     "is a device, not a regular file"),
    ("a FIFO as os-release", ["--os-release"], fifo, "is a FIFO, not a regular file"),
    ("HOST_ROOT whose os-release links to /dev/zero", ["--host-root"], _zero_root,
     "is a device, not a regular file"),
    ("os-release over 64 KiB", ["--os-release"], _big,
     "is 70011 bytes; an os-release or /etc/VERSION file (find) may be at most 64KB"),
    ("a FIFO as /etc/VERSION", ["--etc-version"], fifo, "is a FIFO, not a regular file"),
]


@pytest.mark.parametrize(("flag", "make", "message"), [c[1:] for c in NODE_CASES],
                         ids=[c[0] for c in NODE_CASES])
def test_node_files_are_bounded_and_regular(tmp_path: Path, flag: list[str],
                                            make: Callable[[Path], Path], message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["find", "--catalog", str(empty_catalog(tmp_path)), *flag, str(make(tmp_path)), *NODE]
    if flag != ["--os-release"] and flag != ["--host-root"]:
        argv += ["--os-release", str(os_release(tmp_path))]
    code, _, err = cli(argv, capsys)
    assert code == 2
    assert err.startswith("error: ") and message in err, err


def test_batch_answers_every_line_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FALCO_PROBES_LIMIT_JSON_LINE", "8K")
    good = json.dumps({"id": "good", "falco_version": "0.35.0", "uname_r": "6.1.0-1-amd64",
                       "uname_v": "#1 SMP Debian 6.1.0-1", "uname_m": "x86_64",
                       "os_release": "ID=debian\n"}).encode()
    lines = [good, b'{"id": "\xff\xfe"}', b"{not json", b"[" * 3_000,
             b'{"uname_r": ' + b"1" * 5000 + b"}", b'{"x": "' + b"y" * 100_000 + b'"}',
             json.dumps({**json.loads(good), "id": "huge os-release",
                         "os_release": "ID=x\n" + "#" * 70_000}).encode()[:3000] + b"}",
             good.replace(b'"good"', b'"last"')]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\n".join(lines) + b"\n")))
    code, out, _ = cli(["find", "--catalog", str(empty_catalog(tmp_path)), "--batch", "-"], capsys)
    results = [json.loads(line) for line in out.splitlines()]
    assert code == 2
    assert [r["line"] for r in results] == list(range(1, 9))
    errors = [r.get("error", "") for r in results]
    assert results[0]["id"] == "good" and results[0]["status"] == "not_built"
    assert errors[1] == "-:2: not UTF-8 (byte 8)"
    assert errors[2].startswith("-:3: invalid JSON: Expecting property name")
    assert errors[3] == "-:4: invalid JSON: nested too deeply to read"
    assert errors[4].startswith("-:5: invalid JSON: Exceeds the limit (4300 digits)")
    assert errors[5].startswith("-:6: is larger; one line of a fragment, a build report or "
                                "`find --batch` input may be at most 8KB")
    assert errors[6].startswith("-:7: invalid JSON")
    assert results[7]["id"] == "last" and results[7]["status"] == "not_built"


def test_batch_os_release_is_bounded_like_the_file(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    batch = tmp_path / "nodes.jsonl"
    batch.write_text(json.dumps({"falco_version": "0.35.0", "uname_r": "6.1.0-1-amd64",
                                 "uname_v": "#1", "uname_m": "x86_64",
                                 "os_release": "ID=x\n" + "#" * 70_000}) + "\n")
    code, out, _ = cli(["find", "--catalog", str(empty_catalog(tmp_path)), "--batch", str(batch)],
                       capsys)
    assert code == 2
    assert json.loads(out)["error"] == (f"{batch}:1: 'os_release' is 70005 characters; at most "
                                        "65536 allowed (FALCO_PROBES_LIMIT_OS_RELEASE)")
    code, _, err = cli(["find", "--catalog", str(empty_catalog(tmp_path)), "--batch", "/dev/zero"],
                       capsys)
    assert code == 2 and "error: /dev/zero: is a device, not a file of JSON lines" in err


# --- find: the answer carries the attestation and the gh commands ------------------------------

def test_find_answers_with_the_attestation_and_how_to_verify_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = host_from_inputs("ID=debian\n", "6.1.0-13-amd64",
                            "#1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 (2023-09-29)", "x86_64")
    name = probe_name(host, FalcoVersion.parse("0.36.2"))
    bundle = "https://github.com/acme/probes/releases/download/t/attestation-0.sigstore.json"
    record = ProbeRecord("6.0.1+driver", "x86_64", name.target, name.kernel_release,
                         name.kernel_version, "c" * 64, 42, "https://example.org/x.o",
                         job=JOB, attestation=bundle)
    (tmp_path / "f.jsonl").write_text(json.dumps(fragment_line(record)) + "\n")
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text("ID=debian\n")
    argv = ["find", "--catalog", str(tmp_path / "catalog"), "--falco-version", "0.36.2",
            "--host-root", str(tmp_path), "--uname-r", host.uname_r, "--uname-v",
            host.uname_v, "--uname-m", "x86_64"]
    assert main([*argv, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["attestation"] == bundle
    assert answer["verify"]["online"] == (f"gh attestation verify {record.file} "
                                          "--repo acme/probes")
    assert f"--bundle {record.file}.sigstore.json" in answer["verify"]["offline"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"verify (online): gh attestation verify {record.file} --repo acme/probes" in printed


# --- the kernel module -----------------------------------------------------------------

NODE_6_1 = ["--uname-r", "6.1.0-57-amd64", "--uname-v",
             "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-02)", "--uname-m", "x86_64"]
MODULE_CONFIG = """\
schema_version: 1
driver_versions:
  - {version: 10.2.0+driver, falco: [0.44.0, 0.44.1], types: [kmod],
     source: {kind: libs-archive}}
  - {version: 9.1.0+driver, falco: [0.43.0, 0.43.1], types: [ebpf, kmod],
     source: {kind: libs-archive}}
targets:
  - {name: debian, kernels: apt}
"""


def module(driver: str, loadtest: LoadTest | None = None, digit: str = "e") -> ProbeRecord:
    return ProbeRecord(driver, "x86_64", "debian", "6.1.192-3-amd64", "1", digit * 64, 1105600,
                       f"http://127.0.0.1:8000/store/{driver.replace('+', '%2B')}/x86_64/"
                       "falco_debian_6.1.192-3-amd64_1.ko", driver_type="kmod",
                       uname_r="6.1.0-57-amd64", loadtest=loadtest)


@pytest.fixture
def modules(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(catalog, config, os-release): 9.1.0's probe and module, 10.2.0's module."""
    passed = LoadTest("passed", "6.1.0-57-amd64", events=65, date="2026-12-08T00:22:24Z",
                      api_version="8.0.4", schema_version="4.1.0")
    probe = ProbeRecord("9.1.0+driver", "x86_64", "debian", "6.1.192-3-amd64", "1", "a" * 64,
                        3766544, "http://127.0.0.1:8000/store/9.1.0%2Bdriver/x86_64/"
                        "falco_debian_6.1.192-3-amd64_1.o", uname_r="6.1.0-57-amd64")
    root = catalog_with(tmp_path, [probe, module("9.1.0+driver", passed),
                                   module("10.2.0+driver", digit="f")])
    config = tmp_path / "probes.yaml"
    config.write_text(MODULE_CONFIG)
    return root, config, os_release(tmp_path)


def test_the_kernel_module_is_found_with_how_to_load_it(
        modules: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    root, config, release = modules
    base = ["find", "--catalog", str(root), "--config", str(config), "--os-release",
            str(release), *NODE_6_1]
    code, out, _ = run_cli([*base, "--falco-version", "0.43.1", "--driver-type", "kmod",
                            "--json"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["available"] and doc["driver_type"] == "kmod"
    assert doc["file"] == "falco_debian_6.1.192-3-amd64_1.ko"
    assert doc["request_path"] == "9.1.0%2Bdriver/x86_64/falco_debian_6.1.192-3-amd64_1.ko"
    assert doc["sha256"] == "e" * 64
    assert doc["loader"] == {
        "falcoctl": "FALCOCTL_DRIVER_REPOS=http://127.0.0.1:8000/store falcoctl driver "
                    "install --type kmod",
        "helm": "--set driver.kind=kmod"}
    assert doc["loadtest"]["api_version"] == "8.0.4"
    code, out, _ = run_cli([*base, "--falco-version", "0.43.1", "--driver-type", "kmod"],
                           capsys)
    assert "driver:        9.1.0+driver, kernel module (kmod)" in out
    assert "load test:     passed in 6.1.0-57-amd64 on 2026-12-08 (loaded and unloaded, " \
           "API 8.0.4, 65 events captured)" in out
    assert "falcoctl:      FALCOCTL_DRIVER_REPOS=http://127.0.0.1:8000/store falcoctl " \
           "driver install --type kmod" in out
    code, out, _ = run_cli([*base, "--falco-version", "0.43.1", "--json"], capsys)
    assert json.loads(out)["file"].endswith(".o")       # 0.43 loads the eBPF probe by default


def test_0_44_asks_for_its_module_by_default_and_has_no_probe(
        modules: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    root, config, release = modules
    base = ["find", "--catalog", str(root), "--config", str(config), "--os-release",
            str(release), *NODE_6_1]
    code, out, _ = run_cli([*base, "--json"], capsys)          # the newest release: 0.44.1
    doc = json.loads(out)
    assert code == 0 and (doc["falco_version"], doc["driver_type"]) == ("0.44.1", "kmod")
    assert doc["falcoctl_request_path"] == \
        "10.2.0%2Bdriver/x86_64/falco_debian_6.1.192-3-amd64_1.ko"
    assert doc["sha256"] == "f" * 64 and doc["load_tested"] is False
    code, _, err = run_cli([*base, "--falco-version", "0.44.0", "--driver-type", "ebpf"],
                           capsys)
    assert code == 2
    assert "Falco 0.44.0 is outside the supported range 0.26 to 0.43 for the eBPF probe" in err
    assert "ask for its kernel module (--driver-type kmod)" in err


def test_the_shell_loader_takes_the_module_without_bpf(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    rec = ProbeRecord("5.0.1+driver", "x86_64", "debian", "6.1.55-1-cloud-amd64", "1", "d" * 64,
                      7, "https://mirror.example/5.0.1%2Bdriver/x86_64/"
                      "falco_debian_6.1.55-1-cloud-amd64_1.ko", driver_type="kmod")
    root = catalog_with(tmp_path, [rec])
    code, out, _ = run_cli(["find", "--catalog", str(root), "--json", "--falco-version",
                            "0.35.1", "--driver-type", "kmod", "--os-release",
                            str(os_release(tmp_path)), "--uname-r", "6.1.0-13-cloud-amd64",
                            "--uname-v", "#1 SMP Debian 6.1.55-1 (2023-09-29)",
                            "--uname-m", "x86_64"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["client"] == "falco-driver-loader"
    assert doc["loader"]["falco-driver-loader"] == \
        "DRIVERS_REPO=https://mirror.example falco-driver-loader"


def test_a_refused_module_and_a_missing_one_say_so(
        modules: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    root, config, release = modules
    code, out, _ = run_cli(["find", "--catalog", str(root), "--config", str(config),
                            "--os-release", str(release), "--falco-version", "0.43.1",
                            "--driver-type", "kmod", "--uname-r", "6.1.0-56-amd64",
                            "--uname-v", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.190-1",
                            "--uname-m", "x86_64"], capsys)
    assert code == 1
    assert "not available: no kernel module for falco_debian_6.1.190-1-amd64_1.ko in the " \
           "catalog for driver 9.1.0+driver (x86_64): not built yet" in out


def test_a_batch_line_may_ask_for_the_module(modules: tuple[Path, Path, Path],
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    root, config, _ = modules
    node: dict[str, str] = {"uname_r": "6.1.0-57-amd64", "uname_v": NODE_6_1[3],
                            "uname_m": "x86_64",
            "os_release": "ID=debian\nVERSION_ID=12\n", "falco_version": "0.43.1"}
    lines = [{**node, "driver_type": "kmod"}, node, {**node, "driver_type": "modern_ebpf"}]
    code, out, _ = run_cli(["find", "--catalog", str(root), "--config", str(config),
                            "--batch", "-"], capsys,
                           "".join(json.dumps(line) + "\n" for line in lines), monkeypatch)
    results = [json.loads(line) for line in out.splitlines()]
    assert [r.get("file") for r in results[:2]] == ["falco_debian_6.1.192-3-amd64_1.ko",
                                                    "falco_debian_6.1.192-3-amd64_1.o"]
    assert results[2]["error"] == "-:3: driver_type must be ebpf or kmod" and code == 2


# --- twin kernels: one file name, two kernels, each answered with its own file ------------

TWIN_NAME = ("debian", "6.12.118-1-amd64", "1")
BOOKWORM = "6.12.118+deb12-amd64"
TRIXIE = "6.12.118+deb13-amd64"


def twin_store(tmp_path: Path) -> Path:
    """Both twins built, published into a directory store served at a base URL, merged."""
    target, release, version = TWIN_NAME
    write_report(tmp_path / "build", [
        Spec(release, version, "9.1.0+driver", target=target, uname_r=TRIXIE,
             package_version="6.12.118-1", twins=(Twin(BOOKWORM, "debian-12"),)),
        Spec(release, version, "9.1.0+driver", target=target, uname_r=BOOKWORM,
             package_version="6.12.118-1~deb12u1", root="debian-12", twins=(Twin(TRIXIE),))])
    store = DirectoryStore(tmp_path / "store", BUILTIN_RELEASES.falco_for,
                           base_url="http://mirror.example/store")
    publish_all(tmp_path / "build", store, tmp_path / "f.jsonl")
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    return tmp_path / "catalog"


def find_twin(catalog: Path, uname_r: str, package: str, tmp_path: Path,
              capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    osr = tmp_path / "os-release"
    osr.write_text("ID=debian\nVERSION_ID=13\n")
    code = main(["find", "--catalog", str(catalog), "--json", "--falco-version", "0.43.1",
                 "--os-release", str(osr), "--uname-r", uname_r, "--uname-m", "x86_64",
                 "--uname-v", f"#1 SMP PREEMPT_DYNAMIC Debian {package} (2026-11-20)"])
    return code, json.loads(capsys.readouterr().out)


def test_each_twin_gets_the_file_built_for_its_kernel(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    catalog = twin_store(tmp_path)
    code, trixie = find_twin(catalog, TRIXIE, "6.12.118-1", tmp_path, capsys)
    assert code == 0 and trixie["built_for"] == TRIXIE and "settings" not in trixie
    assert trixie["url"] == ("http://mirror.example/store/9.1.0%2Bdriver/x86_64/"
                             "falco_debian_6.12.118-1-amd64_1.o")
    code, bookworm = find_twin(catalog, BOOKWORM, "6.12.118-1~deb12u1", tmp_path, capsys)
    assert code == 0 and bookworm["built_for"] == BOOKWORM and bookworm["root"] == "debian-12"
    assert bookworm["file"] == trixie["file"] and bookworm["sha256"] != trixie["sha256"]
    assert bookworm["settings"] == {"FALCOCTL_DRIVER_REPOS": "http://mirror.example/store/"
                                    "twins/debian-12,http://mirror.example/store"}
    assert TRIXIE in bookworm["note"] and "refuses" in bookworm["note"]
    # The setting works: under the twin root, the loader's request path holds its bytes.
    served = tmp_path / "store" / "twins" / "debian-12" / bookworm["falcoctl_request_path"]
    assert hashlib.sha256(served.read_bytes()).hexdigest() == bookworm["sha256"]
    default = tmp_path / "store" / trixie["falcoctl_request_path"]
    assert hashlib.sha256(default.read_bytes()).hexdigest() == trixie["sha256"]


def test_a_kernel_with_only_its_twins_file_is_told_so(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    catalog = twin_store(tmp_path)
    other = "6.12.118+deb13.1-amd64"   # a third kernel asking for the same name: not built
    code, answer = find_twin(catalog, other, "6.12.118-1", tmp_path, capsys)
    assert code == 1 and answer["status"] == "other_kernel"
    assert BOOKWORM in answer["reason"] and TRIXIE in answer["reason"]


def test_old_loaders_shell_setting_for_a_twin(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    catalog = twin_store(tmp_path)
    record = next(p for p in load_catalog(catalog).probes() if p.root)
    assert twin_settings(record, FalcoVersion.parse("0.36.2")) == {
        "DRIVERS_REPO": "http://mirror.example/store/twins/debian-12,http://mirror.example/store"}
