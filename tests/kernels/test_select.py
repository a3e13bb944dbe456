"""kernels/select.py: filters keep or skip each kernel, with a reason."""

from __future__ import annotations

from typing import Any

import pytest

from builder.core.errors import InputError
from builder.core.records import HostFacts, Kernel
from builder.kernels.select import KernelFilters, select_kernels, version_order

# --- filters: each kernel kept or skipped with its reason ------------------------------------

def kernel(target: str, release: str, arch: str = "x86_64", flavor: str = "",
           version: str = "") -> Kernel:
    return Kernel(target, HostFacts(target.split("-")[0], release, "#1 SMP", arch),
                  flavor=flavor, package_version=version)


KERNELS = [
    kernel("debian", "6.1.0-47-amd64", flavor="amd64", version="6.1.158-1"),
    kernel("debian", "6.1.0-50-amd64", flavor="amd64", version="6.1.176-1"),
    kernel("debian", "6.12.48+deb12-amd64", flavor="amd64", version="6.12.48-1~deb12u1"),
    kernel("debian", "6.1.0-50-rt-amd64", flavor="rt-amd64", version="6.1.176-1"),
    kernel("ubuntu-aws", "4.4.0-1125-aws", flavor="aws"),
    kernel("ubuntu-generic", "5.15.0-100-generic", flavor="generic"),
    kernel("amazonlinux2", "4.14.77-70.59.amzn2.aarch64", arch="aarch64"),
    kernel("amazonlinux2", "5.10.198-187.748.amzn2.aarch64", arch="aarch64"),
    kernel("flatcar", "3305.0.1"),
    kernel("cos", "custom"),
]
ALL = {k.host.uname_r for k in KERNELS}

# filters -> {uname -r: rule that skipped it}; every other kernel is kept.
FILTER_CASES: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    ("defaults", {}, {"4.4.0-1125-aws": "min-kernel", "4.14.77-70.59.amzn2.aarch64": "min-kernel",
                      "custom": "min-kernel"}),
    ("arch", {"arches": ("aarch64",), "min_kernel": {}},
     {r: "arch" for r in ALL if "aarch64" not in r}),
    ("target family", {"targets": ("ubuntu",)},
     {**{r: "target" for r in ALL if "-aws" not in r and "generic" not in r},
      "4.4.0-1125-aws": "min-kernel"}),
    ("exact target", {"targets": ("ubuntu-generic", "flatcar"), "min_kernel": {}},
     {r: "target" for r in ALL - {"5.15.0-100-generic", "3305.0.1"}}),
    ("min kernel", {"min_kernel": {"x86_64": "6.2", "aarch64": "5.10"}},
     {"6.1.0-47-amd64": "min-kernel", "6.1.0-50-amd64": "min-kernel",
      "6.1.0-50-rt-amd64": "min-kernel", "4.4.0-1125-aws": "min-kernel",
      "5.15.0-100-generic": "min-kernel", "4.14.77-70.59.amzn2.aarch64": "min-kernel",
      "custom": "min-kernel"}),
    ("include", {"include": r"^6\.1\.", "targets": ("debian",)},
     {**{r: "target" for r in ALL if not r.startswith("6.")},
      "6.12.48+deb12-amd64": "include"}),
    ("exclude", {"exclude": "rt-", "targets": ("debian",)},
     {**{r: "target" for r in ALL if not r.startswith("6.")}, "6.1.0-50-rt-amd64": "exclude"}),
    ("latest per target, arch, flavor and series", {"latest": 1, "targets": ("debian",)},
     {**{r: "target" for r in ALL if not r.startswith("6.")},
      "6.1.0-47-amd64": "latest"}),
    ("latest 2", {"latest": 2, "targets": ("debian",)},
     {r: "target" for r in ALL if not r.startswith("6.")}),
]


@pytest.mark.parametrize(("case", "given", "skipped"), FILTER_CASES,
                         ids=[c[0] for c in FILTER_CASES])
def test_filters_keep_or_skip_each_kernel_with_a_reason(case: str, given: dict[str, Any],
                                                        skipped: dict[str, str]) -> None:
    selection = select_kernels(KERNELS, KernelFilters(**given))
    assert {s.kernel.host.uname_r: s.rule for s in selection.skipped} == skipped
    assert {k.host.uname_r for k in selection.kept} == ALL - set(skipped)
    assert len(selection.kept) + len(selection.skipped) == len(KERNELS)  # none dropped
    assert all(s.reason for s in selection.skipped)


def test_skip_reasons_say_why() -> None:
    reasons = {s.kernel.host.uname_r: s.reason
               for s in select_kernels(KERNELS, KernelFilters(latest=1)).skipped}
    assert reasons["4.4.0-1125-aws"] == ("kernel 4.4.0-1125-aws is older than 4.14, the "
                                         "minimum for eBPF probes on x86_64")
    assert reasons["custom"] == "uname -r custom does not start with a kernel version"
    assert reasons["6.1.0-47-amd64"] == "not among the 1 newest debian/x86_64/amd64/6.1 kernels"


def test_version_order_follows_debian_rules() -> None:
    older = kernel("debian", "6.1.0-47-amd64", version="6.1.158-1~bpo11+1")
    newer = kernel("debian", "6.1.0-47-amd64", version="6.1.158-1")
    newest = kernel("debian", "6.1.0-47-amd64", version="6.1.158-10")
    assert sorted([newest, newer, older], key=version_order) == [older, newer, newest]


@pytest.mark.parametrize(("given", "message"), [
    ({"include": "("}, "include pattern '\\(' is not a valid regular expression"),
    ({"arches": ("sparc",)}, "unknown architecture 'sparc'"),
    ({"min_kernel": {"x86_64": "new"}}, "minimum kernel 'new' for x86_64 is not a version"),
    ({"latest": -1}, "--latest -1"),
])
def test_bad_filters_are_bad_input(given: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        KernelFilters(**given)
