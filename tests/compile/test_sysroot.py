"""compile/sysroot.py: per-kernel sysroots from real Debian packages and a real
rpmbuild-made RPM."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import archives as a
import pytest
from realkernel import cache_dir, debian_headers_or_skip

from builder.compile.sysroot import MARKER, Sysroot, prepare_sysroot
from builder.core.errors import InputError

Debs = tuple[str, str, list[Path]]


@pytest.fixture(scope="module")
def debs() -> Debs:
    return debian_headers_or_skip(cache_dir())


@pytest.fixture(scope="module")
def debian_sysroot(debs: Debs, tmp_path_factory: pytest.TempPathFactory) -> Sysroot:
    dest = tmp_path_factory.mktemp("sysroots") / debs[0]
    return prepare_sysroot(debs[2], dest)


def common_name(debs: Debs) -> str:
    """linux-headers-<abi>-common, from the -common package's file name."""
    return debs[2][1].name.split("_")[0]


@pytest.mark.slow
def test_real_debian_sysroot(debs: Debs, debian_sysroot: Sysroot) -> None:
    uname_r = debs[0]
    root = debian_sysroot.root
    build = debian_sysroot.build_dir(uname_r)
    assert build == root / "usr/src" / f"linux-headers-{uname_r}"
    for part in ("Makefile", ".config", "Module.symvers", "include/generated/autoconf.h",
                 "scripts/Makefile.build"):
        assert (build / part).is_file(), part
    scripts = (build / "scripts").resolve()
    assert scripts.is_relative_to(root.resolve()) and scripts.is_dir()
    assert scripts == (root / "usr/lib/linux-kbuild-6.1/scripts").resolve() or \
        scripts.parent.name.startswith("linux-kbuild-")
    # Debian 12's packages link lib/modules/<r>/build, Debian 13's usr/lib/modules/<r>/build
    link = next(root / modules / uname_r / "build" for modules in ("lib/modules",
                                                                    "usr/lib/modules")
                if (root / modules / uname_r / "build").is_symlink())
    assert (link.parent / os.readlink(link)).resolve() == build.resolve()
    # Debian's wrapper Makefile included -common by absolute path; now it is relative
    assert (build / "Makefile").read_text() == f"include ../{common_name(debs)}/Makefile\n"
    assert debian_sysroot.fixed_makefiles == (f"usr/src/linux-headers-{uname_r}/Makefile",)
    assert [r.rewritten_links for r in debian_sysroot.reports] == [2, 0, 0]
    assert debian_sysroot.extract_seconds > 0


@pytest.mark.slow
def test_real_debian_build_dir_works_with_make(debs: Debs, debian_sysroot: Sysroot) -> None:
    """kbuild reads the whole Makefile chain (wrapper, -common, kbuild scripts)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    build = debian_sysroot.build_dir(debs[0])
    proc = subprocess.run(["make", "-s", "-C", str(build), "kernelversion"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == debs[1].split("-")[0]  # 6.1.x, the upstream version


@pytest.mark.slow
def test_same_packages_again_is_a_cache_hit(debs: Debs, debian_sysroot: Sysroot) -> None:
    marker = (debian_sysroot.root / MARKER).read_bytes()
    started = time.perf_counter()
    again = prepare_sysroot(debs[2], debian_sysroot.root)
    assert again.cached and again.reports == () and again.extract_seconds == 0
    assert again.fixed_makefiles == debian_sysroot.fixed_makefiles
    assert (debian_sysroot.root / MARKER).read_bytes() == marker
    assert time.perf_counter() - started < 5  # hashing 14 MB, not extracting 80 MB
    assert again.build_dir(debs[0]) == debian_sysroot.build_dir(debs[0])


@pytest.mark.slow
@pytest.mark.parametrize(("left_out", "lacks"), [
    (1, "/usr/src/{common}/Makefile (included by its Makefile)"),
    (2, "scripts/Makefile.build"),
])
def test_missing_debian_package_is_named(debs: Debs, tmp_path: Path, left_out: int,
                                         lacks: str) -> None:
    uname_r, _, packages = debs
    given = [p for i, p in enumerate(packages) if i != left_out]
    sysroot = prepare_sysroot(given, tmp_path / "root")
    with pytest.raises(InputError) as refused:
        sysroot.build_dir(uname_r)
    assert refused.value.message == (
        f"no kernel build directory for {uname_r} in {given[0].name}, {given[1].name} "
        f"(usr/src/linux-headers-{uname_r} lacks {lacks.format(common=common_name(debs))})")
    assert "linux-kbuild" in (refused.value.hint or "")


@pytest.mark.parametrize("payload", ["w9.gzdio", "w6.xzdio", "w19.zstdio"])
@pytest.mark.slow
def test_real_rpm_sysroot(debs: Debs, debian_sysroot: Sysroot, tmp_path: Path,
                          payload: str) -> None:
    """A kernel-devel-like RPM made by rpmbuild from real header files."""
    a.require_rpmbuild()
    version = "9.9.9-1.test.x86_64"
    debian_build = debian_sysroot.build_dir(debs[0])
    common = debian_sysroot.root / "usr/src" / common_name(debs)
    kernel = tmp_path / "tree" / "usr/src/kernels" / version
    picks = {"Makefile": common / "Makefile", ".config": debian_build / ".config",
             "include/generated/autoconf.h": debian_build / "include/generated/autoconf.h",
             "include/linux/kconfig.h": common / "include/linux/kconfig.h",
             "include/linux/types.h": common / "include/linux/types.h",
             "scripts/Makefile.build": debian_build / "scripts/Makefile.build"}
    for name, source in picks.items():
        (kernel / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, kernel / name)
    built = a.rpmbuild(tmp_path / "tree", tmp_path, name="kernel-devel", version="9.9.9",
                       files=[f"/usr/src/kernels/{version}", f"/lib/modules/{version}/build"],
                       symlinks={f"/lib/modules/{version}/build": f"/usr/src/kernels/{version}"},
                       payload=payload)
    sysroot = prepare_sysroot([built], tmp_path / "sysroot")
    build = sysroot.build_dir(version)
    assert build == tmp_path / "sysroot/usr/src/kernels" / version
    assert os.readlink(tmp_path / "sysroot/lib/modules" / version / "build") == \
        f"../../../usr/src/kernels/{version}"
    for name, source in picks.items():
        assert (build / name).read_bytes() == source.read_bytes(), name
    (report,) = sysroot.reports
    assert (report.kind, report.files, report.rewritten_links) == ("rpm", len(picks), 1)


# --- small synthetic packages: atomicity, rebuilds, refusals -------------------------

def tarball(tmp_path: Path, name: str, entries: list[a.Entry]) -> Path:
    path = tmp_path / name
    path.write_bytes(a.tar(entries, "gzip"))
    return path


def kernel_tree(version: str) -> list[a.Entry]:
    base = f"./usr/src/kernels/{version}"
    return [a.file(f"{base}/Makefile", b"all:\n"), a.file(f"{base}/.config", b"CONFIG_X=y\n"),
            a.file(f"{base}/scripts/Makefile.build", b"# kbuild\n"),
            a.symlink(f"./lib/modules/{version}/build", f"/usr/src/kernels/{version}")]


def test_other_packages_rebuild_the_sysroot(tmp_path: Path) -> None:
    dest = tmp_path / "kernels" / "k"
    one = tarball(tmp_path, "one.tgz", kernel_tree("1.0"))
    two = tarball(tmp_path, "two.tgz", kernel_tree("2.0"))
    first = prepare_sysroot([one], dest)
    assert first.build_dir("1.0") == dest / "usr/src/kernels/1.0" and not first.cached
    second = prepare_sysroot([two], dest)
    assert not second.cached and second.build_dir("2.0") == dest / "usr/src/kernels/2.0"
    assert not (dest / "usr/src/kernels/1.0").exists()
    assert prepare_sysroot([two], dest).cached
    assert sorted(os.listdir(tmp_path / "kernels")) == ["k"]


def test_refused_package_leaves_nothing(tmp_path: Path) -> None:
    good = tarball(tmp_path, "good.tgz", kernel_tree("1.0"))
    bad = tarball(tmp_path, "bad.tgz", [a.file("./usr/../../escaped")])
    dest = tmp_path / "kernels" / "k"
    with pytest.raises(InputError) as refused:
        prepare_sysroot([good, bad], dest)
    assert refused.value.message == (
        f"archive {bad}: member './usr/../../escaped' escapes the destination")
    assert os.listdir(tmp_path / "kernels") == []


def test_refused_package_keeps_the_previous_sysroot(tmp_path: Path) -> None:
    good = tarball(tmp_path, "good.tgz", kernel_tree("1.0"))
    bad = tarball(tmp_path, "bad.tgz", [a.device("./dev/sda", "blk")])
    dest = tmp_path / "kernels" / "k"
    prepare_sysroot([good], dest)
    with pytest.raises(InputError):
        prepare_sysroot([good, bad], dest)
    assert prepare_sysroot([good], dest).cached
    assert sorted(os.listdir(tmp_path / "kernels")) == ["k"]


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError) as refused:
        prepare_sysroot([], tmp_path / "k")
    assert refused.value.message == f"{tmp_path / 'k'}: no header packages given"
    with pytest.raises(InputError) as refused:
        prepare_sysroot([tmp_path / "nope.deb"], tmp_path / "k")
    assert refused.value.message == f"header package {tmp_path / 'nope.deb'}: no such file"
    sysroot = prepare_sysroot([tarball(tmp_path, "one.tgz", kernel_tree("1.0"))], tmp_path / "k")
    with pytest.raises(InputError) as refused:
        sysroot.build_dir("../../etc")
    assert refused.value.message.startswith("kernel release '../../etc': ")
    with pytest.raises(InputError) as refused:
        sysroot.build_dir("2.0")
    assert refused.value.message == "no kernel build directory for 2.0 in one.tgz"


def test_build_dir_link_escaping_is_not_followed(tmp_path: Path) -> None:
    """A build link that climbs out is refused at extraction, never resolved later."""
    escaping = tarball(tmp_path, "x.tgz", [a.symlink("./lib/modules/1.0/build",
                                                     "../../../../../etc")])
    with pytest.raises(InputError) as refused:
        prepare_sysroot([escaping], tmp_path / "k")
    assert refused.value.message == (
        f"archive {escaping}: member './lib/modules/1.0/build' is a symlink to "
        "'../../../../../etc', outside the destination")


def test_wrapper_makefiles_point_inside_the_sysroot(tmp_path: Path) -> None:
    """Debian's wrappers name the -common folder, and from Linux 7 their own, by absolute
    path: both become relative, so kbuild runs where the headers are not installed."""
    flavor, common = "./usr/src/linux-headers-7.2.13+deb14-amd64", \
        "./usr/src/linux-headers-7.2.13+deb14-common"
    wrapper = (b"KBUILD_OUTPUT=/usr/src/linux-headers-7.2.13+deb14-amd64\n"
               b"include /usr/src/linux-headers-7.2.13+deb14-common/Makefile\n"
               b"OTHER = /nowhere/in/the/sysroot\n")
    package = tarball(tmp_path, "headers.tgz", [
        a.file(f"{flavor}/Makefile", wrapper), a.file(f"{flavor}/.config", b"CONFIG_X=y\n"),
        a.file(f"{common}/Makefile", b"all:\n"),
        a.file(f"{flavor}/scripts/Makefile.build", b"# kbuild\n"),
        a.symlink("./usr/lib/modules/7.2.13+deb14-amd64/build", flavor[1:])])
    sysroot = prepare_sysroot([package], tmp_path / "sysroot")
    build = sysroot.build_dir("7.2.13+deb14-amd64")
    assert (build / "Makefile").read_text() == (
        "KBUILD_OUTPUT=.\ninclude ../linux-headers-7.2.13+deb14-common/Makefile\n"
        "OTHER = /nowhere/in/the/sysroot\n")  # not in the sysroot: left alone
    assert sysroot.fixed_makefiles == ("usr/src/linux-headers-7.2.13+deb14-amd64/Makefile",)
