"""compile/driversrc.py: the three providers on real driver source, config generation, errors.

The real source is Debian's falcosecurity-scap-dkms (libs e5c53d64). From it
the tests lay out a libs checkout (driver/bpf, driver/driver_config.h.in,
API_VERSION ...), pack it like a GitHub source archive and serve it over
loopback HTTP and file://, so the libs-archive provider runs for real.

Then every source layout era, prepared and compiled from real files: bookworm's 2022
snapshot (the `parent` layout, whose probe.c includes "../driver_config.h") and sid's
0.23.2-6, whose driver/ is 9.1.0+driver's, shipped as a DKMS tree (the `flat` folder
cmake makes). From sid's tree the tests also lay out the upstream libs driver/ folder
that folder was made from (bpf sources, driver/*.h, driver_config.h.in, configure/*), so
our own cmake-like preparation is checked file for file against Debian's, and compiled.
The old `always +=` Makefiles are rebuilt from the 2022 tree. No upstream source is
committed: everything is made from the Debian packages.
"""

from __future__ import annotations

import functools
import io
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback import files, serving
from realprobe import (
    COMPILE_TIMEOUT,
    DKMS_DRIVER_VERSION,
    SID,
    apt_archive,
    compile_ok,
    debian_source,
    dkms_driver,
    headers,
    shared_cache,
    sid_as,
    sid_source,
    sysroot,
)

from builder.compile.driversrc import (
    LAYOUT_FLAT,
    LAYOUT_PARENT,
    PreparedSource,
    find_driver_dir,
    prepare_source,
    render_config,
    tree_digest,
)
from builder.compile.kbuild import compile_probe
from builder.compile.stage import _legacy_always_reason
from builder.core import limits
from builder.core.config import DriverSource, DriverVersion
from builder.core.errors import BuildError, ProbesError
from builder.core.records import HostFacts, Kernel
from builder.shared.elfcheck import check_probe

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


@pytest.mark.slow
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


@pytest.mark.slow
def test_libs_archive_is_cached(from_http: PreparedSource, http_base: str,
                                tmp_path: Path) -> None:
    cache = from_http.driver_dir.parent.parent.parent.parent.parent
    again = prepare_source(libs_driver(http_base + "/archive/{ref}.tar.gz"), cache)
    assert again == from_http
    ref_dir = from_http.driver_dir.parent.parent
    assert [p.name for p in ref_dir.iterdir() if not p.name.startswith("origin-")] == [
        from_http.digest]


@pytest.mark.slow
def test_libs_archive_from_file_url(served: Path, from_http: PreparedSource,
                                    tmp_path: Path) -> None:
    url = (served / "archive").as_uri() + "/{ref}.tar.gz"
    prepared = prepare_source(libs_driver(url), tmp_path)
    assert prepared.digest == from_http.digest
    assert prepared.origin.startswith("file://")


@pytest.mark.slow
@pytest.mark.parametrize("where", ["", "driver", "driver/bpf"],
                         ids=["checkout", "driver folder", "bpf folder"])
def test_directory_provider(checkout: Path, from_http: PreparedSource, tmp_path: Path,
                            where: str) -> None:
    prepared = prepare_source(libs_driver(str(checkout / where), kind="directory"), tmp_path)
    # same bytes, same digest, whatever the provider
    assert prepared.digest == from_http.digest
    assert (prepared.provider, prepared.config, prepared.commit) == (
        "directory", "generated", LIBS_COMMIT)


@pytest.mark.slow
def test_directory_relative_to_probes_yaml(checkout: Path, from_http: PreparedSource,
                                           tmp_path: Path) -> None:
    driver = libs_driver(checkout.name, kind="directory")
    assert prepare_source(driver, tmp_path, base_dir=checkout.parent).digest == from_http.digest


@pytest.mark.slow
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


@pytest.mark.slow
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
        commit_section = elf.get_section_by_name("build_commit")
        api_section = elf.get_section_by_name("api_version")
        assert commit_section is not None and api_section is not None
        commit = commit_section.data().rstrip(b"\0").decode()
        api = api_section.data()
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
    ("no driver", lambda root: root, "{root}: no Falco eBPF probe source (bpf/probe.c with "
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
@pytest.mark.slow
def test_render_config(template: str, rendered: str, tmp_path: Path) -> None:
    from builder.compile.driversrc import config_values

    values = config_values(tmp_path, "6.0.1+driver", "abc1234")
    assert render_config(template, values, "t") == rendered


@pytest.mark.slow
def test_find_driver_dir_in_a_deb_layout(tmp_path: Path) -> None:
    driver = _fake_driver(tmp_path / "usr" / "src" / "scap-1.0")
    assert find_driver_dir(tmp_path) == driver
    assert find_driver_dir(driver / "bpf") == driver


@pytest.mark.slow
def test_tree_digest_covers_names_and_bytes(tmp_path: Path) -> None:
    a = _fake_driver(tmp_path / "a")
    b = _fake_driver(tmp_path / "b")
    assert tree_digest(a) == tree_digest(b)
    (b / "bpf" / "probe.c").rename(b / "bpf" / "probe2.c")
    assert tree_digest(a) != tree_digest(b)
    (b / "bpf" / "probe2.c").rename(b / "bpf" / "probe.c")
    (b / "bpf" / "probe.c").write_bytes(io.BytesIO(b"/* probe! */\n").getvalue())
    assert tree_digest(a) != tree_digest(b)


@pytest.mark.slow
def test_unknown_ref_names_the_url(http_base: str, tmp_path: Path) -> None:
    template = http_base + "/archive/{ref}.tar.gz"
    with pytest.raises(ProbesError) as caught:
        prepare_source(libs_driver(template, ref="no-such-ref"), tmp_path)
    assert f"{http_base}/archive/no-such-ref.tar.gz" in caught.value.message
    assert not list(tmp_path.rglob("*.h"))  # nothing prepared


TRIXIE = DriverSource("debian-package", package="falcosecurity-scap-dkms", suite="trixie",
                      version="0.20.0-3")


# --- Debian's DKMS tree: the flat folder, shipped ------------------------------------

@pytest.mark.slow
def test_debian_sid_source_is_9_1_0_and_says_exactly_what_it_is() -> None:
    source = sid_source()
    assert (source.layout, source.config, source.api, source.schema, source.libs_version) == (
        LAYOUT_FLAT, "shipped", "8.0.4", "4.1.0", "0.23.2")
    assert source.description == ("debian falcosecurity-scap-dkms 0.23.2-6 from sid "
                                  "(libs 0.23.2, Debian patches), built as 9.1.0+driver")
    assert {p.name for p in (source.bpf_dir / "configure").iterdir()} >= {"0__SANITY",
                                                                          "RSS_STAT_ARRAY"}


@pytest.mark.slow
def test_a_source_of_another_api_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as caught:
        prepare_source(sid_as("9.1.0+driver", TRIXIE), tmp_path)
    assert "declares API 8.0.3 and schema 3.5.0, but driver version 9.1.0+driver is API " \
           "8.0.4, schema 4.1.0" in caught.value.message


# --- the upstream flat layout (7.2.0+), rebuilt from Debian's tree ---------------------

def upstream_layout(dkms_root: Path, dest: Path) -> Path:
    """The libs driver/ folder Debian's DKMS tree was made from, as cmake's input."""
    driver = dest / "driver"
    bpf, configure = driver / "bpf", driver / "bpf" / "configure"
    configure.mkdir(parents=True)
    top = {p.name for p in dkms_root.glob("*.h")}
    for path in (dkms_root / "bpf").iterdir():
        if path.is_file() and path.name != "driver_config.h":
            shutil.copyfile(path, (driver if path.name in top else bpf) / path.name)
    modules = sorted(p for p in (dkms_root / "bpf" / "configure").iterdir() if p.is_dir())
    for module in modules:
        (configure / module.name).mkdir()
        shutil.copyfile(module / "test.c", configure / module.name / "test.c")
    # any module but 0__SANITY, whose name the template also holds literally
    model = next(m for m in modules if m.name != "0__SANITY")
    shutil.copyfile(model / "Makefile", configure / "Makefile")
    shutil.copyfile(model / "build.sh", configure / "build.sh")
    rendered = (model / "Makefile.inc").read_text()
    (configure / "Makefile.inc.in").write_text(
        rendered.replace(model.name, "@CONFIGURE_MODULE@").replace("@@", "@@NEWLINE@@"))
    config = (dkms_root / "bpf" / "driver_config.h").read_text()
    for kind in ("API", "SCHEMA"):
        for part in ("MAJOR", "MINOR", "PATCH"):
            name = f"PPM_{kind}_CURRENT_VERSION_{part}"
            config = re.sub(rf"(#define {name}) \d+", rf"\1 ${{{name}}}", config)
    for name in ("DRIVER_VERSION", "DRIVER_NAME", "DRIVER_DEVICE_NAME"):
        config = re.sub(rf'(#define {name}) "[^"]*"', rf'\1 "${{{name}}}"', config)
    config = re.sub(r'(#define DRIVER_COMMIT) "[^"]*"', r'\1 "${GIT_COMMIT}"', config)
    (driver / "driver_config.h.in").write_text(config)
    (driver / "API_VERSION").write_text("8.0.4\n")
    (driver / "SCHEMA_VERSION").write_text("4.1.0\n")
    return driver


@functools.cache
def dkms_root() -> Path:
    """sid's /usr/src/scap-<version> tree, unpacked once (the prepared copy is bpf/ only)."""
    from builder.shared.apt import AptArchive
    from builder.shared.extract import extract
    from builder.shared.fetch import download

    apt = AptArchive(shared_cache() / "apt", suites=("sid",))
    if not apt.index_files():
        apt.update()
    package = apt.package(SID.package, SID.version)
    deb = download(package.url, shared_cache() / "downloads" / package.name,
                   limit=limits.DRIVER_SOURCE, sha256=package.sha256, size=package.size)
    dest = Path(tempfile.mkdtemp(prefix="dkms-"))
    extract(deb, dest)
    return next((dest / "usr" / "src").iterdir())


@pytest.mark.slow
def test_flat_layout_is_prepared_as_cmake_does(tmp_path: Path) -> None:
    driver = upstream_layout(dkms_root(), tmp_path / "libs")
    ours = prepare_source(DriverVersion("9.1.0+driver", "9.1.0+driver", (),
                                        DriverSource("directory", path=str(driver))),
                          tmp_path / "cache")
    assert (ours.layout, ours.config, ours.api, ours.schema) == (LAYOUT_FLAT, "generated",
                                                                 "8.0.4", "4.1.0")
    debian = sid_source().bpf_dir

    def files(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes()
                for p in root.rglob("*") if p.is_file()}

    made, shipped = files(ours.bpf_dir), files(debian)
    assert sorted(made) == sorted(shipped)  # the same folder, file for file
    assert {n for n in made if made[n] != shipped[n]} == {"driver_config.h"}
    config = made["driver_config.h"].decode()
    assert '#define DRIVER_VERSION "9.1.0+driver"' in config
    assert '#define DRIVER_NAME "falco"' in config


@pytest.mark.slow
def test_flat_layout_from_upstream_builds_for_debian_12s_6_12(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """9.1.0+driver, laid out as upstream's tree, on the newest Debian 12 kernel (6.12)."""
    driver = upstream_layout(dkms_root(), tmp_path / "libs")
    source = prepare_source(DriverVersion("9.1.0+driver", "9.1.0+driver", (),
                                          DriverSource("directory", path=str(driver))),
                            tmp_path / "cache")
    build_dir, uname_r = headers(tmp_path_factory.getbasetemp(), r"6\.12\.\d+\+deb12-amd64",
                                 ("bookworm", "bookworm-updates", "bookworm-security"), "amd64")
    result = compile_ok(build_dir, source, tmp_path / "o")
    assert result.probe is not None
    checked = check_probe(result.probe, kernel_release=uname_r, driver_version="9.1.0+driver")
    assert checked.ok, checked.reason
    assert "[configure-bpf] Build system is sane" in result.log


# --- the parent layout and its oldest Makefiles ----------------------------------------

@pytest.mark.slow
def test_parent_layout_is_the_2022_snapshot() -> None:
    source = debian_source()
    assert (source.layout, source.legacy_always) == (LAYOUT_PARENT, False)


@pytest.mark.slow
def test_always_plus_equals_makefile_cannot_build_for_5_11_and_says_why(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    tree = tmp_path / "driver"
    shutil.copytree(debian_source().driver_dir, tree, copy_function=shutil.copyfile)
    for path in [tree, *tree.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    makefile = tree / "bpf" / "Makefile"
    text = makefile.read_text()
    assert "always-y += probe.o" in text
    makefile.write_text(text.replace("always-y += probe.o", "always += probe.o"))
    driver = DriverVersion("2aa88dcf6243982697811df4c1b484bcbe9488a2",
                           "2aa88dcf6243982697811df4c1b484bcbe9488a2", (),
                           DriverSource("directory", path=str(tree)))
    (tree / "driver_config.h").unlink()
    (tree / "driver_config.h.in").write_text('#define DRIVER_VERSION "${DRIVER_VERSION}"\n')
    source = prepare_source(driver, tmp_path / "cache")
    assert source.legacy_always
    result = compile_probe(sysroot(tmp_path_factory.getbasetemp(), "a"), source, tmp_path / "o",
                           timeout=COMPILE_TIMEOUT)
    assert not result.ok and result.reason == "make succeeded but produced no probe.o"
    kernel = Kernel("debian", HostFacts("debian", "6.1.0-1-amd64", "#1", "x86_64"))
    why = _legacy_always_reason(kernel, source)
    assert why is not None and "kbuild ignores from Linux 5.11" in why
    old = Kernel("debian", HostFacts("debian", "5.10.0-1-amd64", "#1", "x86_64"))
    assert _legacy_always_reason(old, source) is None


# --- the kernel module's folder, in every era (small trees in the real files' shapes) ---------

MAKEFILE_OLD = """@PROBE_NAME@-y += main.o dynamic_params_table.o ppm_events.o
obj-m += @PROBE_NAME@.o
ccflags-y := @KBUILD_FLAGS@

KERNELDIR ?= /lib/modules/$(shell uname -r)/build
TOP := $(shell pwd)
all:
\t$(MAKE) -C $(KERNELDIR) M=$(TOP) modules
"""
CONFIG_OLD = """#pragma once
#define PROBE_VERSION "${PROBE_VERSION}"
#define PROBE_NAME "${PROBE_NAME}"
#define PROBE_DEVICE_NAME "${PROBE_DEVICE_NAME}"
"""
MAKEFILE_NEW = MAKEFILE_OLD.replace("@PROBE_NAME@", "@DRIVER_NAME@") + """
ifeq ($(FIRST_MAKEFILE_DIRNAME)/$(FIRST_MAKEFILE_FILENAME), scripts/Makefile.build)
MAKEFILE_INC_FILES := $(shell find $(MODULE_MAKEFILE_DIR)/configure -type f -name Makefile.inc)
include $(MAKEFILE_INC_FILES)
endif
"""
CONFIG_NEW = """#pragma once
#define PPM_API_CURRENT_VERSION_MAJOR ${PPM_API_CURRENT_VERSION_MAJOR}
#define PPM_API_CURRENT_VERSION_MINOR ${PPM_API_CURRENT_VERSION_MINOR}
#define PPM_API_CURRENT_VERSION_PATCH ${PPM_API_CURRENT_VERSION_PATCH}
#define PPM_SCHEMA_CURRENT_VERSION_MAJOR ${PPM_SCHEMA_CURRENT_VERSION_MAJOR}
#define PPM_SCHEMA_CURRENT_VERSION_MINOR ${PPM_SCHEMA_CURRENT_VERSION_MINOR}
#define PPM_SCHEMA_CURRENT_VERSION_PATCH ${PPM_SCHEMA_CURRENT_VERSION_PATCH}
#define DRIVER_VERSION "${DRIVER_VERSION}"
#define DRIVER_NAME "${DRIVER_NAME}"
#define DRIVER_DEVICE_NAME "${DRIVER_DEVICE_NAME}"
#define DRIVER_COMMIT "${GIT_COMMIT}"
"""
MAKEFILE_INC_IN = """HAS_@CONFIGURE_MODULE@ := $(shell env -i CC="$(CC)" PATH="$(PATH)" \
KERNELDIR="$(KERNELDIR)" sh $(MODULE_MAKEFILE_DIR)/build.sh ; echo $$?)
ifeq ($(HAS_@CONFIGURE_MODULE@),0)
ccflags-y += -DHAS_@CONFIGURE_MODULE@
else
HAS_@CONFIGURE_MODULE@_OUT := $(subst @@NEWLINE@@,$(newline),x)
endif
"""


def libs_tree(folder: Path, era: str, api: tuple[str, str] = ("8.0.4", "4.1.0")) -> Path:
    """A libs driver/ folder of an era: `old` (Falco 0.26-0.31.0: PROBE_NAME), `new`
    (DRIVER_NAME, API versions), `configure` (7.1.0+: configure/), `10` (no bpf/)."""
    folder.mkdir(parents=True)
    for name in ("main.c", "ppm_events.c", "ppm.h", "ppm_events_public.h", "event_stats.h"):
        (folder / name).write_text(f"/* {name} */\n")
    (folder / "CMakeLists.txt").write_text("# cmake\n")
    (folder / "dkms.conf.in").write_text("PACKAGE_NAME=@DRIVER_NAME@\n")
    old = era == "old"
    (folder / "Makefile.in").write_text(MAKEFILE_OLD if old else MAKEFILE_NEW)
    (folder / "driver_config.h.in").write_text(CONFIG_OLD if old else CONFIG_NEW)
    if not old:
        (folder / "API_VERSION").write_text(api[0] + "\n")
        (folder / "SCHEMA_VERSION").write_text(api[1] + "\n")
    if era in ("configure", "10"):
        configure = folder / "configure"
        for module in ("0__SANITY", "ACCESS_OK_2"):
            (configure / module).mkdir(parents=True)
            (configure / module / "test.c").write_text(f"/* {module} */\n")
        (configure / "Makefile").write_text("obj-m += testmod.o\n")
        (configure / "build.sh").write_text("make -C ${SCRIPT_DIR}\n")
        (configure / "Makefile.inc.in").write_text(MAKEFILE_INC_IN)
    if era != "10":
        (folder / "bpf").mkdir()
        (folder / "bpf" / "probe.c").write_text('#include "../driver_config.h"\n')
        (folder / "bpf" / "Makefile").write_text("always += probe.o\n")
    return folder


def dkms_tree(folder: Path, makefile: str = "scap-y += main.o ppm_events.o\n"
                                               "obj-m += scap.o\nccflags-y := \n",
              names: str = 'DRIVER_NAME "scap"\n#define DRIVER_DEVICE_NAME "scap"') -> Path:
    """Debian's /usr/src/scap-0.23.2: the folder cmake made, named scap, with bpf/."""
    folder.mkdir(parents=True)
    for name in ("main.c", "ppm_events.c", "ppm.h", "ppm_events_public.h"):
        (folder / name).write_text(f"/* {name} */\n")
    (folder / "Makefile").write_text(makefile)
    (folder / "dkms.conf").write_text('PACKAGE_NAME="scap"\n')
    (folder / "driver_config.h").write_text(
        "#pragma once\n#define PPM_API_CURRENT_VERSION_MAJOR 8\n"
        "#define PPM_API_CURRENT_VERSION_MINOR 0\n#define PPM_API_CURRENT_VERSION_PATCH 4\n"
        "#define PPM_SCHEMA_CURRENT_VERSION_MAJOR 4\n"
        "#define PPM_SCHEMA_CURRENT_VERSION_MINOR 1\n"
        "#define PPM_SCHEMA_CURRENT_VERSION_PATCH 0\n"
        f'#define DRIVER_VERSION "0.23.2"\n#define {names}\n#define DRIVER_COMMIT ""\n')
    (folder / "configure" / "ACCESS_OK_2").mkdir(parents=True)
    (folder / "configure" / "ACCESS_OK_2" / "Makefile.inc").write_text("HAS_ACCESS_OK_2 := 0\n")
    (folder / "bpf").mkdir()
    (folder / "bpf" / "probe.c").write_text('#include "driver_config.h"\n')
    return folder


def as_module(folder: Path, version: str, tmp_path: Path) -> PreparedSource:
    driver = DriverVersion(version, version, (), DriverSource("directory", path=str(folder)))
    return prepare_source(driver, tmp_path / "cache", driver_type="kmod")


def files_of(prepared: PreparedSource) -> list[str]:
    return sorted(p.relative_to(prepared.driver_dir).as_posix()
                  for p in prepared.driver_dir.rglob("*") if p.is_file())


def test_the_oldest_era_probe_name_becomes_falco(tmp_path: Path) -> None:
    commit = "2aa88dcf6243982697811df4c1b484bcbe9488a2"
    prepared = as_module(libs_tree(tmp_path / "driver", "old"), commit, tmp_path)
    assert (prepared.layout, prepared.driver_type, prepared.config) == ("kmod", "kmod",
                                                                       "generated")
    assert prepared.bpf_dir == prepared.driver_dir        # make runs in the folder itself
    assert files_of(prepared) == ["Makefile", "driver_config.h", "event_stats.h", "main.c",
                                  "ppm.h", "ppm_events.c", "ppm_events_public.h"]
    makefile = (prepared.driver_dir / "Makefile").read_text()
    assert makefile.startswith("falco-y += main.o dynamic_params_table.o ppm_events.o\n"
                               "obj-m += falco.o\nccflags-y := \n")
    config = (prepared.driver_dir / "driver_config.h").read_text()
    assert f'#define PROBE_VERSION "{commit}"' in config
    assert '#define PROBE_NAME "falco"' in config and '#define PROBE_DEVICE_NAME "falco"' in config
    assert (prepared.api, prepared.schema, prepared.legacy_always) == ("", "", False)


def test_the_driver_name_era_renders_its_api_and_commit(tmp_path: Path) -> None:
    prepared = as_module(libs_tree(tmp_path / "driver", "new", ("8.0.1", "2.14.0")),
                         "7.0.0+driver", tmp_path)
    config = (prepared.driver_dir / "driver_config.h").read_text()
    for line in ("#define PPM_API_CURRENT_VERSION_MAJOR 8", '#define DRIVER_NAME "falco"',
                 '#define DRIVER_DEVICE_NAME "falco"', '#define DRIVER_VERSION "7.0.0+driver"',
                 '#define DRIVER_COMMIT ""'):
        assert line in config
    assert (prepared.api, prepared.schema) == ("8.0.1", "2.14.0")
    assert "falco-y += " in (prepared.driver_dir / "Makefile").read_text()


@pytest.mark.parametrize("era", ["configure", "10"])
def test_the_configure_era_copies_each_check_with_its_makefile_rendered(
        tmp_path: Path, era: str) -> None:
    version = "9.1.0+driver" if era == "configure" else "10.2.0+driver"
    api = ("8.0.4", "4.1.0") if era == "configure" else ("10.1.0", "4.5.1")
    prepared = as_module(libs_tree(tmp_path / "driver", era, api), version, tmp_path)
    assert [f for f in files_of(prepared) if f.startswith("configure/")] == [
        f"configure/{m}/{f}" for m in ("0__SANITY", "ACCESS_OK_2")
        for f in ("Makefile", "Makefile.inc", "build.sh", "test.c")]
    inc = (prepared.driver_dir / "configure" / "ACCESS_OK_2" / "Makefile.inc").read_text()
    assert "HAS_ACCESS_OK_2 := $(shell env -i" in inc and "ccflags-y += -DHAS_ACCESS_OK_2" in inc
    assert "@" + "@NEWLINE@" + "@" not in inc and "$(subst @@,$(newline),x)" in inc
    assert not (prepared.driver_dir / "bpf").exists()


def test_a_10_x_source_has_no_ebpf_probe_to_prepare(tmp_path: Path) -> None:
    folder = libs_tree(tmp_path / "driver", "10", ("10.1.0", "4.5.1"))
    driver = DriverVersion("10.2.0+driver", "10.2.0+driver", (),
                           DriverSource("directory", path=str(folder)))
    with pytest.raises(BuildError, match=r"no Falco eBPF probe source \(bpf/probe.c"):
        prepare_source(driver, tmp_path / "cache")


def test_a_debian_dkms_tree_is_renamed_falco(tmp_path: Path) -> None:
    prepared = as_module(dkms_tree(tmp_path / "scap-0.23.2"), "0.23.2", tmp_path)
    assert prepared.config == "shipped"
    makefile = (prepared.driver_dir / "Makefile").read_text()
    assert makefile == "falco-y += main.o ppm_events.o\nobj-m += falco.o\nccflags-y := \n"
    config = (prepared.driver_dir / "driver_config.h").read_text()
    assert '#define DRIVER_NAME "falco"' in config
    assert '#define DRIVER_DEVICE_NAME "falco"' in config and '"scap"' not in config
    assert files_of(prepared) == ["Makefile", "configure/ACCESS_OK_2/Makefile.inc",
                                  "driver_config.h", "main.c", "ppm.h", "ppm_events.c",
                                  "ppm_events_public.h"]     # no bpf/, no dkms.conf
    assert (prepared.api, prepared.schema, prepared.libs_version) == ("8.0.4", "4.1.0",
                                                                      "0.23.2")


@pytest.mark.parametrize(("make", "message"), [
    (lambda root: dkms_tree(root, makefile="scap-y += main.o\nobj-m += scap.o other.o\n"),
     "its Makefile builds falco.ko, other.ko, not falco.ko"),
    (lambda root: dkms_tree(root, makefile="obj-m += other.o\nobj-m += scap.o\n"),
     "its Makefile builds other.ko, falco.ko, not falco.ko"),
    (lambda root: dkms_tree(root, names='DRIVER_NAME "scap"'),
     "driver_config.h defines no DRIVER_DEVICE_NAME"),
    (lambda root: root, "no Falco kernel module source (main.c with Makefile.in and "
                        "driver_config.h.in, or a DKMS tree)"),
], ids=["two objects on a line", "two modules", "no device name", "nothing"])
def test_a_tree_that_would_not_make_falco_ko_is_refused(tmp_path: Path, make: object,
                                                        message: str) -> None:
    folder = make(tmp_path / "scap-0.23.2")  # type: ignore[operator]
    folder.mkdir(parents=True, exist_ok=True)
    with pytest.raises(BuildError, match=re.escape(message)):
        as_module(folder, "0.23.2", tmp_path)


def test_each_type_has_its_own_cached_tree(tmp_path: Path) -> None:
    folder = libs_tree(tmp_path / "driver", "configure")
    driver = DriverVersion("9.1.0+driver", "9.1.0+driver", (),
                           DriverSource("directory", path=str(folder)))
    probe = prepare_source(driver, tmp_path / "cache")
    module = prepare_source(driver, tmp_path / "cache", driver_type="kmod")
    again = prepare_source(driver, tmp_path / "cache", driver_type="kmod")
    assert (probe.driver_type, probe.layout) == ("ebpf", "parent")
    assert module.digest != probe.digest and again.digest == module.digest
    assert module.driver_dir == again.driver_dir and (module.driver_dir / "Makefile").is_file()
