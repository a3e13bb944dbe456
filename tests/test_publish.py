"""publish: build reports in, store writes and fragment lines out; bad input refused whole.

Also holds the helpers other publishing tests import (write_report, Spec, specs).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fakeprobe import make_fake_probe

from builder.cli import main
from builder.commands.publish import parse_deadline
from builder.core.catalog import check_catalog, load_catalog, merge_into, read_fragments
from builder.core.errors import InputError, ProblemsError
from builder.core.records import FailureRecord, ProbeRecord
from builder.core.report import BuildResult, result_to_dict
from builder.core.versions import BUILTIN_RELEASES
from builder.publish.stage import (
    FragmentFile,
    Provenance,
    ci_log_url,
    current_commit,
    load_reports,
    publish,
)
from builder.publish.stores import Budget
from builder.publish.stores.directory import DirectoryStore

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
                            spec.kernel_release, spec.kernel_version)
        rel = f"probes/{spec.driver_version}/{spec.arch}/{draft.file}"
        path = make_fake_probe(_mkdir(folder / rel),
                               spec.payload or f"{spec.driver_version} {draft.file}",
                               kernel_release=spec.kernel_release)
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


def directory_store(root: Path, budget: Budget | None = None) -> DirectoryStore:
    return DirectoryStore(root, BUILTIN_RELEASES.falco_for, budget=budget)


def fragment_records(path: Path) -> tuple[list[ProbeRecord], list[FailureRecord]]:
    fragment = read_fragments([path])
    return list(fragment.probes), list(fragment.failures)


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


@pytest.mark.parametrize(("text", "expected"), [
    (None, None),
    ("30", 1_000_000.0 + 1800),
    ("0.5", 1_000_000.0 + 30),
    ("2025-01-31T04:00:00Z", 1738296000.0),
    ("2025-01-31T05:00:00+01:00", 1738296000.0),
    ("2025-01-31T04:00:00", 1738296000.0),
])
def test_parse_deadline(text: str | None, expected: float | None) -> None:
    assert parse_deadline(text, 1_000_000.0) == expected


@pytest.mark.parametrize("text", ["soon", "-5", "0"])
def test_parse_deadline_refuses(text: str) -> None:
    with pytest.raises(InputError):
        parse_deadline(text, 0.0)


# --- the command -----------------------------------------------------------------------------

def test_cli_publish_json_and_conflict_exit(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    write_report(tmp_path / "build", specs(3), failures=[Spec("4.4.0-1-generic")])
    store = tmp_path / "store"
    argv = ["publish", str(tmp_path / "build"), "--fragment", str(tmp_path / "f.jsonl"),
            "--store", "directory", "--path", str(store), "--base-url",
            "https://probes.example", "--json", "--commit", COMMIT]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["uploaded"] == 3 and summary["failures"] == 1 and summary["complete"]
    assert err.count("published  ") == 3 and "https://probes.example/6.0.1%2Bdriver/" in err

    # another build of the first probe with other bytes: exit 3, the others still recorded
    write_report(tmp_path / "build2", [*specs(1, payload="rebuilt"), *specs(2, start=10)])
    argv[1] = str(tmp_path / "build2")
    assert main(argv[:-3]) == 3
    err = capsys.readouterr().err
    assert "error: 1 conflict(s)" in err and "records sha256" in err  # the fragment knows it
    assert len(fragment_records(tmp_path / "f.jsonl")[0]) == 5
    argv[3] = str(tmp_path / "g.jsonl")  # a lost fragment: the store itself refuses
    assert main(argv[:-3]) == 3
    err = capsys.readouterr().err
    assert "already holds other bytes" in err
    assert len(fragment_records(tmp_path / "g.jsonl")[0]) == 2


def test_cli_reads_store_settings_from_probes_yaml(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "probes.yaml"
    config.write_text("schema_version: 1\ndriver_versions: []\ntargets: []\n"
                      f"store: {{kind: directory, path: {tmp_path / 'configured'}}}\n")
    write_report(tmp_path / "build", specs(1))
    assert main(["publish", str(tmp_path / "build"), "--fragment", str(tmp_path / "f.jsonl"),
                 "--config", str(config)]) == 0
    assert len(list((tmp_path / "configured").rglob("*.o"))) >= 1
    assert "published  " in capsys.readouterr().out


def test_cli_environment_is_not_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    for name in ("GITHUB_SHA", "GITHUB_RUN_ID", "GITHUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    write_report(tmp_path / "build", specs(1))
    assert main(["publish", "build", "--fragment", "f.jsonl", "--path", "store"]) == 0
    (probe,), _ = fragment_records(tmp_path / "f.jsonl")
    assert probe.log == "" and probe.commit == ""
    assert os.path.isfile(tmp_path / "store" / "6.0.1+driver" / "x86_64" / probe.file)


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
