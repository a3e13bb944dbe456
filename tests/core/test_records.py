"""core/records.py: probe and failure records built from untrusted mappings (every problem
located, nothing unsafe in a name part), their names, and kernels as plans carry them."""

from __future__ import annotations

from typing import Any

import pytest

from builder.core.errors import Problem
from builder.core.records import (
    FailureRecord,
    HeaderPackage,
    HostFacts,
    Kernel,
    LoadTest,
    ProbeRecord,
    check_tag,
    check_timestamp,
    failure_from_mapping,
    kernel_from_mapping,
    kernel_series,
    kernel_to_dict,
    probe_from_mapping,
    record_to_dict,
    release_numbers,
    validate_name_parts,
)
from builder.core.schema import Where

WHERE = Where("fragment.jsonl", 7)
PROBE = {"driver_version": "6.0.1+driver", "arch": "x86_64", "target": "debian",
         "kernel_release": "6.1.0-13-amd64", "kernel_version": 1, "sha256": "a" * 64,
         "size": 4096, "url": "https://example.org/p.o"}


def probe(**changes: Any) -> tuple[ProbeRecord | None, list[Problem]]:
    problems: list[Problem] = []
    return probe_from_mapping({**PROBE, **changes}, WHERE, problems), problems


def test_a_probe_from_a_mapping_is_named_like_the_loader_names_it() -> None:
    record, problems = probe(aliases=["falco_debian_6.1.0-13-amd64_1.o", "falco_b.o",
                                      "falco_a.o", "falco_b.o"])
    assert problems == [] and record is not None
    assert record.file == "falco_debian_6.1.0-13-amd64_1.o"
    assert record.kernel_version == "1"                  # YAML's integer, as the loader's text
    assert record.aliases == ("falco_a.o", "falco_b.o")  # sorted, once, never its own name
    assert record.all_files() == (record.file, "falco_a.o", "falco_b.o")
    assert record.key == ("6.0.1+driver", "x86_64", "debian", "6.1.0-13-amd64", "1", "ebpf", "")
    assert record.store_path == "6.0.1+driver/x86_64/falco_debian_6.1.0-13-amd64_1.o"
    twin, problems = probe(root="debian-12")                # a twin kernel's own file
    assert problems == [] and twin is not None and twin.file == record.file
    assert twin.store_path == "twins/debian-12/6.0.1+driver/x86_64/" + record.file


def test_record_to_dict_round_trips_with_the_file_after_the_name_parts() -> None:
    record, _ = probe(loadtest={"status": "passed", "kernel": "6.1.0-13-amd64", "accepted": 3,
                                "total": 3})
    assert record is not None and record.loadtest == LoadTest("passed", "6.1.0-13-amd64", 3, 3)
    data = record_to_dict(record)
    assert list(data)[:6] == ["driver_version", "arch", "target", "kernel_release",
                              "kernel_version", "file"]
    again, problems = probe(**data)
    assert problems == [] and again == record


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"target": "../etc"}, "target", "'../etc' is not allowed"),
    ({"kernel_release": "6.1.0/../x"}, "kernel_release", "is not allowed"),
    ({"kernel_release": "6.1.0..x"}, "kernel_release", "must not contain '..'"),
    ({"arch": "amd64"}, "arch", "'amd64' is not allowed; use one of: x86_64, aarch64"),
    ({"sha256": "A" * 64}, "sha256", "64 lowercase hex digits"),
    ({"size": 0}, "size", "must be from 1 to"),
    ({"url": "javascript:alert(1)"}, "url", "an http, https or file URL"),
    ({"release": "0123456789abcdef0123456789abcdef01234567"}, "release",
     "GitHub rejects 40-hex tags"),
    ({"built": "2026-02-30T00:00:00Z"}, "built", "is not a real date and time"),
    ({"file": "falco_debian_other_1.o"}, "file",
     "file 'falco_debian_other_1.o' does not match its name parts (expected "
     "'falco_debian_6.1.0-13-amd64_1.o')"),
    ({"loadtest": {"status": "passed", "accepted": 4, "total": 3}}, "loadtest.accepted",
     "loadtest: 4 programs accepted of 3"),
    ({"loadtest": {"status": "maybe"}}, "loadtest.status", "'maybe' is not allowed"),
])
def test_a_bad_probe_is_refused_with_the_field_that_is_wrong(changes: dict[str, Any],
                                                             field: str, message: str) -> None:
    record, problems = probe(**changes)
    assert record is None
    release = {**PROBE, **changes}["kernel_release"]   # the record's label: what it names
    assert [(p.field, p.path, p.line, p.record) for p in problems] == [
        (field, "fragment.jsonl", 7, f"{release} #1")]
    assert message in problems[0].message


def test_a_failure_needs_a_reason_and_a_known_step() -> None:
    base = {k: v for k, v in PROBE.items() if k not in ("sha256", "size", "url")}
    problems: list[Problem] = []
    failure = failure_from_mapping({**base, "step": "compile", "reason": "clang: error",
                                    "category": "toolchain", "attempts": 2}, WHERE, problems)
    assert problems == [] and isinstance(failure, FailureRecord)
    assert (failure.file, failure.attempts) == ("falco_debian_6.1.0-13-amd64_1.o", 2)
    assert failure_from_mapping({**base, "step": "lunch", "reason": " "}, WHERE, problems) is None
    assert [(p.field, p.message) for p in problems] == [
        ("step", "'lunch' is not allowed; use one of: download, extract, source, compile, "
                 "check, loadtest, publish, skip"),
        ("reason", "must not be empty")]


def test_name_parts_about_to_become_paths() -> None:
    assert validate_name_parts("debian", "6.1.0-13-amd64", "1", "x86_64", "6.0.1+driver") == []
    assert validate_name_parts("Debian", "6.1.0 13", "1\n", "i386", "..") == [
        "target: 'Debian' is not allowed: lowercase letters, digits, '.', '_' and '-'",
        "kernel_release: '6.1.0 13' is not allowed: letters, digits and . _ + ~ - (as `uname "
        "-r` prints)",
        "kernel_version: '1\\n' is not allowed: letters, digits and . _ + ~ - (the digits after "
        "# in `uname -v`)",
        "arch: 'i386' is not allowed; use one of: x86_64, aarch64",
        "driver_version: '..' is not allowed: a libs driver version such as 6.0.1+driver or a "
        "commit hash"]


@pytest.mark.parametrize(("release", "numbers", "series"), [
    ("5.10.0-22-amd64", (5, 10, 0), "5.10"),
    ("6.12.117+deb12-amd64", (6, 12, 117), "6.12"),
    ("5.4", (5, 4, 0), "5.4"),
    ("4.14.77-70.59.amzn1.x86_64", (4, 14, 77), "4.14"),
    ("rolling", None, "other"),
])
def test_kernel_series(release: str, numbers: tuple[int, int, int] | None, series: str) -> None:
    assert release_numbers(release) == numbers
    assert kernel_series(release) == series


@pytest.mark.parametrize(("value", "wrong"), [
    ("2026-11-25T08:00:00Z", None),
    ("2026-11-25 08:00:00", "is not allowed: UTC time as YYYY-MM-DDTHH:MM:SSZ"),
    ("2026-11-25T24:00:00Z", "is not a real date and time"),
    ("1999-12-31T23:59:59Z", "the year must be from 2000"),
])
def test_timestamps_are_real_utc_times(value: str, wrong: str | None) -> None:
    got = check_timestamp(value)
    assert got is None if wrong is None else wrong in (got or "")


def test_tags_are_refs_github_accepts() -> None:
    assert check_tag("probes-6.0.1-driver-x86_64-debian-001") is None
    assert "must not contain '..'" in (check_tag("a..b") or "")
    assert "40-hex" in (check_tag("f" * 40) or "")


def test_a_kernel_round_trips_and_a_bad_one_names_its_part() -> None:
    kernel = Kernel("debian", HostFacts("debian", "6.1.0-13-amd64", "#1 SMP Debian 6.1.55-1",
                                        "x86_64", version_id="12"),
                    (HeaderPackage("linux-headers-6.1.0-13-amd64.deb",
                                   "https://deb.example/h.deb", "b" * 64, 10),),
                    source="apt", flavor="amd64", package_version="6.1.55-1")
    assert kernel.key == "debian/x86_64/6.1.0-13-amd64/6.1.55-1"
    problems: list[Problem] = []
    assert kernel_from_mapping(kernel_to_dict(kernel), "plan.json", "jobs[0]", problems) == kernel
    assert problems == []
    data = kernel_to_dict(kernel)
    data["host"]["uname_m"] = "sparc"
    data["headers"][0]["url"] = "ftp://deb.example/h.deb"
    assert kernel_from_mapping(data, "plan.json", "jobs[0]", problems) is None
    assert [(p.record, p.field) for p in problems] == [("jobs[0].host", "uname_m"),
                                                       ("jobs[0].headers[0]", "url")]
