"""builder.compile.driversrc: the three providers on real driver source, config generation, errors.

The real source is Debian's falcosecurity-scap-dkms (libs e5c53d64). From it
the tests lay out a libs checkout (driver/bpf, driver/driver_config.h.in,
API_VERSION ...), pack it like a GitHub source archive and serve it over
loopback HTTP and file://, so the libs-archive provider runs for real.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback import files, serving
from realprobe import (
    DKMS_DRIVER_VERSION,
    apt_archive,
    debian_source,
    dkms_driver,
    shared_cache,
    sysroot,
)

from builder.compile.driversrc import (
    PreparedSource,
    find_driver_dir,
    prepare_source,
    render_config,
    tree_digest,
)
from builder.compile.kbuild import compile_probe
from builder.core.config import DriverSource, DriverVersion
from builder.core.errors import BuildError, ProbesError
from builder.shared.elfcheck import check_probe

pytestmark = pytest.mark.slow

# Made up for the test archive: libs e5c53d64 padded to a full 40-hex commit id.
LIBS_COMMIT = "e5c53d64" + "0" * 32
TEMPLATE = """\
#pragma once

/* taken from driver/API_VERSION */
#define PPM_API_CURRENT_VERSION_MAJOR ${PPM_API_CURRENT_VERSION_MAJOR}
#define PPM_API_CURRENT_VERSION_MINOR ${PPM_API_CURRENT_VERSION_MINOR}
#define PPM_API_CURRENT_VERSION_PATCH ${PPM_API_CURRENT_VERSION_PATCH}

/* taken from driver/SCHEMA_VERSION */
#define PPM_SCHEMA_CURRENT_VERSION_MAJOR ${PPM_SCHEMA_CURRENT_VERSION_MAJOR}
#define PPM_SCHEMA_CURRENT_VERSION_MINOR ${PPM_SCHEMA_CURRENT_VERSION_MINOR}
#define PPM_SCHEMA_CURRENT_VERSION_PATCH ${PPM_SCHEMA_CURRENT_VERSION_PATCH}

#include "ppm_api_version.h"

#define DRIVER_VERSION "${DRIVER_VERSION}"

#define DRIVER_NAME "${DRIVER_NAME}"

#define DRIVER_DEVICE_NAME "${DRIVER_DEVICE_NAME}"

#define DRIVER_COMMIT "${GIT_COMMIT}"

#ifndef KBUILD_MODNAME
#define KBUILD_MODNAME DRIVER_NAME
#endif
"""
RENDERED = (TEMPLATE.replace("${DRIVER_VERSION}", DKMS_DRIVER_VERSION)
            .replace("${DRIVER_NAME}", "falco").replace("${DRIVER_DEVICE_NAME}", "falco")
            .replace("${GIT_COMMIT}", LIBS_COMMIT)
            .replace("${PPM_API_CURRENT_VERSION_MAJOR}", "1")
            .replace("${PPM_API_CURRENT_VERSION_MINOR}", "2")
            .replace("${PPM_API_CURRENT_VERSION_PATCH}", "3")
            .replace("${PPM_SCHEMA_CURRENT_VERSION_MAJOR}", "2")
            .replace("${PPM_SCHEMA_CURRENT_VERSION_MINOR}", "0")
            .replace("${PPM_SCHEMA_CURRENT_VERSION_PATCH}", "1"))


def libs_driver(url_or_path: str, kind: str = "libs-archive",
                ref: str = LIBS_COMMIT) -> DriverVersion:
    source = (DriverSource(kind, url=url_or_path) if kind == "libs-archive"
              else DriverSource(kind, path=url_or_path))
    return DriverVersion(DKMS_DRIVER_VERSION, ref, (), source)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Debian driver source laid out like a libs checkout at LIBS_COMMIT."""
    shipped = debian_source().driver_dir
    root = tmp_path_factory.mktemp("checkout") / f"libs-{LIBS_COMMIT}"
    driver = root / "driver"
    shutil.copytree(shipped, driver, copy_function=shutil.copyfile)
    for folder in [driver, *driver.rglob("*")]:
        folder.chmod(0o755 if folder.is_dir() else 0o644)
    (driver / "driver_config.h").unlink()
    (driver / "driver_config.h.in").write_text(TEMPLATE)
    (driver / "API_VERSION").write_text("1.2.3\n")
    (driver / "SCHEMA_VERSION").write_text("2.0.1\n")
    (driver / "modern_bpf" / "programs").mkdir(parents=True)
    (driver / "modern_bpf" / "programs" / "unused.bpf.c").write_text("/* not ours */\n")
    (root / "userspace" / "libscap").mkdir(parents=True)
    (root / "userspace" / "libscap" / "scap.c").write_text("/* not ours */\n")
    (root / "README.md").write_text("# libs\n")
    return root


@pytest.fixture(scope="module")
def served(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """<folder>/archive/<commit>.tar.gz, a GitHub-style archive, served on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("served")
    (folder / "archive").mkdir()
    archive = folder / "archive" / f"{LIBS_COMMIT}.tar.gz"
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": LIBS_COMMIT}) as tar:
        tar.add(checkout, arcname=checkout.name)
    yield folder


@pytest.fixture(scope="module")
def http_base(served: Path) -> Iterator[str]:
    with serving(files(served)) as url:
        yield url


@pytest.fixture(scope="module")
def from_http(http_base: str, tmp_path_factory: pytest.TempPathFactory) -> PreparedSource:
    cache = tmp_path_factory.mktemp("cache-http")
    return prepare_source(libs_driver(http_base + "/archive/{ref}.tar.gz"), cache)


def test_libs_archive_over_http(from_http: PreparedSource, http_base: str) -> None:
    prepared = from_http
    assert (prepared.provider, prepared.ref, prepared.commit, prepared.config) == (
        "libs-archive", LIBS_COMMIT, LIBS_COMMIT, "generated")
    assert prepared.origin == f"{http_base}/archive/{LIBS_COMMIT}.tar.gz"
    assert prepared.driver_version == DKMS_DRIVER_VERSION
    assert (prepared.driver_dir / "driver_config.h").read_text() == RENDERED
    assert prepared.bpf_dir == prepared.driver_dir / "bpf"
    assert (prepared.bpf_dir / "probe.c").is_file()
    assert prepared.digest == tree_digest(prepared.driver_dir)
    assert prepared.driver_dir.parent.name == prepared.digest
    # only what the bpf build needs: no modern_bpf, nothing from outside driver/
    assert not (prepared.driver_dir / "modern_bpf").exists()
    assert sorted(p.name for p in prepared.driver_dir.iterdir() if p.is_dir()) == ["bpf"]
    # read-only, so that a build cannot change what the digest describes
    assert all(not p.stat().st_mode & 0o222 for p in prepared.driver_dir.rglob("*"))


def test_libs_archive_is_cached(from_http: PreparedSource, http_base: str,
                                tmp_path: Path) -> None:
    cache = from_http.driver_dir.parent.parent.parent.parent.parent
    again = prepare_source(libs_driver(http_base + "/archive/{ref}.tar.gz"), cache)
    assert again == from_http
    ref_dir = from_http.driver_dir.parent.parent
    assert [p.name for p in ref_dir.iterdir() if not p.name.startswith("origin-")] == [
        from_http.digest]


def test_libs_archive_from_file_url(served: Path, from_http: PreparedSource,
                                    tmp_path: Path) -> None:
    url = (served / "archive").as_uri() + "/{ref}.tar.gz"
    prepared = prepare_source(libs_driver(url), tmp_path)
    assert prepared.digest == from_http.digest
    assert prepared.origin.startswith("file://")


@pytest.mark.parametrize("where", ["", "driver", "driver/bpf"],
                         ids=["checkout", "driver folder", "bpf folder"])
def test_directory_provider(checkout: Path, from_http: PreparedSource, tmp_path: Path,
                            where: str) -> None:
    prepared = prepare_source(libs_driver(str(checkout / where), kind="directory"), tmp_path)
    # same bytes, same digest, whatever the provider
    assert prepared.digest == from_http.digest
    assert (prepared.provider, prepared.config, prepared.commit) == (
        "directory", "generated", LIBS_COMMIT)


def test_directory_relative_to_probes_yaml(checkout: Path, from_http: PreparedSource,
                                           tmp_path: Path) -> None:
    driver = libs_driver(checkout.name, kind="directory")
    assert prepare_source(driver, tmp_path, base_dir=checkout.parent).digest == from_http.digest


def test_debian_package_provider() -> None:
    prepared = debian_source()
    assert (prepared.provider, prepared.ref, prepared.config, prepared.commit) == (
        "debian-package", "e5c53d64", "shipped", "e5c53d64")
    assert prepared.origin.startswith(f"falcosecurity-scap-dkms_{DKMS_DRIVER_VERSION}-")
    assert {"probe.c", "Makefile", "maps.h", "fillers.h"} <= {
        p.name for p in prepared.bpf_dir.iterdir()}
    assert (prepared.driver_dir / "ppm_events_public.h").is_file()
    assert prepared.digest == tree_digest(prepared.driver_dir)
    again = prepare_source(dkms_driver(), shared_cache() / "driversrc", apt=apt_archive())
    assert again == prepared


def test_generated_config_compiles(from_http: PreparedSource,
                                   tmp_path_factory: pytest.TempPathFactory,
                                   tmp_path: Path) -> None:
    """The libs-archive tree (generated driver_config.h) builds a probe that says so."""
    build_dir = sysroot(tmp_path_factory.getbasetemp(), "a")
    result = compile_probe(build_dir, from_http, tmp_path, timeout=300)
    assert result.ok, result.reason + "\n" + result.log[-3000:]
    assert result.probe is not None
    checked = check_probe(result.probe, driver_version=DKMS_DRIVER_VERSION)
    assert checked.ok, checked.reason
    from elftools.elf.elffile import ELFFile
    with result.probe.open("rb") as stream:
        elf = ELFFile(stream)
        commit = elf.get_section_by_name("build_commit").data().rstrip(b"\0").decode()
        api = elf.get_section_by_name("api_version").data()
    assert commit == LIBS_COMMIT
    # ppm_api_version.h packs major << 44 | minor << 24 | patch
    assert int.from_bytes(api, "little") == (1 << 44) | (2 << 24) | 3


# --- errors: a small fake driver tree is enough -------------------------------

def _fake_driver(folder: Path, *, config: str | None = None,
                 template: str | None = "#define DRIVER_VERSION \"${DRIVER_VERSION}\"\n",
                 probe_c: str = '#include "../driver_config.h"\n') -> Path:
    (folder / "bpf").mkdir(parents=True)
    (folder / "bpf" / "probe.c").write_text(probe_c)
    (folder / "bpf" / "Makefile").write_text("always-y += probe.o\n")
    if config is not None:
        (folder / "driver_config.h").write_text(config)
    if template is not None:
        (folder / "driver_config.h.in").write_text(template)
    return folder


ERROR_CASES = [
    ("missing folder", lambda root: root / "nope", "source folder {root}/nope does not exist"),
    ("no driver", lambda root: root, "{root}: no Falco driver source (bpf/probe.c with "
     "bpf/Makefile)"),
    ("two drivers", lambda root: (_fake_driver(root / "a" / "driver"),
                                  _fake_driver(root / "b" / "driver"), root)[-1],
     "{root}: several driver folders: a/driver, b/driver"),
    ("no config", lambda root: _fake_driver(root / "driver", template=None),
     "{root}/driver: neither driver_config.h nor driver_config.h.in in the driver folder"),
    ("unknown variable", lambda root: _fake_driver(root / "driver", template="${NEW_THING}"),
     "{root}/driver: driver_config.h.in: no value for template variable(s) NEW_THING"),
    ("missing API_VERSION", lambda root: _fake_driver(
        root / "driver", template="#define X ${PPM_API_CURRENT_VERSION_MAJOR}\n"),
     "{root}/driver: driver_config.h.in: no value for template variable(s) "
     "PPM_API_CURRENT_VERSION_MAJOR"),
    ("unknown layout", lambda root: _fake_driver(root / "driver", probe_c="/* probe */\n"),
     "{root}/driver: bpf/probe.c includes no driver_config.h; not a Falco driver source "
     "layout falco-probes knows"),
    ("shipped config of another version", lambda root: _fake_driver(
        root / "driver", template=None, config='#define DRIVER_VERSION "1.2.3"\n'),
     "{root}/driver: driver_config.h is for driver version '1.2.3', probes.yaml says "
     f"'{DKMS_DRIVER_VERSION}'"),
]


@pytest.mark.parametrize(("case", "make", "message"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_directory_errors(tmp_path: Path, case: str, make: object, message: str) -> None:
    root = tmp_path / "src"
    root.mkdir()
    folder = make(root)  # type: ignore[operator]
    with pytest.raises(BuildError) as caught:
        prepare_source(libs_driver(str(folder), kind="directory"), tmp_path / "cache")
    assert message.format(root=root) in caught.value.message
    assert caught.value.hint
    # nothing half-made is left in the cache
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_a_source_must_declare_its_driver_versions_api(tmp_path: Path) -> None:
    folder = _fake_driver(tmp_path / "src" / "driver", template=(
        "#define PPM_API_CURRENT_VERSION_MAJOR 1\n#define PPM_API_CURRENT_VERSION_MINOR 0\n"
        "#define PPM_API_CURRENT_VERSION_PATCH 0\n#define PPM_SCHEMA_CURRENT_VERSION_MAJOR 1\n"
        "#define PPM_SCHEMA_CURRENT_VERSION_MINOR 0\n#define PPM_SCHEMA_CURRENT_VERSION_PATCH 0\n"
        '#define DRIVER_VERSION "${DRIVER_VERSION}"\n'))
    driver = DriverVersion("9.1.0+driver", "9.1.0+driver", (),
                           DriverSource("directory", path=str(folder)))
    with pytest.raises(BuildError) as caught:
        prepare_source(driver, tmp_path / "cache")
    assert caught.value.message.endswith(
        "declares API 1.0.0 and schema 1.0.0, but driver version 9.1.0+driver is API 8.0.4, "
        "schema 4.1.0: it would not be 9.1.0+driver")


def test_url_template_needs_ref(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"has no \{ref\} placeholder"):
        prepare_source(libs_driver("http://127.0.0.1:9/libs.tar.gz"), tmp_path)


@pytest.mark.parametrize(("template", "rendered"), [
    ('#define DRIVER_NAME "${DRIVER_NAME}"', '#define DRIVER_NAME "falco"'),
    ('#define PROBE_NAME "@PROBE_NAME@"', '#define PROBE_NAME "falco"'),
    ('#define PROBE_VERSION "${PROBE_VERSION}"', '#define PROBE_VERSION "6.0.1+driver"'),
    ('#define PROBE_COMMIT "${GIT_COMMIT}"', '#define PROBE_COMMIT "abc1234"'),
    ("/* no variables */", "/* no variables */"),
])
def test_render_config(template: str, rendered: str, tmp_path: Path) -> None:
    from builder.compile.driversrc import config_values

    values = config_values(tmp_path, "6.0.1+driver", "abc1234")
    assert render_config(template, values, "t") == rendered


def test_find_driver_dir_in_a_deb_layout(tmp_path: Path) -> None:
    driver = _fake_driver(tmp_path / "usr" / "src" / "scap-1.0")
    assert find_driver_dir(tmp_path) == driver
    assert find_driver_dir(driver / "bpf") == driver


def test_tree_digest_covers_names_and_bytes(tmp_path: Path) -> None:
    a = _fake_driver(tmp_path / "a")
    b = _fake_driver(tmp_path / "b")
    assert tree_digest(a) == tree_digest(b)
    (b / "bpf" / "probe.c").rename(b / "bpf" / "probe2.c")
    assert tree_digest(a) != tree_digest(b)
    (b / "bpf" / "probe2.c").rename(b / "bpf" / "probe.c")
    (b / "bpf" / "probe.c").write_bytes(io.BytesIO(b"/* probe! */\n").getvalue())
    assert tree_digest(a) != tree_digest(b)


def test_unknown_ref_names_the_url(http_base: str, tmp_path: Path) -> None:
    template = http_base + "/archive/{ref}.tar.gz"
    with pytest.raises(ProbesError) as caught:
        prepare_source(libs_driver(template, ref="no-such-ref"), tmp_path)
    assert f"{http_base}/archive/no-such-ref.tar.gz" in caught.value.message
    assert not list(tmp_path.rglob("*.h"))  # nothing prepared
