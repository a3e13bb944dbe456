"""core/naming.py, loader-exact naming: every case of tests/data/naming_cases.yaml, plus
the edges."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from testpaths import NAMING_CASES, NAMING_CASES_KMOD

from builder.core.naming import (
    NoRequest,
    falcoctl_request_path,
    host_from_inputs,
    names_for_driver,
    parse_os_release,
    probe_name,
    request_path,
)
from builder.core.records import HostFacts
from builder.core.versions import FalcoVersion, builtin_driver_version, v

CASES: list[dict[str, Any]] = yaml.safe_load(
    NAMING_CASES.read_text())


def host_of(case: dict[str, Any]) -> HostFacts:
    return host_from_inputs(case["os_release"], case["uname_r"], case["uname_v"],
                            case["uname_m"], case.get("etc_version"), case.get("fallback", ""))


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_loader_names_and_paths(case: dict[str, Any]) -> None:
    host = host_of(case)
    falco = FalcoVersion.parse(case["falco"])
    expect = case["expect"]
    if expect.get("requested") is False:
        with pytest.raises(NoRequest):
            probe_name(host, falco)
        return
    name = probe_name(host, falco)
    assert (name.target, name.kernel_release, name.kernel_version) == (
        expect["target"], expect["kernel_release"], expect["kernel_version"])
    assert name.file == expect["file"]
    assert request_path(case["driver_version"], name, falco) == expect["request_path"]


def test_table_covers_every_rule_era() -> None:
    falcos = {c["falco"] for c in CASES}
    for needed in ("0.26.0", "0.32.0", "0.32.1", "0.32.2", "0.33.0", "0.34.0", "0.35.0",
                   "0.35.1", "0.36.2", "0.37.0", "0.37.1", "0.38.0", "0.39.0", "0.43.1"):
        assert needed in falcos
    ids = " ".join(c["case"] for c in CASES)
    for special in ("amzn", "u_", "d_", "minikube", "bottlerocket", "talos", "flatcar", "cos"):
        assert special in ids


@pytest.mark.parametrize("case", [c for c in CASES if c["falco"] < "0.37"
                                  and c.get("driver_version")],
                         ids=lambda c: c["case"])
def test_builtin_driver_versions_match_the_loader(case: dict[str, Any]) -> None:
    assert builtin_driver_version(FalcoVersion.parse(case["falco"])) == case["driver_version"]


def test_falcoctl_escapes_only_the_driver_version() -> None:
    host = host_from_inputs("ID=cos\nBUILD_ID=17800.66.78\n", "5.15.107+",
                            "#1 SMP Sat May 20 10:36:31 UTC 2023", "x86_64")
    shell = probe_name(host, v("0.36.2"))
    assert request_path("6.0.1+driver", shell, v("0.36.2")) == \
        "6.0.1%2Bdriver/x86_64/falco_cos_5.15.107%2B_1.o"
    assert falcoctl_request_path("6.0.1+driver", shell) == \
        "6.0.1%2Bdriver/x86_64/falco_cos_5.15.107+_1.o"


@pytest.mark.parametrize(("text", "expected"), [
    ('ID="rhel"\nVERSION_ID="8.8"\n', {"ID": "rhel", "VERSION_ID": "8.8"}),
    ("ID='ubuntu'\n# comment\n\nNAME=Ubuntu\n", {"ID": "ubuntu", "NAME": "Ubuntu"}),
    ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n',
     {"PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)", "ID": "debian"}),
    ('ID="unterminated\n', {"ID": "unterminated"}),
])
def test_parse_os_release(text: str, expected: dict[str, str]) -> None:
    assert parse_os_release(text) == expected


def test_debian_aliases_across_the_0_35_rules() -> None:
    host = host_from_inputs("ID=debian\nVERSION_ID=12\n", "6.1.0-13-cloud-amd64",
                            "#1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 (2023-09-29)", "x86_64")
    name, aliases = names_for_driver(host, [v("0.35.0"), v("0.35.1")])
    assert name.file == "falco_debian_6.1.55-1-cloud-amd64_1.o"
    assert aliases == ("falco_debian_6.1.55-1-amd64_1.o",)
    old, none = names_for_driver(host, [v("0.34.0"), v("0.34.1")])
    assert (old.file, none) == ("falco_debian_6.1.0-13-cloud-amd64_1.o", ())


def test_ubuntu_aliases_across_three_eras() -> None:
    host = host_from_inputs("ID=ubuntu\nVERSION_ID=20.04\n", "5.4.0-1109-aws-fips",
                            "#118~20.04.1-Ubuntu SMP Mon Apr 24 01:58:15 UTC 2023", "x86_64")
    name, aliases = names_for_driver(host, [v("0.32.2"), v("0.34.0"), v("0.35.1")])
    assert name.file == "falco_ubuntu-aws_5.4.0-1109-aws-fips_118~20.04.1.o"
    assert aliases == ("falco_ubuntu-aws-fips_5.4.0-1109-aws-fips_118.o",
                       "falco_ubuntu-aws_5.4.0-1109-aws-fips_118.o")


def test_driver_version_without_falco_release_uses_newest_rules_and_override_aliases() -> None:
    host = host_from_inputs("ID=debian\n", "6.1.0-47-cloud-amd64",
                            "#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1 (2025-11-09)", "x86_64")
    name, aliases = names_for_driver(host, [])
    assert name.file == "falco_debian_6.1.158-1-cloud-amd64_1.o"
    # DRIVER_VERSION=<it> on Falco 0.33-0.34, and 0.35.0's rt/cloud-dropping rule
    assert aliases == ("falco_debian_6.1.0-47-cloud-amd64_1.o", "falco_debian_6.1.158-1-amd64_1.o")


def test_kernel_too_old_for_falcoctl_is_no_request() -> None:
    host = host_from_inputs("ID=centos\nVERSION_ID=7\n", "3.10.0-1160.el7.x86_64",
                            "#1 SMP Mon Oct 19 16:18:59 UTC 2020", "x86_64")
    with pytest.raises(NoRequest, match="refuses eBPF below kernel 4.14"):
        probe_name(host, v("0.39.0"))
    assert probe_name(host, v("0.37.1")).file == "falco_centos_3.10.0-1160.el7.x86_64_1.o"


def test_parse_os_release_is_shells_reading_in_linear_time() -> None:
    """Same words as shlex (which the cases above use), on inputs shlex takes minutes for."""
    assert parse_os_release('ID="ub"untu # comment\nVERSION_ID=\'22.04\' x\nNAME="a \\"b\\""'
                            ) == {"ID": "ubuntu", "VERSION_ID": "22.04", "NAME": 'a "b"'}
    assert parse_os_release("ID='unclosed\n") == {"ID": "unclosed"}
    huge = parse_os_release("ID=" + "a" * 4_000_000 + "\nVERSION_ID=" + "b " * 1_000_000)
    assert len(huge["ID"]) == 4_000_000 and huge["VERSION_ID"] == "b"


# --- the kernel module ----------------------------------------------------------------------

KMOD_CASES: list[dict[str, Any]] = yaml.safe_load(NAMING_CASES_KMOD.read_text())


@pytest.mark.parametrize("case", KMOD_CASES, ids=[c["case"] for c in KMOD_CASES])
def test_the_kernel_modules_names_and_paths(case: dict[str, Any]) -> None:
    host = host_of(case)
    falco = FalcoVersion.parse(case["falco"])
    expect = case["expect"]
    if expect.get("requested") is False:
        with pytest.raises(NoRequest, match=re.escape(expect["reason"])):
            probe_name(host, falco, case["driver_type"])
        return
    name = probe_name(host, falco, case["driver_type"])
    assert (name.target, name.kernel_release, name.kernel_version, name.file) == (
        expect["target"], expect["kernel_release"], expect["kernel_version"], expect["file"])
    assert request_path(case["driver_version"], name, falco) == expect["request_path"]


@pytest.mark.parametrize("case", [c for c in CASES if c["expect"].get("requested") is not False
                                  and c["falco"] != "0.32.1"], ids=lambda c: c["case"])
def test_every_probe_name_is_the_modules_with_o(case: dict[str, Any]) -> None:
    """Up to Falco 0.43 a module is requested exactly as the probe, but for its extension
    (and the shell loader's arch folder of 0.32.1, the module's first: case k4)."""
    host, falco = host_of(case), FalcoVersion.parse(case["falco"])
    try:
        module = probe_name(host, falco, "kmod")
    except NoRequest:  # below the eBPF floor the module may still be requested: not here
        pytest.fail("the module's floor is lower than the probe's")
    assert module.file == case["expect"]["file"].removesuffix(".o") + ".ko"
    assert request_path(case["driver_version"], module, falco) == \
        case["expect"]["request_path"].removesuffix(".o") + ".ko"


def test_a_driver_no_release_loads_is_named_by_0_44_for_the_module() -> None:
    host = host_from_inputs("ID=custom\n", "6-custom", "#5 SMP", "x86_64")
    name, aliases = names_for_driver(host, (), "kmod")
    assert name.file == "falco_custom_6-custom_5.ko" and aliases == ()
    with pytest.raises(NoRequest):  # no eBPF loader parses that release: the shell fallback
        probe_name(host, v("0.43.0"))
