"""plan: desired minus catalog minus backing-off failures; grouped by kernel; sharded."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from commandline import cli
from configs import TWO_DRIVERS
from crawlerlists import LISTS
from testpaths import ROOT

from bench.synth import find_kernel_list
from builder.cli import main
from builder.core.catalog import Catalog, CatalogFile, fragment_line, merge_into
from builder.core.config import (
    BuildConfig,
    Config,
    DriverSource,
    DriverVersion,
    StoreConfig,
    Target,
    load_config,
)
from builder.core.naming import names_for_driver
from builder.core.records import FailureRecord, HeaderPackage, HostFacts, Kernel, ProbeRecord
from builder.plan import (
    MAX_SHARDS,
    Plan,
    backoff_until,
    make_plan,
    matrix,
    plan_from_dict,
    plan_probe,
    plan_to_dict,
    shard,
    shard_jobs,
)

KERNEL_LIST = find_kernel_list()
NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)
CONFIG = """\
schema_version: 1
driver_versions:
  - {{version: 7.0.0+driver, falco: [0.37.0, 0.37.1], source: {{kind: libs-archive}}}}
  - {{version: 6.0.1+driver, falco: [0.36.0, 0.36.2], source: {{kind: libs-archive}}}}
  - {{version: 5.0.1+driver, falco: [0.35.0, 0.35.1], source: {{kind: libs-archive}}}}
targets:
{targets}
build: {{backoff_hours: [24, 72]}}
"""


def write_config(tmp: Path, targets: str) -> Path:
    path = tmp / "probes.yaml"
    path.write_text(CONFIG.format(targets=targets))
    return path


def debian(n: int, release: str | None = None) -> Kernel:
    uname_r = release or f"6.1.0-{n}-amd64"
    return Kernel("debian", HostFacts("debian", uname_r, f"#1 SMP Debian 6.1.{n}-1", "x86_64"),
                  (HeaderPackage(f"h{n}.deb", f"file:///h{n}.deb"),), "apt", "amd64",
                  f"6.1.{n}-1")


def test_jobs_are_grouped_by_kernel_minus_catalog_and_backoff(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "  - {name: debian, kernels: apt}"))
    kernels = [debian(n) for n in (1, 2, 3)]
    name, _ = names_for_driver(kernels[0].host, config.releases.falco_for("6.0.1+driver"))
    have = ProbeRecord("6.0.1+driver", "x86_64", name.target, name.kernel_release,
                       name.kernel_version, "a" * 64, 1, "https://e.org/x.o")
    recent = FailureRecord("7.0.0+driver", "x86_64", "debian", "6.1.2-1-amd64", "1", "compile",
                           "boom", attempts=1, last_attempt="2026-11-24T12:00:00Z")
    old = FailureRecord("5.0.1+driver", "x86_64", "debian", "6.1.2-1-amd64", "1", "compile",
                        "boom", attempts=1, last_attempt="2026-11-20T00:00:00Z")
    catalog = Catalog(tmp_path, {
        ("6.0.1+driver", "x86_64", "debian"): CatalogFile("6.0.1+driver", "x86_64", "debian",
                                                          (have,)),
        ("7.0.0+driver", "x86_64", "debian"): CatalogFile("7.0.0+driver", "x86_64", "debian",
                                                          (), (recent,)),
        ("5.0.1+driver", "x86_64", "debian"): CatalogFile("5.0.1+driver", "x86_64", "debian",
                                                          (), (old,))})
    plan = make_plan(config, kernels, catalog, NOW)
    jobs = {job.kernel.host.uname_r: job for job in plan.jobs}
    assert jobs["6.1.0-1-amd64"].driver_versions == ("7.0.0+driver", "5.0.1+driver")
    assert jobs["6.1.0-2-amd64"].driver_versions == ("6.0.1+driver", "5.0.1+driver")
    # the old failure is retried
    assert tuple(p.attempt for p in jobs["6.1.0-2-amd64"].probes) == (1, 2)
    assert jobs["6.1.0-3-amd64"].driver_versions == ("7.0.0+driver", "6.0.1+driver",
                                                     "5.0.1+driver")
    (left,) = plan.left_out
    assert left.driver_version == "7.0.0+driver" and "retry after 2026-11-25T12:00Z" in left.reason


@pytest.mark.parametrize(("driver", "file", "aliases"), [
    # Falco 0.26-0.34 name Debian probes by `uname -r`; 0.35+ rebuild it from uname -v.
    ("2aa88dcf6243982697811df4c1b484bcbe9488a2", "falco_debian_6.1.0-7-amd64_1.o", ()),
    ("39ae7d40496793cf3d3e7890c9bbdc202263836b", "falco_debian_6.1.0-7-amd64_1.o", ()),
    ("5.0.1+driver", "falco_debian_6.1.7-1-amd64_1.o", ()),
    ("9.1.0+driver", "falco_debian_6.1.7-1-amd64_1.o", ()),
    # no release loads it by default: newest rules, aliased for DRIVER_VERSION users
    ("0.1.1dev+git20220316.e5c53d64", "falco_debian_6.1.7-1-amd64_1.o",
     ("falco_debian_6.1.0-7-amd64_1.o",)),
])
def test_a_probe_is_named_by_its_own_falco_releases(driver: str, file: str,
                                                    aliases: tuple[str, ...]) -> None:
    releases = load_config(ROOT / "probes.yaml").releases
    planned = plan_probe(debian(7), driver, releases)
    assert (planned.name.file, planned.aliases) == (file, aliases)


@pytest.mark.parametrize(("attempts", "hours"), [(1, 24), (2, 72), (5, 72)])
def test_backoff_grows_with_attempts(attempts: int, hours: int) -> None:
    failure = FailureRecord("d", "x86_64", "t", "r", "1", "compile", "x", attempts=attempts,
                            last_attempt="2026-11-25T00:00:00Z")
    until = backoff_until(failure, (24, 72))
    assert until == dt.datetime(2026, 11, 25, tzinfo=dt.UTC) + dt.timedelta(hours=hours)


def test_sharding_is_balanced_deterministic_and_capped() -> None:
    kernels = [debian(n) for n in range(1, 41)]
    config_path = Path("/nonexistent")  # make_plan needs no file; build the config inline
    del config_path
    jobs_plan = make_plan(_inline_config(), kernels, Catalog(Path("-")), NOW)
    sharded = shard(jobs_plan, 7)
    sizes = [sum(jobs_plan.jobs[i].weight for i in s) for s in sharded.shards]
    assert max(sizes) - min(sizes) <= 3
    assert sorted(i for s in sharded.shards for i in s) == list(range(40))
    assert shard(jobs_plan, 7).shards == sharded.shards
    assert len(shard(jobs_plan, 500 if False else MAX_SHARDS).shards) == 40  # never empty legs
    with pytest.raises(Exception, match="between 1 and 256"):
        shard(jobs_plan, MAX_SHARDS + 1)
    legs = matrix(sharded)["include"]
    assert [leg["shard"] for leg in legs] == list(range(7))


def _inline_config() -> Config:
    src = DriverSource("libs-archive", url="https://e.org/{ref}.tar.gz")
    return Config("inline", "", (DriverVersion("6.0.1+driver", "6.0.1+driver",
                                               ("0.36.2",), src),),
                  (Target("debian", "apt"),), StoreConfig(), BuildConfig())


def test_plan_file_round_trip_and_shard_selection(tmp_path: Path) -> None:
    plan = shard(make_plan(_inline_config(), [debian(n) for n in (1, 2, 3)],
                           Catalog(Path("-")), NOW), 2)
    doc = json.loads(json.dumps(plan_to_dict(plan)))
    again = plan_from_dict(doc, "plan.json")
    assert again.jobs == plan.jobs and again.shards == plan.shards
    assert len(shard_jobs(again, 0)) + len(shard_jobs(again, 1)) == 3
    with pytest.raises(Exception, match="out of range"):
        shard_jobs(again, 2)
    doc["jobs"][0]["kernel"]["host"]["uname_r"] = "../../etc"
    with pytest.raises(Exception, match="not allowed"):
        plan_from_dict(doc, "plan.json")


@pytest.mark.skipif(not KERNEL_LIST.exists(), reason="../shared/data kernel list is absent")
def test_plan_over_the_2022_list_is_deterministic(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    targets = "\n".join(f"  - {{name: {name}, kernels: 'kernel-crawler:{KERNEL_LIST}'}}"
                        for name in ("ubuntu", "amazonlinux2", "centos", "debian", "fedora"))
    config = write_config(tmp_path, targets)
    catalog = tmp_path / "catalog"
    outs = []
    for run in range(2):
        out = tmp_path / f"plan{run}.json"
        code = main(["plan", "--config", str(config), "--catalog", str(catalog), "--shards", "64",
                     "--out", str(out), "--matrix-out", str(tmp_path / f"m{run}.json"),
                     "--now", "2026-11-25T03:00:00Z"])
        assert code == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    doc = json.loads(outs[0])
    assert doc["summary"]["compiles"] == 3 * doc["summary"]["kernels"]
    assert doc["summary"]["kernels"] > 1000 and doc["summary"]["shards"] == 64
    reasons = " ".join(x["reason"] for x in doc["left_out"])
    assert "older than 4.14" in reasons  # CentOS 7's 3.10 kernels are skipped with a reason
    legs = json.loads((tmp_path / "m0.json").read_text())["include"]
    assert len(legs) == 64 and max(leg["compiles"] for leg in legs) - min(
        leg["compiles"] for leg in legs) <= 3
    # Build some of it, merge, and plan again: what the catalog holds is not planned again.
    first = doc["jobs"][0]
    kernel = plan_from_dict(doc, "p").jobs[0].kernel
    name, aliases = names_for_driver(kernel.host, [])
    del name, aliases, first
    capsys.readouterr()


def test_plan_over_a_checked_in_list_is_deterministic(tmp_path: Path) -> None:
    """Always runs (the 2022 list may be absent): same inputs, same plan bytes."""
    small = LISTS / "x86_64" / "list.json"
    targets = "\n".join(f"  - {{name: {name}, kernels: 'kernel-crawler:{small}'}}"
                        for name in ("ubuntu", "debian", "amazonlinux2023", "minikube"))
    config = write_config(tmp_path, targets)
    outs = []
    for run in range(2):
        out = tmp_path / f"plan{run}.json"
        assert main(["plan", "--config", str(config), "--catalog", str(tmp_path / "c"),
                     "--shards", "3", "--out", str(out), "--now", "2026-11-25T03:00:00Z"]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    doc = json.loads(outs[0])
    assert doc["summary"]["compiles"] == 3 * doc["summary"]["kernels"] > 0
    assert sorted(i for s in doc["shards"] for i in s) == list(range(len(doc["jobs"])))


def test_no_kernel_matching_is_bad_input_saying_what_is_offered(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Not "nothing new to build" over an empty catalog: say why, list what there is."""
    small = LISTS / "x86_64" / "list.json"
    config = write_config(tmp_path, f"  - {{name: ubuntu, kernels: 'kernel-crawler:{small}', "
                                    "include: '^9\\.9'}")
    code = main(["plan", "--config", str(config), "--catalog", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"error: {config}: no kernel matches target 'ubuntu' (kernel-crawler:{small}, " \
           "x86_64, include '^9\\\\.9')" in err
    assert "hint: the sources offer (newest per series): " in err
    assert re.search(r"offer \(newest per series\): \d+\.\d+", err)


def test_catalog_probes_are_not_planned_again(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "  - {name: debian, kernels: apt}"))
    kernel = debian(9)
    records = []
    for driver in config.driver_versions:
        name, aliases = names_for_driver(kernel.host, config.releases.falco_for(driver.version))
        records.append(ProbeRecord(driver.version, "x86_64", name.target, name.kernel_release,
                                   name.kernel_version, "b" * 64, 5, "https://e.org/p.o",
                                   aliases=aliases))
    frag = tmp_path / "f.jsonl"
    frag.write_text("".join(json.dumps(fragment_line(r)) + "\n" for r in records))
    merge_into(tmp_path / "cat", [frag])
    from builder.core.catalog import load_catalog

    plan = make_plan(config, [kernel, debian(10)], load_catalog(tmp_path / "cat"), NOW)
    assert [j.kernel.host.uname_r for j in plan.jobs] == ["6.1.0-10-amd64"]


def test_plan_cli_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, "  - {name: debian, kernels: apt}")
    assert main(["plan", "--config", str(config), "--target", "nope"]) == 2
    assert "target 'nope' is not in" in capsys.readouterr().err
    assert main(["plan", "--config", str(config), "--driver-version", "1.0.0+driver"]) == 2
    assert main(["plan", "--config", str(config), "--now", "yesterday"]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\ndriver_versions: []\ntargets:\n  - {name: x, kernal: apt}\n")
    assert main(["plan", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:4" in err and "did you mean 'kernels'" in err


# --- plans and kernel lists -----------------------------------------------------------------

PLAN_CASES = [
    ("nested JSON", "[" * 100_000, "invalid JSON: nested too deeply to read"),
    ("integer over 4300 digits", '{"schema_version": ' + "1" * 5000 + "}", "Exceeds the limit"),
    ("jobs not a list", '{"schema_version": 3, "jobs": 7}', "jobs must be a list"),
    ("shards not lists", '{"schema_version": 3, "jobs": [], "shards": [[true]]}',
     "shards must be at most 256 lists of job numbers"),
    ("too many values", "[" + ",".join(["[]"] * 300_000) + "]", "too many JSON values"),
    ("bidi override in uname -v", json.dumps({"schema_version": 3, "jobs": [{
        "probes": [{"driver_version": "5.0.1+driver", "target": "debian",
                    "kernel_release": "6.1.0-1-amd64", "kernel_version": "1",
                    "arch": "x86_64"}], "kernel": {
            "target": "debian", "host": {"os_id": "debian", "uname_r": "6.1.0-1-amd64",
                                         "uname_v": "#1 \u202eSMP", "uname_m": "x86_64"}}}]}),
     "field 'uname_v': contains the non-printable character U+202E"),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in PLAN_CASES],
                         ids=[c[0] for c in PLAN_CASES])
def test_a_bad_plan_is_refused_before_anything_is_built(
        tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "probes.yaml"
    config.write_text(TWO_DRIVERS)
    plan = tmp_path / "plan.json"
    plan.write_text(text)
    code, _, err = cli(["build", "--config", str(config), "--plan", str(plan), "--out",
                        str(tmp_path / "out")], capsys)
    assert code == 2
    assert f"error: {plan}" in err and message in err, err
    assert not (tmp_path / "out").exists()


# --- both driver types, and twins of each ------------------------------------------------

BOTH = """\
schema_version: 1
driver_versions:
  - {version: 9.1.0+driver, falco: [0.43.0, 0.43.1], types: [ebpf, kmod],
     source: {kind: libs-archive}}
  - {version: 10.2.0+driver, falco: [0.44.0, 0.44.1], types: [kmod],
     source: {kind: libs-archive}}
targets:
  - {name: debian, kernels: apt}
"""


def twin(uname_r: str, package_version: str, version_id: str) -> Kernel:
    return Kernel("debian", HostFacts("debian", uname_r, f"#1 SMP Debian {package_version}",
                                      "x86_64", version_id=version_id),
                  (HeaderPackage(f"{uname_r}.deb", f"file:///{uname_r}.deb"),), "apt",
                  "amd64", package_version)


BACKPORT, NATIVE = (twin("6.12.48+deb12-amd64", "6.12.48-1~deb12u1", "12"),
                    twin("6.12.48+deb13-amd64", "6.12.48-1", "13"))


def planned_paths(plan_: Plan) -> dict[tuple[str, str], str]:
    """(uname -r, store path) -> driver type, for every planned file."""
    return {(job.kernel.host.uname_r, p.store_path): p.driver_type
            for job in plan_.jobs for p in job.probes}


def test_each_type_is_planned_and_placed_like_a_probe(tmp_path: Path) -> None:
    path = tmp_path / "probes.yaml"
    path.write_text(BOTH)
    config = load_config(path)
    plan_ = make_plan(config, [BACKPORT, NATIVE], Catalog(tmp_path), NOW)
    file = "falco_debian_6.12.48-1-amd64_1"
    assert planned_paths(plan_) == {
        ("6.12.48+deb13-amd64", f"9.1.0+driver/x86_64/{file}.o"): "ebpf",
        ("6.12.48+deb13-amd64", f"9.1.0+driver/x86_64/{file}.ko"): "kmod",
        ("6.12.48+deb13-amd64", f"10.2.0+driver/x86_64/{file}.ko"): "kmod",
        ("6.12.48+deb12-amd64", f"twins/debian-12/9.1.0+driver/x86_64/{file}.o"): "ebpf",
        ("6.12.48+deb12-amd64", f"twins/debian-12/9.1.0+driver/x86_64/{file}.ko"): "kmod",
        ("6.12.48+deb12-amd64", f"twins/debian-12/10.2.0+driver/x86_64/{file}.ko"): "kmod",
    }
    module = next(p for job in plan_.jobs for p in job.probes
                  if p.store_path == f"9.1.0+driver/x86_64/{file}.ko")
    assert module.twins[0].uname_r == "6.12.48+deb12-amd64"
    again = plan_from_dict(json.loads(json.dumps(plan_to_dict(plan_))), "plan.json")
    assert planned_paths(again) == planned_paths(plan_)


def test_a_module_served_at_the_default_path_keeps_it_per_type(tmp_path: Path) -> None:
    """The catalog serves deb12's module at the default path (built before deb13 existed):
    that module stays there; the probe of the same name still follows the owner rule."""
    path = tmp_path / "probes.yaml"
    path.write_text(BOTH)
    config = load_config(path)
    held = ProbeRecord("9.1.0+driver", "x86_64", "debian", "6.12.48-1-amd64", "1", "b" * 64, 1,
                       "https://e.org/x.ko", driver_type="kmod", uname_r="6.12.48+deb12-amd64")
    catalog = Catalog(tmp_path, {("9.1.0+driver", "x86_64", "debian"): CatalogFile(
        "9.1.0+driver", "x86_64", "debian", (held,), ())})
    plan_ = make_plan(config, [BACKPORT, NATIVE], catalog, NOW)
    file = "falco_debian_6.12.48-1-amd64_1"
    paths = planned_paths(plan_)
    assert ("6.12.48+deb13-amd64", f"twins/debian-13/9.1.0+driver/x86_64/{file}.ko") in paths
    assert ("6.12.48+deb13-amd64", f"9.1.0+driver/x86_64/{file}.o") in paths
    assert not any(p.endswith(f"9.1.0+driver/x86_64/{file}.ko") and u == "6.12.48+deb12-amd64"
                   for u, p in paths)          # built already: not planned again
