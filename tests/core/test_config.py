"""core/config.py, probes.yaml: the repository's own file loads; every kind of mistake,
hostile ones included, is named with its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from commandline import NODE, cli, empty_catalog, os_release
from configs import TWO_DRIVERS
from hostileinputs import alias_bomb
from testpaths import ROOT

from builder.core.config import load_config
from builder.core.errors import InputError, ProblemsError
from builder.core.versions import BUILTIN_RELEASES, v

GOOD = """\
schema_version: 1
driver_versions:
  - version: 6.0.1+driver
    falco: [0.36.0, 0.36.2]
    source: {kind: libs-archive}
targets:
  - {name: debian, kernels: apt}
"""


def test_the_repository_probes_yaml_is_valid() -> None:
    config = load_config(ROOT / "probes.yaml")
    assert config.releases.driver_for(v("0.43.1")) == "9.1.0+driver"
    assert config.releases.driver_for(v("0.26.1")) == "2aa88dcf6243982697811df4c1b484bcbe9488a2"
    assert config.store.max_assets_per_release <= 1000
    dkms = config.driver("0.1.1dev+git20220316.e5c53d64")
    assert dkms is not None and dkms.source.package == "falcosecurity-scap-dkms"


# The 20 driver versions Falco 0.26 to 0.43 load by default (DESIGN.md section 4).
LEGACY_DRIVERS = {
    "2aa88dcf6243982697811df4c1b484bcbe9488a2": "0.26.0 0.26.1 0.26.2",
    "5c0b863ddade7a45568c0ac97d037422c9efb750": "0.27.0 0.28.0 0.28.1",
    "17f5df52a7d9ed6bb12d3b1768460def8439936d": "0.29.0 0.29.1",
    "3aa7a83bf7b9e6229a3824e3fd1f4452d1e95cb4": "0.30.0",
    "319368f1ad778691164d33d59945e00c5752cd27": "0.31.0",
    "b7eb0dd65226a8dc254d228c8d950d07bf3521d2": "0.31.1",
    "39ae7d40496793cf3d3e7890c9bbdc202263836b": "0.32.0",
    "2.0.0+driver": "0.32.1 0.32.2", "3.0.1+driver": "0.33.0 0.33.1",
    "4.0.0+driver": "0.34.0 0.34.1", "5.0.1+driver": "0.35.0 0.35.1",
    "6.0.1+driver": "0.36.0 0.36.1 0.36.2", "7.0.0+driver": "0.37.0 0.37.1",
    "7.2.0+driver": "0.38.0 0.38.1", "7.2.1+driver": "0.38.2",
    "7.3.0+driver": "0.39.0 0.39.1 0.39.2", "8.0.0+driver": "0.40.0",
    "8.1.0+driver": "0.41.0 0.41.1 0.41.2 0.41.3", "9.0.0+driver": "0.42.0 0.42.1",
    "9.1.0+driver": "0.43.0 0.43.1",
}


def test_probes_yaml_lists_every_legacy_driver_version_with_its_releases() -> None:
    config = load_config(ROOT / "probes.yaml")
    for driver, releases in LEGACY_DRIVERS.items():
        assert config.driver(driver) is not None, driver
        assert " ".join(map(str, config.releases.falco_for(driver))) == releases
        for release in releases.split():  # the built-in facts say the same up to 0.36
            builtin = BUILTIN_RELEASES.driver_for(v(release))
            assert builtin in (None, driver)


def test_the_embedded_demo_config_is_valid() -> None:
    config = load_config(ROOT / "builder" / "demo.yaml")
    assert [t.name for t in config.targets] == ["debian"]
    assert {d.version: d.types for d in config.driver_versions} == {
        "9.1.0+driver": ("ebpf", "kmod"), "8.0.0+driver": ("ebpf", "kmod"),
        "0.1.1dev+git20220316.e5c53d64": ("ebpf",)}


def test_probes_yaml_builds_every_type_each_version_has() -> None:
    """Both types where both exist, the module alone for 10.x, which Falco 0.44 loads."""
    config = load_config(ROOT / "probes.yaml")
    types = {d.version: d.types for d in config.driver_versions}
    assert {v for v, t in types.items() if t == ("kmod",)} == {
        "10.0.0+driver", "10.1.0+driver", "10.2.0+driver"}
    assert all(t == ("ebpf", "kmod") for v, t in types.items() if not v.startswith("10."))
    assert config.releases.falco_for("10.2.0+driver") == (v("0.44.0"), v("0.44.1"))
    assert config.releases.falco_for("10.1.0+driver") == ()   # no Falco release loaded it
    assert config.releases.falco_for("10.0.0+driver") == ()


@pytest.mark.parametrize(("version", "listed", "built"), [
    ("9.1.0+driver", "", ("ebpf",)),                 # what this repository always built
    ("10.0.0+driver", "", ("kmod",)),                # libs 10.x has no driver/bpf
    ("2aa88dcf6243982697811df4c1b484bcbe9488a2", "", ("ebpf",)),
    ("9.1.0+driver", "types: [kmod]\n    ", ("kmod",)),
    ("9.1.0+driver", "types: [kmod, ebpf]\n    ", ("kmod", "ebpf")),
])
def test_types_default_to_what_the_source_has(tmp_path: Path, version: str, listed: str,
                                              built: tuple[str, ...]) -> None:
    path = tmp_path / "probes.yaml"
    path.write_text(GOOD.replace("6.0.1+driver", version).replace("falco:", listed + "falco:"))
    driver = load_config(path).driver(version)
    assert driver is not None and driver.types == built


def test_defaults(tmp_path: Path) -> None:
    path = tmp_path / "probes.yaml"
    path.write_text(GOOD)
    config = load_config(path)
    driver = config.driver("6.0.1+driver")
    assert driver is not None and driver.ref == "6.0.1+driver"
    assert driver.source.url == "https://github.com/falcosecurity/libs/archive/{ref}.tar.gz"
    target = config.target("debian")
    assert target is not None and target.arch == ("x86_64",)
    assert dict(target.min_kernel) == {"x86_64": "4.14", "aarch64": "4.17"}
    assert (config.store.kind, config.store.max_assets_per_release) == ("directory", 900)
    assert config.build.backoff_hours == (24, 72, 168)


MISTAKES = [
    ("unknown key with a guess", GOOD.replace("falco:", "falko:"), 4,
     "unknown key 'falko' in driver version; did you mean 'falco'?"),
    ("wrong type", GOOD.replace("[0.36.0, 0.36.2]", "0.36.0"), 4, "must be a list, got"),
    ("bad Falco version", GOOD.replace("0.36.2", "zero"), 4, "'zero' is not a Falco version"),
    ("bad source kind", GOOD.replace("libs-archive", "git"), 5,
     "'git' is not allowed; use one of: libs-archive, debian-package, directory"),
    ("package missing", GOOD.replace("{kind: libs-archive}", "{kind: debian-package}"), 5,
     "source kind 'debian-package' needs 'package'"),
    ("hostile driver version", GOOD.replace("6.0.1+driver", "../../etc"), 3,
     "'../../etc' is not allowed"),
    ("html target", GOOD.replace("name: debian", "name: <b>x</b>"), 7, "is not allowed"),
    ("bad kernel source", GOOD.replace("kernels: apt", "kernels: yum"), 7,
     "'yum' is not a kernel source"),
    ("bad arch", GOOD.replace("kernels: apt}", "kernels: apt, arch: [amd64]}"), 7,
     "item 0: 'amd64' is not allowed; use one of: x86_64, aarch64"),
    ("bad regex", GOOD.replace("kernels: apt}", "kernels: apt, include: '('}"), 7,
     "is not a valid regular expression"),
    ("too many assets", GOOD + "store: {max_assets_per_release: 5000}\n", 8,
     "must be between 1 and 1000"),
    ("schema version", GOOD.replace("schema_version: 1", "schema_version: 2"), 1,
     "2 is not allowed; use one of: 1"),
    ("unknown driver type", GOOD.replace("falco:", "types: [modern_ebpf]\n    falco:"), 4,
     "field 'types': 'modern_ebpf' is not a driver type; use ebpf or kmod"),
    ("a type twice", GOOD.replace("falco:", "types: [kmod, kmod]\n    falco:"), 4,
     "field 'types': lists a driver type twice"),
    ("no type", GOOD.replace("falco:", "types: []\n    falco:"), 4,
     "field 'types': must list at least one driver type (ebpf or kmod)"),
    ("eBPF of a module-only version",
     GOOD.replace("6.0.1+driver", "10.2.0+driver").replace("falco:", "types: [ebpf, kmod]\n"
                                                            "    falco:"), 4,
     "field 'types': driver 10.2.0+driver has no eBPF probe source (libs removed driver/bpf "
     "in 10.0.0+driver): build kmod only"),
]


@pytest.mark.parametrize(("case", "text", "line", "message"), MISTAKES,
                         ids=[m[0] for m in MISTAKES])
def test_mistakes_name_the_line_key_and_what_is_allowed(tmp_path: Path, case: str, text: str,
                                                        line: int, message: str) -> None:
    path = tmp_path / "probes.yaml"
    path.write_text(text)
    with pytest.raises(ProblemsError) as info:
        load_config(path)
    rendered = [str(p) for p in info.value.problems]
    assert any(f"probes.yaml:{line}:" in r and message in r for r in rendered), rendered


def test_duplicates_and_double_claims(tmp_path: Path) -> None:
    path = tmp_path / "probes.yaml"
    path.write_text(GOOD.replace("targets:", """\
  - version: 6.0.1+driver
    source: {kind: libs-archive}
  - version: 7.0.0+driver
    falco: [0.36.2]
    source: {kind: libs-archive}
targets:
  - {name: debian, kernels: apt}"""))
    with pytest.raises(ProblemsError) as info:
        load_config(path)
    text = " | ".join(str(p) for p in info.value.problems)
    assert "'6.0.1+driver' is listed twice" in text
    assert "Falco 0.36.2 is claimed by both '6.0.1+driver' and '7.0.0+driver'" in text
    assert "'debian' is listed twice" in text


@pytest.mark.parametrize(("text", "message"), [
    ("driver_versions: [\n", "invalid YAML"),
    ("a: 1\na: 2\n", "duplicate key 'a'"),
    ("!!python/object/apply:os.system ['true']\n", "is not allowed (safe YAML only)"),
    ("a: !!python/name:os.system x\n", "could not determine a constructor"),
    ("- just\n- a list\n", "expected probes.yaml as a mapping"),
])
def test_malformed_and_unsafe_yaml(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "probes.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match="probes.yaml") as info:
        load_config(path)
    assert message in str(info.value) + " ".join(
        str(p) for p in getattr(info.value, "problems", []))


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_config(tmp_path / "nope.yaml")
    binary = tmp_path / "probes.yaml"
    binary.write_bytes(b"schema_version: 1\x00\n")
    with pytest.raises(InputError, match="NUL byte"):
        load_config(binary)


CONFIG_CASES = [
    ("full-width digits re-pointing a release", TWO_DRIVERS.replace("[0.35.0]", "[０.３６.２]"),
     "'０.３６.２' is not a Falco version like 0.36.2"),
    ("backoff that overflows a date", TWO_DRIVERS + "build: {backoff_hours: [1" + "0" * 30 + "]}\n",
     "is not a number of hours from 1 to 87600 (ten years)"),
    ("empty store path", TWO_DRIVERS + "store: {path: ''}\n",
     "field 'path': must not be empty (it would mean the working directory)"),
    ("bidi override in site_url", 'site_url: "https://probes.example/\\u202e"\n' + TWO_DRIVERS,
     "an http(s) URL in printable ASCII"),
    ("alias bomb", TWO_DRIVERS + alias_bomb(), "aliases expand to more than 100000 extra nodes"),
    ("duplicate key", TWO_DRIVERS + "targets: []\n", "duplicate key 'targets'"),
    ("a million jobs", TWO_DRIVERS + "build: {jobs: 1000000}\n", "must be from 1 to 256"),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in CONFIG_CASES],
                         ids=[c[0] for c in CONFIG_CASES])
def test_probes_yaml_refused_with_its_line(tmp_path: Path, text: str, message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "probes.yaml"
    config.write_text(text)
    code, _, err = cli(["find", "--config", str(config), "--catalog", str(empty_catalog(tmp_path)),
                        "--os-release", str(os_release(tmp_path)), *NODE], capsys)
    assert code == 2
    assert f"error: {config}" in err and message in err, err
