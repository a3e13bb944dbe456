"""loadtest/kmodtest.py: what the guest is sent for a module (only what the build wrote),
and what its result line means: passed with the API version the module answered and its
events, refused with the kernel's words, not tested with why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builder.core.records import LoadTest
from builder.loadtest.kmodtest import job_entry, module_loadtest, module_log, usable_interface
from builder.loadtest.vm import Boot

INTERFACE = {"ioctls": {"GET_API_VERSION": 0x7318, "GET_SCHEMA_VERSION": 0x7319,
                        "ENABLE_SYSCALL": 0x731D, "ENABLE_TP": 0x731F, "DISABLE_TP": 0x7320},
             "kmod_progs": ["KMOD_PROG_SYS_ENTER", "KMOD_PROG_SYS_EXIT"],
             "syscall_table_size": 512, "api": "8.0.4", "schema": "4.1.0",
             "capture": "enable_tp"}
DATE = "2026-12-08T00:22:24Z"
PASSED = {"key": "k", "kernel": "6.1.0-57-amd64", "insmod_seconds": 0.12,
          "devices": ["falco0", "falco1"], "api_version": "8.0.4", "schema_version": "4.1.0",
          "events": 65, "events_all": 71, "corrupt": 0, "rmmod_seconds": 0.27, "passed": True,
          "reason": "", "kmsg": ["falco: driver loading, falco 0.23.2"]}
REFUSED = {"key": "k", "kernel": "6.12.118+deb13-amd64", "events": 0, "passed": False,
           "error": "insmod refused: Invalid argument",
           "reason": "insmod refused: Invalid argument (falco: disagrees about version of "
                     "symbol _printk; falco: Unknown symbol _printk (err -22))",
           "kmsg": ["falco: disagrees about version of symbol _printk"]}


def test_the_guest_gets_the_modules_path_and_interface(tmp_path: Path) -> None:
    assert job_entry("k", tmp_path / "falco.ko", INTERFACE) == {
        "key": "k", "path": str(tmp_path / "falco.ko"), "driver_type": "kmod",
        "interface": INTERFACE}


@pytest.mark.parametrize(("raw", "kept"), [
    ({}, {}),
    ({"ioctls": {"GET_API_VERSION": "rm -rf"}}, {}),
    ({"ioctls": {"GET API": 1}}, {}),
    ({"ioctls": {"X": 1 << 20}}, {}),
    ({"ioctls": {"X": True}}, {}),
    ({"ioctls": {"X": 1}, "kmod_progs": ["A", "B C"], "syscall_table_size": 10 ** 9,
      "api": "8" * 50, "capture": "enable_tp"},
     {"ioctls": {"X": 1}, "kmod_progs": [], "syscall_table_size": 512,
      "capture": "enable_tp"}),
], ids=["empty", "not a number", "not a name", "too big", "a bool", "the rest cleaned"])
def test_a_reports_interface_reaches_an_ioctl_only_in_its_own_shape(
        raw: dict[str, Any], kept: dict[str, Any]) -> None:
    assert usable_interface(raw) == kept


def test_a_passed_module_keeps_its_api_version_and_events() -> None:
    assert module_loadtest(PASSED, "6.1.0-57-amd64", None, DATE) == LoadTest(
        "passed", "6.1.0-57-amd64", events=65, date=DATE, api_version="8.0.4",
        schema_version="4.1.0")


def test_a_refused_module_says_what_the_kernel_said() -> None:
    test = module_loadtest(REFUSED, "6.12.118+deb13-amd64", None, DATE)
    assert (test.status, test.events, test.api_version) == ("rejected", 0, "")
    assert test.reason == REFUSED["reason"]


def test_a_module_without_a_result_is_not_tested_with_why() -> None:
    boot = Boot("tcg", "9p", 80.0, True, False, "the VM timed out after 900 s")
    assert module_loadtest(None, "6.1.0-57-amd64", boot, DATE).reason == \
        "the VM timed out after 900 s"
    assert module_loadtest(None, "6.1.0-57-amd64", None, DATE,
                           "no arm64 VM here").status == "not_tested"
    assert module_loadtest({**PASSED, "events": -3}, "x", None, DATE).events == 0


def test_the_log_tells_the_whole_story() -> None:
    test = module_loadtest(PASSED, "6.1.0-57-amd64", None, DATE)
    assert module_log(PASSED, test, None).splitlines() == [
        "load test: passed", "kernel: 6.1.0-57-amd64", f"date: {DATE}",
        "insmod: 0.12 s, devices: falco0, falco1",
        "API version: 8.0.4, schema version: 4.1.0",
        "events of the child: 65 (all records: 71, corrupt: 0)", "rmmod: 0.27 s", "",
        "--- kernel log ---", "falco: driver loading, falco 0.23.2"]
    refused = module_loadtest(REFUSED, "6.12.118+deb13-amd64", None, DATE)
    assert f"reason: {REFUSED['reason']}" in module_log(REFUSED, refused, None)
