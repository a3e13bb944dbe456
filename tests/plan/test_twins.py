"""plan/twins.py: kernels whose loaders request one file name each get a file of their own:
one owns the default path (by the target's `twins.owner` rule, or because the catalog
already serves it there), every other goes under a root of its own."""

from __future__ import annotations

import pytest

from builder.core.records import HostFacts, Kernel, ProbeName, Twin
from builder.plan.twins import Member, owner, place_twins, twin_root, variant

FILE = ("9.1.0+driver", "x86_64", "falco_debian_6.12.48-1-amd64_1.o")
NAME = ProbeName("debian", "6.12.48-1-amd64", "1", "x86_64")


def kernel(uname_r: str, package_version: str, version_id: str, flavor: str = "amd64",
           arch: str = "x86_64") -> Kernel:
    return Kernel("debian", HostFacts("debian", uname_r, f"#1 SMP Debian {package_version}",
                                      arch, version_id=version_id),
                  flavor=flavor, package_version=package_version)


BACKPORT = Member(kernel("6.12.48+deb12-amd64", "6.12.48-1~deb12u1", "12"), NAME)
NATIVE = Member(kernel("6.12.48+deb13-amd64", "6.12.48-1", "13"), NAME)
SIXTEEN_K = Member(kernel("6.12.48+deb13-arm64-16k", "6.12.48-1", "13", "arm64-16k",
                          "aarch64"), NAME)


@pytest.mark.parametrize(("flavor", "expected"), [
    ("amd64", ""), ("cloud-amd64", ""), ("rt-amd64", ""), ("arm64", ""), ("arm64-16k", "16k"),
    ("", ""),
])
def test_the_variant_is_what_the_loaders_name_drops(flavor: str, expected: str) -> None:
    assert variant(kernel("6.1.0-1-x", "6.1.1-1", "12", flavor)) == expected


def test_a_twin_root_names_the_target_its_release_and_variant() -> None:
    assert twin_root(BACKPORT.kernel) == "debian-12"
    assert twin_root(SIXTEEN_K.kernel) == "debian-13-16k"
    odd = kernel("6.1.0-1-amd64", "6.1.1-1", "Bookworm 12!")
    assert twin_root(odd) == "debian-bookworm-12"        # a safe folder name, whatever it is


REBUILD = Member(kernel("6.12.48+deb13-amd64", "6.12.48-1+b1", "13"), NAME)


@pytest.mark.parametrize(("rule", "expected"), [
    ("native", NATIVE), ("newest", REBUILD), ("oldest", BACKPORT)])
def test_the_owner_rule_picks_a_plain_kernel(rule: str, expected: Member) -> None:
    # Debian's order: 6.12.48-1~deb12u1 < 6.12.48-1 < 6.12.48-1+b1; only 6.12.48-1 is the
    # package version the loader's name carries
    assert owner([BACKPORT, NATIVE, REBUILD, SIXTEEN_K], rule) == expected
    assert owner([SIXTEEN_K], rule) == SIXTEEN_K             # a variant alone still owns


def test_the_owner_gets_the_default_path_and_every_twin_its_root() -> None:
    group = [BACKPORT, NATIVE]
    placed = place_twins({FILE: group}, lambda member: "native", lambda file: None)
    assert placed[(FILE, NATIVE.kernel.key)].root == ""
    assert placed[(FILE, BACKPORT.kernel.key)].root == "debian-12"
    assert placed[(FILE, NATIVE.kernel.key)].twins == (Twin("6.12.48+deb12-amd64",
                                                            "debian-12"),)
    assert placed[(FILE, BACKPORT.kernel.key)].twins == (Twin("6.12.48+deb13-amd64", ""),)


def test_a_default_path_already_served_stays_with_its_kernel() -> None:
    group = [BACKPORT, NATIVE]
    placed = place_twins({FILE: group}, lambda member: "native",
                         lambda file: "6.12.48+deb12-amd64")
    assert placed[(FILE, BACKPORT.kernel.key)].root == ""    # never replaced by other bytes
    assert placed[(FILE, NATIVE.kernel.key)].root == "debian-13"
    elsewhere = place_twins({FILE: group}, lambda member: "native", lambda file: "5.10.0-1")
    assert {p.root for p in elsewhere.values()} == {"debian-12", "debian-13"}


def test_twins_that_would_share_a_root_get_a_digest_each() -> None:
    again = Member(kernel("6.12.48+deb12-amd64", "6.12.48-1~deb12u2", "12"), NAME)
    placed = place_twins({FILE: [BACKPORT, again, NATIVE]}, lambda member: "native",
                         lambda file: None)
    roots = [placed[(FILE, m.kernel.key)].root for m in (BACKPORT, again)]
    assert len(set(roots)) == 2 and all(r.startswith("debian-12-") for r in roots)
    assert all(len(r) == len("debian-12-") + 8 for r in roots)
    assert placed[(FILE, NATIVE.kernel.key)].root == ""
