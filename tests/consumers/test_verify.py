"""consumers/verify.py: probe files checked against the catalog or a site index (a hostile
server's included), by the ELF check and against their attestation."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from attestations import bundle_for
from buildreports import Spec, build_with_logs, specs, write_report
from catalogfiles import write_catalog
from commandline import MAX_RSS_MB, cli, measured
from fakegithub import FakeGitHub
from fakeprobe import fake_probe_bytes
from githubstore import TOKEN, make_store
from hostileinputs import fifo
from loopback import get, http_server
from publishing import publish_all

from builder.cli import main
from builder.consumers.verify import index_from_catalog, load_index, verify_file
from builder.core.catalog import load_catalog, merge_into
from builder.core.records import ProbeRecord
from builder.core.versions import BUILTIN_RELEASES
from builder.publish.stage import FragmentFile, Provenance, load_reports, publish
from builder.publish.stores.assetnames import asset_name
from builder.publish.stores.directory import DirectoryStore
from builder.shared.fetch import sha256_file
from builder.site.load import write_apis
from builder.site.model import build_site
from builder.site.plugin import write_site_api as write_api_index

ALIAS = "falco_ubuntu-aws_5.15.0-1034-aws_38.o"


@pytest.fixture
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A catalog and a directory store with probes of two driver versions."""
    monkeypatch.chdir(tmp_path)
    write_report(tmp_path / "build", [
        *specs(2),
        *specs(1, start=1034, driver_version="5.0.1+driver", target="ubuntu-aws",
               aliases=(ALIAS,))])
    store = DirectoryStore(tmp_path / "store", BUILTIN_RELEASES.falco_for)
    items, _ = load_reports([tmp_path / "build"], Provenance())
    with FragmentFile(tmp_path / "f.jsonl") as fragment:
        publish(items, [], store, fragment)
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    return tmp_path / "catalog", tmp_path / "store"


def probe(catalog: Path, driver_version: str) -> ProbeRecord:
    return next(p for p in load_catalog(catalog).probes() if p.driver_version == driver_version)


def copy(source: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    return dest


def case_files(catalog: Path, store: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, expected status)."""
    p6, p5 = probe(catalog, "6.0.1+driver"), probe(catalog, "5.0.1+driver")
    real6 = store / "6.0.1+driver" / "x86_64" / p6.file
    real5 = store / "5.0.1+driver" / "x86_64" / p5.file
    tampered = tmp / "t" / p6.file
    tampered.parent.mkdir(parents=True)
    tampered.write_bytes(fake_probe_bytes("tampered"))
    stranger = tmp / "s" / "falco_nobody_1.0_1.o"
    stranger.parent.mkdir(parents=True)
    stranger.write_bytes(fake_probe_bytes("stranger"))
    return {
        "canonical": (real6, "ok"),
        "alias": (store / "5.0.1+driver" / "x86_64" / ALIAS, "ok"),
        "github-asset-name": (copy(real5, tmp / "a" / asset_name(p5.file)), "ok"),
        "renamed-by-user": (copy(real6, tmp / "u" / "probe.o"), "ok"),
        "tampered": (tampered, "mismatch"),
        "unknown": (stranger, "unknown"),
        "missing": (tmp / "nope.o", "unreadable"),
        "other-driver-version": (real5, "ok"),
    }


CASES = ["canonical", "alias", "github-asset-name", "renamed-by-user", "tampered", "unknown",
         "missing"]


@pytest.mark.parametrize("case", CASES)
def test_verify_against_the_catalog(published: tuple[Path, Path], tmp_path: Path,
                                    case: str) -> None:
    catalog, store = published
    path, status = case_files(catalog, store, tmp_path)[case]
    verdict = verify_file(path, index_from_catalog(load_catalog(catalog)))
    assert verdict.status == status, verdict.message
    assert verdict.ok == (status == "ok")


def test_driver_version_and_arch_narrow_the_search(published: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    catalog, store = published
    path, _ = case_files(catalog, store, tmp_path)["other-driver-version"]
    index = index_from_catalog(load_catalog(catalog))
    assert verify_file(path, index, driver_version="5.0.1+driver").ok
    assert verify_file(path, index, driver_version="6.0.1+driver").status == "unknown"
    assert verify_file(path, index, arch="aarch64").status == "unknown"


def test_a_listed_digest_must_still_be_a_probe(tmp_path: Path) -> None:
    junk = tmp_path / "falco_x_1.0_1.o"
    junk.write_bytes(b"\x7fELF but not really")
    record = {"kind": "probe", "driver_version": "6.0.1+driver", "arch": "x86_64",
              "target": "x", "kernel_release": "1.0", "kernel_version": "1",
              "sha256": sha256_file(junk), "size": junk.stat().st_size,
              "url": "https://x.example/falco_x_1.0_1.o"}
    (tmp_path / "f.jsonl").write_text(json.dumps(record) + "\n")
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    verdict = verify_file(junk, index_from_catalog(load_catalog(tmp_path / "catalog")))
    assert verdict.status == "not_a_probe" and "truncated" in verdict.elf_reason


class _AnyPage(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "page/"


def write_site_api(catalog: Path, site: Path) -> Path:
    """The site's own api/ documents (index.json and the probe lists it links)."""
    model = build_site(load_catalog(catalog), BUILTIN_RELEASES)
    write_apis(site, model.catalog.files.values(), model.releases)
    write_api_index(site, model, _AnyPage())
    return site / "api" / "index.json"


def test_site_index_from_a_file_and_over_http(published: tuple[Path, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    catalog, store = published
    index_json = write_site_api(catalog, tmp_path / "site")
    assert "probes" not in json.loads(index_json.read_text())  # lists are linked, not inline
    files = case_files(catalog, store, tmp_path)
    index = load_index(str(index_json))
    assert index.size == 3
    alias = verify_file(files["alias"][0], index)
    assert alias.ok and alias.matches[0].driver_version == "5.0.1+driver"
    assert load_index(index_json.as_uri()).size == 3
    assert load_index(str(index_json), driver_version="5.0.1+driver").size == 1
    with http_server(tmp_path / "site") as base:
        code = main(["verify", "--index", f"{base}/api/index.json", "--json",
                     str(files["canonical"][0]), str(files["tampered"][0])])
    assert code == 1
    report = json.loads(capsys.readouterr().out)
    assert [f["status"] for f in report["files"]] == ["ok", "mismatch"]
    assert report["ok"] is False and report["files"][0]["elf_ok"] is True


def test_any_json_with_probe_entries_is_an_index(published: tuple[Path, Path],
                                                 tmp_path: Path) -> None:
    catalog, store = published
    entries = [{"driver_version": p.driver_version, "arch": p.arch, "file": p.file,
                "sha256": p.sha256} for p in load_catalog(catalog).probes()]
    (tmp_path / "list.json").write_text(json.dumps({"probes": entries}))
    files = case_files(catalog, store, tmp_path)
    assert verify_file(files["canonical"][0], load_index(str(tmp_path / "list.json"))).ok


def test_cli(published: tuple[Path, Path], tmp_path: Path,
             capsys: pytest.CaptureFixture[str]) -> None:
    catalog, store = published
    files = case_files(catalog, store, tmp_path)
    good = [str(files[c][0]) for c in ("canonical", "alias", "github-asset-name")]
    assert main(["verify", "--catalog", str(catalog), *good]) == 0
    out = capsys.readouterr().out
    assert out.count("OK  ") == 3
    assert main(["verify", "--catalog", str(catalog), *good, str(files["unknown"][0])]) == 1
    assert "UNKNOWN  " in capsys.readouterr().out
    assert main(["verify", "--catalog", str(catalog), "--index", "x.json", good[0]]) == 2
    (tmp_path / "empty.json").write_text("{}")
    assert main(["verify", "--index", str(tmp_path / "empty.json"), good[0]]) == 2
    assert "no probe entries" in capsys.readouterr().err
    assert main(["verify", "--catalog", str(tmp_path / "nowhere"), good[0]]) == 2


def test_verify_does_not_read_a_fifo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "catalog"
    write_catalog(root, "probes: []\n")
    code, out, _ = cli(["verify", "--catalog", str(root), str(fifo(tmp_path)), "/dev/zero"],
                       capsys)
    assert code == 1
    assert out.splitlines() == [f"UNREADABLE  {tmp_path}/fifo: is a FIFO, not a regular file",
                                "UNREADABLE  /dev/zero: is a device, not a regular file"]


# --- documents over http: bounded in size, never a path to local files -----------------------

@pytest.mark.parametrize(("path", "message"), [
    ("/endless", "is larger; a site index or probe list read by verify --index (file or URL) "
                 "may be at most 32MB"),
    ("/huge", "is 1000000000000000 bytes; a site index"),
    ("/index-local.json", "links to 'file:///dev/zero': a remote index may only link to "
                          "http(s) URLs"),
], ids=["endless body", "Content-Length 10^15", "remote index linking file:///dev/zero"])
def test_verify_index_from_a_hostile_server(hostile: str, tmp_path: Path, path: str,
                                            message: str) -> None:
    probe = tmp_path / "falco_debian_6.1.0-1-amd64_1.o"
    probe.write_bytes(b"x")
    code, _, err, mb = measured(["verify", "--index", f"{hostile}{path}", str(probe)])
    assert code == 2
    assert message in err, err
    assert mb < MAX_RSS_MB


def test_relative_links_of_a_remote_index_stay_on_the_server(hostile: str,
                                                             tmp_path: Path) -> None:
    probe = tmp_path / "p.o"
    probe.write_bytes(b"x")
    code, _, err, _ = measured(["verify", "--index", f"{hostile}/index-up.json", str(probe)])
    assert code == 2
    assert f"{hostile}/etc/passwd: HTTP 404" in err  # asked the server, not the disk


# --- GitHub releases -------------------------------------------------------------------------

@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN, owner="acme", repo="probes") as server:
        yield server


def test_verify_fetches_the_bundle_a_record_links(fake: FakeGitHub, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    results = build_with_logs(tmp_path / "build", specs(1))
    bundle = bundle_for(tmp_path / "build", results, tmp_path / "a.json")
    probes, _ = publish_all(tmp_path / "build", make_store(fake), tmp_path / "f.jsonl", [bundle])
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / probes[0].file).write_bytes(get(probes[0].url))
    assert main(["verify", "--catalog", "catalog", "--require-attestation", "--json",
                 str(tmp_path / "dl" / probes[0].file)]) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert files[0]["attestation"]["attested"] is True


def test_a_kernel_module_is_verified_with_the_modules_check(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    """A .ko is checked as a module (machine, name, vermagic, the API versions of the driver
    version it is listed under), never as an eBPF object."""
    write_report(tmp_path / "build", [
        Spec("6.1.0-57-amd64", driver_version="9.1.0+driver", target="debian",
             driver_type="kmod")])
    store = DirectoryStore(tmp_path / "store", BUILTIN_RELEASES.falco_for)
    items, _ = load_reports([tmp_path / "build"], Provenance())
    with FragmentFile(tmp_path / "f.jsonl") as fragment:
        publish(items, [], store, fragment)
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    module = tmp_path / "store/9.1.0+driver/x86_64/falco_debian_6.1.0-57-amd64_1.ko"
    index = index_from_catalog(load_catalog(tmp_path / "catalog"))
    verdict = verify_file(module, index)
    assert verdict.ok, verdict.message
    assert main(["verify", "--catalog", str(tmp_path / "catalog"), str(module)]) == 0
    # the same bytes listed as 8.0.0+driver's module: its API versions are not 8.0.0's
    line = json.loads((tmp_path / "f.jsonl").read_text().splitlines()[0])
    line["driver_version"] = "8.0.0+driver"
    (tmp_path / "g.jsonl").write_text(json.dumps(line) + "\n")
    merge_into(tmp_path / "other", [tmp_path / "g.jsonl"])
    other = verify_file(module, index_from_catalog(load_catalog(tmp_path / "other")))
    assert other.status == "not_a_probe"
    assert other.elf_reason == (".modinfo api_version 8.0.4 and schema_version 4.1.0 are not "
                                "driver 8.0.0+driver's (8.0.3 and 3.5.0)")
