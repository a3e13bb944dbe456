"""publish/stage.py: build reports in, store writes and fragment lines out; bad input refused
whole; compile logs and bundles found beside the reports; a publisher killed with SIGKILL
at many points loses nothing it confirmed.

Build folders come from tests/helpers/buildreports.py, stores and fragments from
tests/helpers/publishing.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from attestations import bundle_for
from buildreports import (
    BUILT,
    COMMIT,
    JOB,
    Spec,
    build_with_logs,
    rewrite_report,
    specs,
    write_report,
)
from commandline import cli
from fakegithub import FakeGitHub, Fault
from githubstore import make_store
from publishing import directory_store, fragment_records, publish_all

from builder.cli import main
from builder.core.catalog import check_catalog, load_catalog, merge_into
from builder.core.errors import InputError, ProblemsError
from builder.core.report import BuildResult
from builder.publish.stage import (
    FragmentFile,
    Provenance,
    ci_log_url,
    current_commit,
    load_reports,
    publish,
)
from builder.publish.stores import Budget
from builder.publish.stores.assetnames import asset_name

# --- bad input -------------------------------------------------------------------------------

def _change_digest(folder: Path, results: list[BuildResult]) -> None:
    results[1] = replace(results[1], sha256="f" * 64)


def _delete_file(folder: Path, results: list[BuildResult]) -> None:
    (folder / results[1].path).unlink()


def _grow_file(folder: Path, results: list[BuildResult]) -> None:
    with (folder / results[1].path).open("ab") as handle:
        handle.write(b"x")


def _not_elf(folder: Path, results: list[BuildResult]) -> None:
    data = b"not an ELF file at all"
    (folder / results[1].path).write_bytes(data)
    results[1] = replace(results[1], sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def _escape(folder: Path, results: list[BuildResult]) -> None:
    results[1] = replace(results[1], path="../../outside.o")


BAD_REPORTS: list[tuple[str, Callable[[Path, list[BuildResult]], None], str]] = [
    ("digest", _change_digest, r"has sha256 [0-9a-f]{64}, the report says f{64}"),
    ("missing", _delete_file, "probe file probes/.* is missing"),
    ("size", _grow_file, r"has \d+ bytes, the report says \d+"),
    ("not-elf", _not_elf, "is not a valid eBPF probe: not an ELF file"),
    ("escape", _escape, "points outside the report folder"),
]


@pytest.mark.parametrize(("mutate", "message"), [c[1:] for c in BAD_REPORTS],
                         ids=[c[0] for c in BAD_REPORTS])
def test_bad_report_refused_whole(tmp_path: Path, mutate: Callable[[Path, list[BuildResult]],
                                  None], message: str, capsys: pytest.CaptureFixture[str]
                                  ) -> None:
    folder = tmp_path / "build"
    results = write_report(folder, specs(3))
    mutate(folder, results)
    rewrite_report(folder, results)
    with pytest.raises(ProblemsError) as excinfo:
        load_reports([folder], Provenance())
    (problem,) = excinfo.value.problems
    assert problem.path == str(folder / "report.jsonl")
    assert problem.record == results[1].file
    assert re.search(message, problem.message), problem.message

    store = tmp_path / "store"
    code = main(["publish", str(folder), "--fragment", str(tmp_path / "f.jsonl"),
                 "--store", "directory", "--path", str(store)])
    assert code == 2
    assert not store.exists() and not (tmp_path / "f.jsonl").exists()  # nothing written
    assert "nothing was published" in capsys.readouterr().err


def test_same_probe_twice_with_other_bytes_is_refused(tmp_path: Path) -> None:
    write_report(tmp_path / "a", specs(1, payload="one"))
    write_report(tmp_path / "b", specs(1, payload="two"))
    with pytest.raises(ProblemsError, match="built twice with different bytes"):
        load_reports([tmp_path / "a", tmp_path / "b"], Provenance())
    write_report(tmp_path / "c", specs(1, payload="one"))
    artifacts, _ = load_reports([tmp_path / "a", tmp_path / "c"], Provenance())
    assert len(artifacts) == 1  # the same bytes twice is one probe


def test_missing_report_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no build report"):
        load_reports([tmp_path], Provenance())


# --- publishing into a directory store -------------------------------------------------------

def test_publish_records_each_probe_once_and_failures(tmp_path: Path) -> None:
    folder = tmp_path / "build"
    results = write_report(folder, specs(5), failures=[Spec("4.4.0-1-generic")])
    provenance = Provenance("https://github.example/acme/probes/actions/runs/7", COMMIT)
    artifacts, failures = load_reports([folder], provenance)
    seen: list[tuple[str, bool]] = []
    with FragmentFile(tmp_path / "frag.jsonl") as fragment:
        summary = publish(artifacts, failures, directory_store(tmp_path / "store"), fragment,
                          on_probe=lambda r, up: seen.append((r.file, up)))
    assert (summary.uploaded, summary.present, summary.failures, summary.left) == (5, 0, 1, 0)
    assert sorted(seen) == sorted((r.file, True) for r in results if r.ok)

    probes, fails = fragment_records(tmp_path / "frag.jsonl")
    assert len(probes) == 5 and len(fails) == 1
    for probe in probes:
        assert probe.log == provenance.log and probe.commit == COMMIT
        assert probe.built == BUILT and probe.driver_ref == "6.0.1+driver"
        with urllib.request.urlopen(probe.url) as response:  # file:// URL of the store
            assert hashlib.sha256(response.read()).hexdigest() == probe.sha256
    assert fails[0].reason == "clang: error: unknown argument second line"
    assert (fails[0].attempts, fails[0].last_attempt, fails[0].step) == (2, BUILT, "compile")

    catalog = tmp_path / "catalog"
    merge_into(catalog, [tmp_path / "frag.jsonl"])
    assert len(list(load_catalog(catalog).probes())) == 5


def test_rerun_skips_what_the_fragment_or_store_has(tmp_path: Path) -> None:
    folder = tmp_path / "build"
    write_report(folder, specs(4))
    artifacts, failures = load_reports([folder], Provenance())
    store = directory_store(tmp_path / "store")
    with FragmentFile(tmp_path / "f.jsonl") as fragment:
        publish(artifacts, failures, store, fragment)
    with FragmentFile(tmp_path / "f.jsonl") as fragment:
        summary = publish(artifacts, failures, store, fragment)
    assert (summary.uploaded, summary.present, summary.skipped) == (0, 0, 4)
    with FragmentFile(tmp_path / "g.jsonl") as fragment:  # a lost fragment
        summary = publish(artifacts, failures, store, fragment)
    assert (summary.uploaded, summary.present, summary.skipped) == (0, 4, 0)
    assert len(fragment_records(tmp_path / "g.jsonl")[0]) == 4


def test_fragment_holding_other_bytes_is_a_conflict(tmp_path: Path) -> None:
    write_report(tmp_path / "build", specs(2))
    artifacts, _ = load_reports([tmp_path / "build"], Provenance())
    with FragmentFile(tmp_path / "f.jsonl") as fragment:
        fragment.append(replace(artifacts[0].probe, sha256="e" * 64, url="https://x.example/a.o"))
        summary = publish(artifacts, [], directory_store(tmp_path / "store"), fragment)
    assert summary.uploaded == 1 and len(summary.conflicts) == 1
    assert "records sha256 eeee" in summary.conflicts[0]


def test_budget_stops_cleanly_and_the_next_run_finishes(tmp_path: Path) -> None:
    write_report(tmp_path / "build", specs(5))
    artifacts, _ = load_reports([tmp_path / "build"], Provenance())
    with FragmentFile(tmp_path / "f.jsonl") as fragment:
        summary = publish(artifacts, [], directory_store(tmp_path / "s", Budget(2)), fragment)
    assert (summary.uploaded, summary.left, summary.stopped) == (2, 3, "budget")
    assert summary.as_dict()["complete"] is False
    assert len(fragment_records(tmp_path / "f.jsonl")[0]) == 2
    with FragmentFile(tmp_path / "f.jsonl") as fragment:
        summary = publish(artifacts, [], directory_store(tmp_path / "s", Budget(None)), fragment)
    assert (summary.uploaded, summary.skipped, summary.left) == (3, 2, 0)


def test_deadline_stops_cleanly(tmp_path: Path) -> None:
    write_report(tmp_path / "build", specs(3))
    artifacts, _ = load_reports([tmp_path / "build"], Provenance())
    budget = Budget(deadline=time.time() - 1)
    with FragmentFile(tmp_path / "f.jsonl") as fragment:
        summary = publish(artifacts, [], directory_store(tmp_path / "s", budget), fragment)
    assert (summary.uploaded, summary.left, summary.stopped) == (0, 3, "deadline")


# --- the fragment file -----------------------------------------------------------------------

def test_partial_last_line_is_dropped(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    write_report(tmp_path / "build", specs(2))
    artifacts, _ = load_reports([tmp_path / "build"], Provenance())
    path = tmp_path / "f.jsonl"
    with FragmentFile(path) as fragment:
        fragment.append(replace(artifacts[0].probe, url="https://x.example/a.o"))
    with path.open("a") as handle:
        handle.write('{"kind": "probe", "driver_ver')  # killed mid-line
    with FragmentFile(path) as fragment:
        assert len(fragment.probes) == 1
        fragment.append(replace(artifacts[1].probe, url="https://x.example/b.o"))
    assert "dropping an unfinished last line" in capsys.readouterr().err
    assert len(fragment_records(path)[0]) == 2


def test_one_writer_per_fragment(tmp_path: Path) -> None:
    with FragmentFile(tmp_path / "f.jsonl"), \
            pytest.raises(InputError, match="another publish is writing"):
        FragmentFile(tmp_path / "f.jsonl")


# --- provenance and options ------------------------------------------------------------------

@pytest.mark.parametrize(("env", "job", "expected"), [
    ({}, "", ""),
    ({"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/probes",
      "GITHUB_RUN_ID": "123"}, "", "https://github.com/acme/probes/actions/runs/123"),
    ({"GITHUB_SERVER_URL": "https://ghe.example/", "GITHUB_REPOSITORY": "acme/probes",
      "GITHUB_RUN_ID": "123"}, "456", "https://ghe.example/acme/probes/actions/runs/123/job/456"),
    ({"GITHUB_REPOSITORY": "acme/probes", "GITHUB_RUN_ID": "123"}, "", ""),
])
def test_ci_log_url(env: dict[str, str], job: str, expected: str) -> None:
    assert ci_log_url(env, job) == expected


def test_ci_log_url_refuses_a_bad_job_id() -> None:
    env = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "a/b",
           "GITHUB_RUN_ID": "1"}
    with pytest.raises(InputError, match="job id"):
        ci_log_url(env, "1; rm -rf")


def test_current_commit(tmp_path: Path) -> None:
    assert current_commit({"GITHUB_SHA": COMMIT.upper()}) == COMMIT
    assert current_commit({"GITHUB_SHA": "not-a-sha"}) == ""
    assert current_commit({}, cwd=tmp_path) == ""  # not a git checkout


def test_a_new_probes_own_name_retires_an_older_alias(tmp_path: Path) -> None:
    """Night 1 builds only the cloud kernel, whose Falco 0.35.0 alias is the plain -amd64
    name; night 2 builds the amd64 kernel, whose own name that is: the alias link is
    retired, the new probe placed, and the catalog keeps one probe per name."""
    cloud = Spec("6.1.55-1-cloud-amd64", target="debian", driver_version="5.0.1+driver",
                 aliases=("falco_debian_6.1.55-1-amd64_1.o",))
    plain = Spec("6.1.55-1-amd64", target="debian", driver_version="5.0.1+driver")
    store, catalog = tmp_path / "store", tmp_path / "catalog"
    common = ["--store", "directory", "--path", str(store), "--catalog", str(catalog),
              "--commit", COMMIT]
    alias_path = store / "5.0.1+driver" / "x86_64" / "falco_debian_6.1.55-1-amd64_1.o"
    write_report(tmp_path / "night1", [cloud])
    assert main(["publish", str(tmp_path / "night1"), "--fragment", str(tmp_path / "1.jsonl"),
                 *common]) == 0
    assert main(["catalog", "merge", "--catalog", str(catalog), str(tmp_path / "1.jsonl")]) == 0
    cloud_bytes = (store / "5.0.1+driver/x86_64/falco_debian_6.1.55-1-cloud-amd64_1.o"
                   ).read_bytes()
    assert alias_path.read_bytes() == cloud_bytes  # served to Falco 0.35.0 cloud hosts

    write_report(tmp_path / "night2", [plain])
    assert main(["publish", str(tmp_path / "night2"), "--fragment", str(tmp_path / "2.jsonl"),
                 *common]) == 0
    assert main(["catalog", "merge", "--catalog", str(catalog), str(tmp_path / "2.jsonl")]) == 0
    assert alias_path.read_bytes() != cloud_bytes  # now the amd64 kernel's own probe
    records = {r.kernel_release: r for r in load_catalog(catalog).probes()}
    assert records["6.1.55-1-cloud-amd64"].aliases == ()
    assert records["6.1.55-1-amd64"].url.endswith("falco_debian_6.1.55-1-amd64_1.o")
    assert check_catalog(catalog) == []


def test_a_fragment_that_is_a_folder_is_bad_input(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    write_report(tmp_path / "build", [Spec("6.1.0-1-amd64", target="debian")])
    code, _, err = cli(["publish", str(tmp_path / "build"), "--fragment", str(tmp_path),
                        "--path", str(tmp_path / "store")], capsys)
    assert code == 2
    assert f"error: {tmp_path}: cannot open the fragment: Is a directory" in err


TOKEN = "ghp_sigkillToken0123456789"
CAP = 60
# How many more API calls each run may make before it is killed (0: killed while starting).
KILL_AFTER = (0, 1, 2, 25, 4, 30, 7, 40, 3, 45, 12, 50, 5, 60)
# Faults injected into runs long enough to meet them: failed uploads leaving starter
# assets, 5xx, secondary rate limits with Retry-After, connections dropped on uploads,
# on release creation and on listing.
FAULTS: dict[int, list[Fault]] = {
    3: [Fault("POST", r"/assets$", status=502, leave_starter=True, times=2)],
    5: [Fault("POST", r"/assets$", status=503, times=2)],
    7: [Fault("POST", r"/assets$", status=403, retry_after=1)],
    9: [Fault("POST", r"/assets$", drop_connection=True),
        Fault("POST", r"/releases$", drop_connection=True)],
    10: [Fault("GET", r"/assets$", status=502), Fault("GET", r"/releases$", status=500)],
    11: [Fault("POST", r"/assets$", drop_connection=True, leave_starter=True)],
    13: [Fault("POST", r"/assets$", status=429, retry_after=1)],
}


def start(tmp_path: Path, fake: FakeGitHub, repo: str, immutable: bool) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "builder", "publish", str(tmp_path / "build"),
               "--fragment", str(tmp_path / "fragment.jsonl"), "--store", "github",
               "--repository", repo, "--max-assets-per-release", str(CAP),
               "--write-interval", "0", "--retry-delay", "0", "--json"]
    if immutable:
        command.append("--immutable")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env.update(GITHUB_TOKEN=TOKEN, GITHUB_API_URL=fake.api_url)
    return subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_and_kill(process: subprocess.Popen[str], fake: FakeGitHub, after: int) -> bool:
    """SIGKILL the process once the fake has served `after` more calls; True if killed."""
    served = len(fake.calls)
    deadline = time.monotonic() + 120
    if after == 0:
        time.sleep(0.05)
    while process.poll() is None and time.monotonic() < deadline:
        if len(fake.calls) >= served + after:
            process.send_signal(signal.SIGKILL)
            process.communicate()
            return True
        time.sleep(0.0005)
    process.communicate()
    return False


@pytest.mark.parametrize("immutable", [False, True], ids=["mutable", "immutable"])
def test_sigkill_at_many_points_loses_nothing(tmp_path: Path, immutable: bool) -> None:
    probes: list[Spec] = [*specs(200), *specs(100, target="ubuntu-aws")]
    results = write_report(tmp_path / "build", probes, failures=[Spec("4.4.0-1-generic")])
    expected = {r.file + "|" + r.target: r.sha256 for r in results if r.ok}
    repo = "acme/locked" if immutable else "acme/probes"
    with FakeGitHub(token=TOKEN, rate_limit=100_000) as fake:
        if immutable:
            fake.add_repo(repo, immutable_releases=True)
        kills = 0
        for index, after in enumerate(KILL_AFTER):
            for fault in FAULTS.get(index, []):
                fake.inject(fault)
            kills += run_and_kill(start(tmp_path, fake, repo, immutable), fake, after)
            fake.clear_faults()
        assert kills >= len(KILL_AFTER) - 1

        final = start(tmp_path, fake, repo, immutable)
        out, err = final.communicate(timeout=300)
        assert final.returncode == 0, err
        summary = json.loads(out)
        assert summary["complete"] is True and summary["left"] == 0

        # published exactly once: one uploaded asset per probe across every release
        releases = fake.releases(repo)
        assets = [a for r in releases for a in r["assets"]]
        names = Counter(a["name"] for a in assets)
        assert all(a["state"] == "uploaded" for a in assets)
        assert sorted(names) == sorted({asset_name(r.file) for r in results if r.ok})
        assert set(names.values()) == {1}
        assert max(len(r["assets"]) for r in releases) <= CAP
        assert all(not r["draft"] for r in releases)

    # recorded exactly once: one fragment line per probe, merged without conflict
    lines = [json.loads(line) for line in (tmp_path / "fragment.jsonl").read_text().splitlines()]
    probe_lines = Counter(line["file"] + "|" + line["target"] for line in lines
                          if line["kind"] == "probe")
    assert set(probe_lines.values()) == {1} and set(probe_lines) == set(expected)
    assert sum(1 for line in lines if line["kind"] == "failure") == 1
    merge_into(tmp_path / "catalog", [tmp_path / "fragment.jsonl"])
    catalog = list(load_catalog(tmp_path / "catalog").probes())
    assert len(catalog) == len(expected)
    for probe in catalog:
        assert probe.sha256 == expected[probe.file + "|" + probe.target]
        assert "untagged-" not in probe.url


def test_fragment_is_durable_line_by_line(tmp_path: Path) -> None:
    """What a killed run confirmed is on disk: each confirmed probe is a whole line."""
    write_report(tmp_path / "build", specs(40))
    with FakeGitHub(token=TOKEN) as fake:
        process = start(tmp_path, fake, "acme/probes", immutable=False)
        assert run_and_kill(process, fake, 25)
        uploaded = {a["name"]: a for r in fake.releases() for a in r["assets"]}
        text = (tmp_path / "fragment.jsonl").read_text()
        recorded = [json.loads(line) for line in text.splitlines()]
        assert text.endswith("\n") or not text
        assert {asset_name(r["file"]) for r in recorded} <= set(uploaded)
        assert len(uploaded) - len(recorded) <= 1  # at most the one in flight
        for line in recorded:
            with urllib.request.urlopen(line["url"], timeout=10) as response:
                assert hashlib.sha256(response.read()).hexdigest() == line["sha256"]


def test_a_report_log_outside_its_folder_is_refused_and_a_missing_one_links_the_job(
        tmp_path: Path) -> None:
    results = build_with_logs(tmp_path / "build", specs(2))
    (tmp_path / "build" / results[1].log).unlink()
    items, _ = load_reports([tmp_path / "build"], Provenance())
    assert [i.log is None for i in items] == [False, True]
    assert items[1].probe.log == JOB                     # the job still has the log (90 days)
    rewrite_report(tmp_path / "build", [results[0], replace(results[1], log="../../etc/x")])
    assert main(["publish", "--store", "directory", "--path", str(tmp_path / "s"),
                 "--fragment", str(tmp_path / "f.jsonl"), str(tmp_path / "build")]) == 2


# --- GitHub releases -------------------------------------------------------------------------

def test_a_rerun_adds_the_attestation_an_earlier_publish_lacked(fake: FakeGitHub,
                                                                 tmp_path: Path) -> None:
    """The attest job failed one night: its probes went out without a bundle. Re-running
    attest and publish fills the records' gap; nothing already recorded is replaced."""
    results = build_with_logs(tmp_path / "build", specs(2))
    publish_all(tmp_path / "build", make_store(fake), tmp_path / "night.jsonl")
    merge_into(tmp_path / "catalog", [tmp_path / "night.jsonl"])
    before = {p.file: p for p in load_catalog(tmp_path / "catalog").probes()}
    assert all(not p.attestation for p in before.values())
    bundle = bundle_for(tmp_path / "build", results, tmp_path / "a.json")
    publish_all(tmp_path / "build", make_store(fake), tmp_path / "rerun.jsonl", [bundle])
    report = merge_into(tmp_path / "catalog", [tmp_path / "rerun.jsonl"])
    assert report.updated == 2
    for probe in load_catalog(tmp_path / "catalog").probes():
        assert probe.attestation.endswith(".sigstore.json")
        assert replace(probe, attestation="") == before[probe.file]


# --- the kernel module ---------------------------------------------------------------------

def test_a_module_is_published_beside_its_probe_and_a_refused_one_is_not(
        tmp_path: Path) -> None:
    """The .ko lands next to the .o (the loaders' own paths), its record says kmod; one
    its kernel refused is a failure (category refused, the kernel's words, the gcc that
    built it), unless --allow-unverified."""
    out = tmp_path / "build"
    specs_ = [Spec("6.1.0-57-amd64", driver_version="9.1.0+driver", target="debian"),
              Spec("6.1.0-57-amd64", driver_version="9.1.0+driver", target="debian",
                   driver_type="kmod"),
              Spec("6.1.0-56-amd64", driver_version="9.1.0+driver", target="debian",
                   driver_type="kmod")]
    results = write_report(out, specs_)
    refused = {"status": "rejected", "kernel": "6.1.0-56-amd64",
               "date": "2026-12-08T00:00:00Z",
               "reason": "insmod refused: Invalid argument (falco: disagrees about version of "
                         "symbol _printk)"}
    gcc = "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"
    rewrite_report(out, [*results[:2], replace(results[2], compiler={"gcc": gcc},
                                               loadtest=refused)])  # type: ignore[arg-type]
    fragment = tmp_path / "fragment.jsonl"
    store = tmp_path / "store"
    assert main(["publish", str(out), "--store", "directory", "--path", str(store),
                 "--fragment", str(fragment)]) == 0
    assert sorted(p.name for p in (store / "9.1.0+driver" / "x86_64").iterdir()) == [
        "falco_debian_6.1.0-57-amd64_1.ko", "falco_debian_6.1.0-57-amd64_1.o"]
    probes, failures = fragment_records(fragment)
    assert sorted(p.driver_type for p in probes) == ["ebpf", "kmod"]
    (failure,) = failures
    assert (failure.step, failure.category, failure.driver_type, failure.file) == (
        "loadtest", "refused", "kmod", "falco_debian_6.1.0-56-amd64_1.ko")
    assert failure.reason == (
        f"the 6.1.0-56-amd64 kernel refused the module (built by {gcc}): insmod refused: "
        "Invalid argument (falco: disagrees about version of symbol _printk)")
    again = tmp_path / "again.jsonl"
    assert main(["publish", str(out), "--store", "directory", "--path", str(tmp_path / "s2"),
                 "--fragment", str(again), "--allow-unverified"]) == 0
    probes, failures = fragment_records(again)
    assert (len(probes), failures) == (3, [])


def test_a_module_that_is_not_one_is_refused_before_anything_is_published(
        tmp_path: Path) -> None:
    out = tmp_path / "build"
    (result,) = write_report(out, [Spec("6.1.0-57-amd64", driver_version="8.0.0+driver",
                                        target="debian", driver_type="kmod")])
    with pytest.raises(ProblemsError) as info:   # the fake module says API 8.0.4: 9.x's
        load_reports([out], Provenance())
    assert f"{result.path} is not a valid kernel module: .modinfo api_version 8.0.4 and " \
           "schema_version 4.1.0 are not driver 8.0.0+driver's (8.0.3 and 3.5.0)" in \
           str(info.value.problems[0])
