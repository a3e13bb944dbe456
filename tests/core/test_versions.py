"""core/versions.py: Falco versions and which driver version each release loads."""

from __future__ import annotations

import pytest

from builder.core.errors import InputError
from builder.core.versions import (
    BUILTIN_RELEASES,
    FalcoReleases,
    FalcoVersion,
    builtin_driver_version,
    check_supported,
    default_driver_type,
    driver_types_of,
    v,
)


def test_versions_are_ascii() -> None:
    with pytest.raises(InputError, match="is not a version like"):
        FalcoVersion.parse("０.３６.２")


@pytest.mark.parametrize(("text", "version"), [
    ("0.36.2", FalcoVersion(0, 36, 2)), ("v0.36.2", FalcoVersion(0, 36, 2)),
    (" 0.35 ", FalcoVersion(0, 35, 0)), ("0.9.10", FalcoVersion(0, 9, 10)),
])
def test_version_forms(text: str, version: FalcoVersion) -> None:
    assert FalcoVersion.parse(text) == version
    assert str(version) == f"{version.major}.{version.minor}.{version.patch}"


@pytest.mark.parametrize("text", ["0.36.2.1", "0.36.2-rc1", "36", "", "0.36.x", "00000.1"])
def test_what_is_not_a_version(text: str) -> None:
    with pytest.raises(InputError, match="Falco version .* is not a version like 0.35.1"):
        FalcoVersion.parse(text)


def test_versions_order_by_number_not_text() -> None:
    assert sorted([v("0.9.0"), v("0.36.10"), v("0.36.2"), v("0.10.0")]) == [
        v("0.9.0"), v("0.10.0"), v("0.36.2"), v("0.36.10")]


@pytest.mark.parametrize(("falco", "driver"), [
    ("0.25.0", None),
    ("0.26.0", "2aa88dcf6243982697811df4c1b484bcbe9488a2"),
    ("0.31.0", "319368f1ad778691164d33d59945e00c5752cd27"),   # one release, its own driver
    ("0.31.1", "b7eb0dd65226a8dc254d228c8d950d07bf3521d2"),
    ("0.32.0", "39ae7d40496793cf3d3e7890c9bbdc202263836b"),
    ("0.32.1", "2.0.0+driver"),
    ("0.36.2", "6.0.1+driver"),
    ("0.37.0", None),                                        # newer ones: probes.yaml says
])
def test_builtin_driver_versions(falco: str, driver: str | None) -> None:
    assert builtin_driver_version(v(falco)) == driver


def test_releases_are_exact_and_probes_yaml_overrides_the_builtin_table() -> None:
    assert BUILTIN_RELEASES.driver_for(v("0.36.2")) == "6.0.1+driver"
    assert BUILTIN_RELEASES.driver_for(v("0.31.2")) is None      # no such release
    assert BUILTIN_RELEASES.falco_for("5.0.1+driver") == (v("0.35.0"), v("0.35.1"))
    releases = FalcoReleases.from_lists([("9.1.0+driver", ["0.43.1", "0.43.0"]),
                                         ("6.0.2+driver", ["0.36.2"])])
    assert releases.falco_for("9.1.0+driver") == (v("0.43.0"), v("0.43.1"))
    assert releases.driver_for(v("0.36.2")) == "6.0.2+driver"
    assert releases.falco_for("6.0.1+driver") == (v("0.36.0"), v("0.36.1"))
    assert releases.newest() == v("0.43.1")
    assert list(releases.as_mapping().items())[-2:] == [("0.43.0", "9.1.0+driver"),
                                                        ("0.43.1", "9.1.0+driver")]


@pytest.mark.parametrize(("falco", "supported"), [("0.25.9", False), ("0.26.0", True),
                                                  ("0.43.1", True), ("0.44.0", False)])
def test_supported_releases_are_those_with_legacy_ebpf(falco: str, supported: bool) -> None:
    if supported:
        check_supported(v(falco))
    else:
        with pytest.raises(InputError, match="outside the supported range 0.26 to 0.43"):
            check_supported(v(falco))


@pytest.mark.parametrize(("falco", "supported"), [("0.25.9", False), ("0.26.0", True),
                                                  ("0.44.1", True), ("0.45.0", False)])
def test_the_kernel_module_is_supported_up_to_0_44(falco: str, supported: bool) -> None:
    if supported:
        check_supported(v(falco), "kmod")
    else:
        with pytest.raises(InputError, match=r"outside the supported range 0\.26 to 0\.44 "
                                             "for the kernel module"):
            check_supported(v(falco), "kmod")


def test_0_44_asked_for_an_ebpf_probe_is_pointed_at_the_module() -> None:
    with pytest.raises(InputError) as info:
        check_supported(v("0.44.0"))
    assert info.value.hint == ("Falco 0.44 has no legacy eBPF probe (removed in 0.44): ask for "
                               "its kernel module (--driver-type kmod)")


@pytest.mark.parametrize(("driver", "types"), [
    ("9.1.0+driver", ("ebpf", "kmod")), ("2.0.0+driver", ("ebpf", "kmod")),
    ("2aa88dcf6243982697811df4c1b484bcbe9488a2", ("ebpf", "kmod")),
    ("0.1.1dev+git20220316.e5c53d64", ("ebpf", "kmod")),
    ("10.0.0+driver", ("kmod",)), ("10.2.0+driver", ("kmod",)), ("11.0.1+driver", ("kmod",)),
])
def test_which_types_a_driver_versions_source_has(driver: str, types: tuple[str, ...]) -> None:
    assert driver_types_of(driver) == types


@pytest.mark.parametrize(("falco", "kind"), [("0.26.0", "ebpf"), ("0.43.1", "ebpf"),
                                             ("0.44.0", "kmod"), ("0.44.1", "kmod")])
def test_a_release_loads_the_module_by_default_from_0_44(falco: str, kind: str) -> None:
    assert default_driver_type(v(falco)) == kind
