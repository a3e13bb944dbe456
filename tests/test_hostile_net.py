"""Hostile servers and hostile sizes (issue 11): endless or oversized HTTP bodies, an index
pointing at local files, downloads past their size, GitHub answers that leak the token or
fill a release underneath us; and the memory of a whole command on each hostile input."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fakegithub import FakeGitHub, Fault
from loopback import serving
from test_hostile import CONFIG, HEAD, NODE, alias_bomb, good_probe, write_catalog
from test_publish import Spec, specs, write_report
from test_store_github import FAMILY, TOKEN, artifacts, make_store, publish_cli, run

from builder.core.catalog import CatalogFile, fragment_line, merge_into, render
from builder.core.errors import InputError
from builder.kernels.crawler import load_crawler
from builder.publish.stores.assetnames import marker_line, release_tag
from builder.shared.fetch import Cache

MAX_RSS_MB = 200  # the bound for any single hostile input


KERNELS = {"AmazonLinux": [  # a served kernel list whose second entry names a local file
    {"kernelversion": 1, "kernelrelease": f"4.14.77-70.{i}.amzn1.x86_64", "target": "amazonlinux",
     "headers": [f"{scheme}/Packages/kernel-devel-4.14.77-70.{i}.amzn1.x86_64.rpm"]}
    for i, scheme in enumerate(("https://al1.mirror.example", "file:///etc"))]}


class Hostile(http.server.BaseHTTPRequestHandler):
    """Answers as an attacker's server would: forever, with lies, or with local links."""

    def do_GET(self) -> None:
        if self.path.startswith("/endless"):
            self._head(200, {})
            block = b"x" * 65536
            try:
                while True:
                    self.wfile.write(block)
            except OSError:  # the client stopped reading: what we want
                return
        if self.path.startswith("/huge"):
            self._head(200, {"Content-Length": str(10 ** 15)})
            return
        if self.path == "/kernels.json":
            self._json(KERNELS)
            return
        links = {"/index-local.json": "file:///dev/zero", "/index-up.json": "../../etc/passwd"}
        if self.path in links:
            body = json.dumps({"driver_versions": [{"driver_version": "5.0.1+driver",
                                                    "probes_url": links[self.path]}]}).encode()
            self._head(200, {"Content-Length": str(len(body))})
            self.wfile.write(body)
            return
        self._head(404, {"Content-Length": "0"})

    def _json(self, data: object) -> None:
        body = json.dumps(data).encode()
        self._head(200, {"Content-Length": str(len(body))})
        self.wfile.write(body)

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    with serving(Hostile) as url:
        yield url


def measured(argv: list[str], env: dict[str, str] | None = None, stdin: Path | None = None
             ) -> tuple[int, str, str, float]:
    """Run the CLI in a fresh Python; (exit code, stdout, stderr, its peak memory in MB).

    The peak is the process's own VmHWM: getrusage's ru_maxrss would also count the
    memory of this (forking) test process, which Linux carries across exec.
    """
    script = ("import re, sys\nfrom builder.cli import main\ncode = main(sys.argv[1:])\n"
              "status = open('/proc/self/status').read()\n"
              "print('MAXRSS', re.search(r'VmHWM:\\s+(\\d+)', status).group(1), "
              "file=sys.stderr)\nsys.exit(code)\n")
    with open(stdin or os.devnull, "rb") as feed:
        done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True,
                              text=True, timeout=300, stdin=feed,
                              env={**os.environ, **(env or {})})
    match = re.search(r"MAXRSS (\d+)", done.stderr)
    assert match, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    return done.returncode, done.stdout, done.stderr, int(match.group(1)) / 1024


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


def test_a_served_kernel_list_cannot_name_local_files(hostile: str) -> None:
    found = load_crawler(f"{hostile}/kernels.json")
    assert [k.host.uname_r for k in found.kernels] == ["4.14.77-70.0.amzn1.x86_64"]
    assert [(p.record, p.field, p.message) for p in found.problems] == [
        ("AmazonLinux[1]", "headers", "header URL 'file:///etc/Packages/kernel-devel-4.14.77-"
                                      "70.1.amzn1.x86_64.rpm': a list fetched over the network "
                                      "may only name http(s) URLs")]


def test_kernel_list_over_http_is_bounded(hostile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALCO_PROBES_LIMIT_KERNEL_LIST", "1M")
    with pytest.raises(InputError, match="is larger; a kernel-crawler list"):
        load_crawler(f"{hostile}/endless/list.json")


# --- downloads stop at the expected size, and leave nothing behind ------------------------------

def test_mirror_stops_at_the_catalogued_size(hostile: str, tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    fragment = tmp_path / "f.jsonl"
    probe = replace(good_probe(), size=1000, url=f"{hostile}/endless/falco.o")
    fragment.write_text(json.dumps(fragment_line(probe)) + "\n")
    merge_into(root, [fragment])
    dest = tmp_path / "mirror"
    code, out, _, mb = measured(["mirror", str(dest), "--catalog", str(root)])
    assert code == 4
    assert out.startswith(f"FAILED  5.0.1+driver/x86_64/{probe.file}: {hostile}/endless/falco.o: "
                          "more than the expected 1000 bytes; stopped and removed the partial "
                          "file")
    assert [p for p in dest.rglob("*") if p.is_file() and not p.name.endswith(".lock")] == []
    assert mb < MAX_RSS_MB


@pytest.mark.parametrize(("path", "message"), [
    ("/endless/linux-headers.deb", "more than the expected 262144 bytes"),
    ("/huge/linux-headers.deb", "the server announces 1000000000000000 bytes, more than the "
                                "expected 262144"),
], ids=["endless", "announced too big"])
def test_header_downloads_stop_at_a_sane_maximum(hostile: str, tmp_path: Path, path: str,
                                                 message: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALCO_PROBES_LIMIT_DOWNLOAD", "256K")
    cache = Cache(tmp_path / "cache")
    with pytest.raises(InputError, match=re.escape(message)):
        cache.fetch(f"{hostile}{path}")
    assert [p for p in cache.root.rglob("*") if p.is_file() and ".lock" not in p.name] == []


def test_a_local_header_url_is_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="/dev/zero: is a device, not a regular file"):
        Cache(tmp_path / "cache").fetch("file:///dev/zero")


# --- memory: whole commands on hostile files --------------------------------------------------

def test_memory_stays_bounded_on_hostile_files(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    write_catalog(catalog, alias_bomb())
    deep = tmp_path / "deep"
    write_catalog(deep, (HEAD + "probes: " + "[" * 990 + "]" * 990).encode())
    config = tmp_path / "probes.yaml"
    config.write_text(CONFIG + alias_bomb())
    os_release = tmp_path / "os-release"
    os_release.write_text("ID=debian\n")
    stream = tmp_path / "nodes.jsonl"  # one 50 MB line between two good ones
    good = json.dumps({"driver_version": "5.0.1+driver", "uname_r": "6.1.0-1-amd64",
                       "uname_v": "#1", "uname_m": "x86_64", "os_release": "ID=debian"})
    with stream.open("w") as handle:
        handle.write(good + "\n" + '{"os_release": "' + "A" * 50_000_000 + '"}\n' + good + "\n")
    full = tmp_path / "full"  # a genuine file of full probe lines, at the YAML node limit
    write_catalog(full, render(CatalogFile("5.0.1+driver", "x86_64", "debian", tuple(
        replace(good_probe(f"6.1.0-{i}-amd64", f"{i:064x}"), release="probes-5.0.1-001",
                built="2026-11-25T08:00:00Z", commit="a" * 40, source="debian source 1.0")
        for i in range(7100)))).encode())
    ones = tmp_path / "ones"  # two million nodes in 4 MB
    write_catalog(ones, (HEAD + "probes: [" + "1," * 1_999_000 + "1]\n").encode())
    fragment = tmp_path / "fragment.jsonl"  # just under 8 MiB of minimal probe lines
    with fragment.open("w") as handle:
        for i in range(16_500):
            handle.write(json.dumps(fragment_line(good_probe(f"6.1.0-{i}-amd64",
                                                             f"{i:064x}"))) + "\n")
    assert 7.5 < fragment.stat().st_size / 2 ** 20 < 8
    (tmp_path / "none").mkdir()  # an empty catalog: find refuses a missing folder
    cases = [
        (["catalog", "merge", "--catalog", str(tmp_path / "merged"), str(fragment)], 0),
        (["catalog", "check", str(ones)], 1),
        (["find", "--catalog", str(ones), "--os-release", str(os_release), *NODE], 2),
        (["catalog", "check", str(full)], 0),
        (["verify", "--catalog", str(full), "/dev/null"], 1),
        (["catalog", "check", str(catalog)], 1),
        (["find", "--catalog", str(catalog), "--os-release", str(os_release), *NODE], 2),
        (["find", "--catalog", str(deep), "--os-release", str(os_release), *NODE], 2),
        (["find", "--config", str(config), "--catalog", str(tmp_path / "none"),
          "--os-release", str(os_release), *NODE], 2),
        (["find", "--catalog", str(tmp_path / "none"), "--os-release", "/dev/zero", *NODE], 2),
        (["find", "--catalog", str(tmp_path / "none"), "--batch", str(stream)], 2),
    ]
    for argv, expected in cases:
        code, out, err, mb = measured(argv)
        assert code == expected, (argv, err[-500:])
        assert mb < MAX_RSS_MB, (argv, mb)
    answers = [json.loads(line) for line in out.splitlines()]  # the batch: 3 answers, in order
    assert [a["line"] for a in answers] == [1, 2, 3] and "error" in answers[1]


# --- GitHub: the release that fills underneath us, the echoed token, what we list ----------

def test_a_release_fuller_than_counted_opens_the_next_shard(tmp_path: Path) -> None:
    """GitHub answers file_count in its own words; the probe goes to the next release."""
    with FakeGitHub(token=TOKEN, max_assets_per_release=3) as fake:
        fake.add_release(release_tag(FAMILY, 1), body=marker_line(FAMILY),
                         assets={f"other{i}.o": b"%d" % i for i in range(3)})
        write_report(tmp_path / "build", specs(2))
        env = {"GITHUB_API_URL": fake.api_url, "GITHUB_REPOSITORY": "acme/probes",
               "GITHUB_TOKEN": TOKEN}
        done = publish_cli(fake, tmp_path, env, "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["complete"] is True
        assert {r["tag_name"][-3:]: len(r["assets"]) for r in fake.releases()} == {
            "001": 3, "002": 2}


def test_server_text_is_printed_without_the_token(tmp_path: Path) -> None:
    with FakeGitHub(token=TOKEN) as fake:
        write_report(tmp_path / "build", specs(1))
        env = {"GITHUB_API_URL": fake.api_url, "GITHUB_REPOSITORY": "acme/probes",
               "GITHUB_TOKEN": TOKEN}
        for debug in ({}, {"FALCO_PROBES_DEBUG": "1"}):
            fake.inject(Fault("POST", r"/releases$", status=400, echo_authorization=True))
            done = publish_cli(fake, tmp_path, {**env, **debug}, "--json")
            assert done.returncode == 4
            assert "HTTP 400 Bad Request (Authorization: token ***)" in done.stderr
            assert TOKEN not in done.stdout + done.stderr
            summary = json.loads(done.stdout)  # --json still tells what was (not) done
            assert (summary["complete"], summary["left"], summary["uploaded"]) == (False, 1, 0)
            assert "***" in summary["error"] and TOKEN not in summary["error"]


@pytest.mark.parametrize(("fault", "lists"), [
    (Fault("POST", r"/assets$", status=403, retry_after=1), 0),
    (Fault("POST", r"/assets$", status=429, retry_after=1), 0),
    (Fault("POST", r"/assets$", status=502), 1),
    (Fault("POST", r"/assets$", drop_connection=True), 1),
], ids=["403 secondary limit", "429", "502", "lost connection"])
def test_a_release_is_listed_again_only_when_a_failure_may_have_left_something(
        tmp_path: Path, fault: Fault, lists: int) -> None:
    with FakeGitHub(token=TOKEN) as fake:
        fake.add_release(release_tag(FAMILY, 1), body=marker_line(FAMILY))
        store = make_store(fake)
        items = artifacts(tmp_path, specs(1))
        store._family(FAMILY)  # the run's one listing
        fake.clear_calls()
        fake.inject(fault)
        summary = run(store, items, tmp_path / "f.jsonl")
        assert summary.uploaded == 1
        assert fake.count("GET", r"/releases/\d+/assets$") == lists


def test_a_release_created_meanwhile_is_taken_over_and_said_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeGitHub(token=TOKEN) as fake:
        store = make_store(fake)
        items = artifacts(tmp_path, [Spec("5.15.0-1-generic", "1~20.04.1")])
        store._family(FAMILY)  # listed while the release did not exist yet
        fake.add_release(release_tag(FAMILY, 1), body=marker_line(FAMILY))
        assert run(store, items, tmp_path / "f.jsonl").uploaded == 1
        err = capsys.readouterr().err
        assert (f"GitHub: release {release_tag(FAMILY, 1)} already existed (a lost answer or "
                "a parallel run); taking it over") in err
        assert "created release" not in err
