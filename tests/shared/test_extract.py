"""shared/extract.py, safe extraction: every container and compression, hostile and broken archives.

Hostile archives are built member by member (tests/helpers/archives.py) and run
through every container that can express them; each refusal names the
archive and the member, and leaves nothing behind: no destination, no
staging folder, nothing written outside.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import archives as a
import pytest
from debian.debfile import DebFile
from realkernel import cache_dir, debian_headers_or_skip

from builder.core.errors import InputError
from builder.shared.extract import detect_kind, extract

ALL = ("tar", "deb", "rpm")
ENDED = "Compressed file ended before the end-of-stream marker was reached"  # gzip, bz2, lzma
TAR_AND_DEB = ("tar", "deb")  # hard links by name exist only in tar


def make(container: str, entries: list[a.Entry]) -> tuple[str, bytes]:
    if container == "tar":
        return "hostile.tar.gz", a.tar(entries, "gzip")
    if container == "deb":
        return "hostile.deb", a.deb(entries, "xz")
    return "hostile.rpm", a.rpm(entries, "gzip")


@dataclass(frozen=True)
class Hostile:
    id: str
    entries: list[a.Entry]
    message: str          # after "archive <path>: "
    containers: tuple[str, ...] = ALL


HOSTILE = [
    Hostile("absolute-path", [a.file("/etc/passwd")],
            "member '/etc/passwd' has an absolute path"),
    Hostile("dotdot", [a.file("a/../../escaped")],
            "member 'a/../../escaped' escapes the destination"),
    Hostile("dotdot-first", [a.file("../escaped")],
            "member '../escaped' escapes the destination"),
    Hostile("symlink-escapes", [a.symlink("evil", "../../escaped")],
            "member 'evil' is a symlink to '../../escaped', outside the destination"),
    Hostile("symlink-escapes-deep", [a.folder("d"), a.symlink("d/evil", "../../x")],
            "member 'd/evil' is a symlink to '../../x', outside the destination"),
    Hostile("file-through-symlink", [a.folder("sub"), a.symlink("link", "sub"),
                                     a.file("link/passwd")],
            "member 'link/passwd' would be written through the symlink 'link'"),
    Hostile("file-through-absolute-symlink", [a.symlink("etc", "/etc"), a.file("etc/passwd")],
            "member 'etc/passwd' would be written through the symlink 'etc'"),
    Hostile("symlink-through-symlink", [a.symlink("up", "."), a.symlink("up/evil", "x")],
            "member 'up/evil' would be written through the symlink 'up'"),
    Hostile("escape-through-two-links",
            [a.folder("x"), a.symlink("l1", "x/y/../.."), a.symlink("x/y", "..")],
            "member 'l1' is a symlink to 'x/y/../..' that resolves outside the destination "
            "(through other links)"),
    Hostile("hardlink-escapes", [a.hardlink("h", "../../escaped")],
            "member 'h' is a hard link to '../../escaped', outside the destination",
            TAR_AND_DEB),
    Hostile("hardlink-absolute", [a.hardlink("h", "/etc/passwd")],
            "member 'h' is a hard link to '/etc/passwd', outside the destination", TAR_AND_DEB),
    Hostile("hardlink-to-nothing", [a.hardlink("h", "missing")],
            "member 'h' is a hard link to 'missing', which is not a file extracted before it "
            "from this archive", TAR_AND_DEB),
    Hostile("hardlink-to-symlink", [a.symlink("s", "/etc/passwd"), a.hardlink("h", "s")],
            "member 'h' is a hard link to 's', which is not a file extracted before it "
            "from this archive", TAR_AND_DEB),
    Hostile("character-device", [a.folder("dev"), a.device("dev/null", "chr")],
            "member 'dev/null' is a character device; only files, directories and links "
            "are allowed"),
    Hostile("block-device", [a.device("sda", "blk")],
            "member 'sda' is a block device; only files, directories and links are allowed"),
    Hostile("fifo", [a.device("pipe", "fifo")],
            "member 'pipe' is a fifo; only files, directories and links are allowed"),
    Hostile("directory-over-symlink", [a.symlink("d", "."), a.folder("d")],
            "member 'd' would replace a file or link with a directory"),
    Hostile("file-over-directory", [a.folder("d"), a.file("d")],
            "member 'd' would replace a directory"),
    Hostile("file-as-parent", [a.file("f"), a.file("f/x")],
            "member 'f/x' needs 'f' to be a directory, but the archive made it a file"),
    Hostile("name-too-long", [a.file("d/" + "x" * 300)],
            f"member 'd/{'x' * 300}' could not be written into {{dest}}: File name too long"),
]


def listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize(("case", "container"), [
    pytest.param(case, container, id=f"{case.id}-{container}")
    for case in HOSTILE for container in case.containers])
def test_hostile_member_is_refused_and_nothing_is_left(tmp_path: Path, case: Hostile,
                                                       container: str) -> None:
    name, data = make(container, case.entries)
    archive = tmp_path / name
    archive.write_bytes(data)
    dest = tmp_path / "out" / "sub" / "dest"
    before = listing(tmp_path)
    with pytest.raises(InputError) as refused:
        extract(archive, dest)
    assert refused.value.message == f"archive {archive}: {case.message.format(dest=dest)}"
    assert not dest.exists()
    # no staging folder left, nothing written next to or above the destination
    assert listing(tmp_path) - before <= {"out", "out/sub"}
    assert not any((tmp_path / "out" / "sub").iterdir())


@dataclass(frozen=True)
class Accepted:
    id: str
    entries: list[a.Entry]
    expect: dict[str, tuple[str, object]]  # path -> ("mode", 0o755) | ("link", target) ...


ACCEPTED = [
    Accepted("setuid-and-setgid-dropped",
             [a.folder("bin"), a.file("bin/su", mode=0o4755), a.file("bin/sg", mode=0o2755),
              a.file("bin/sticky", mode=0o1777)],
             {"bin/su": ("mode", 0o755), "bin/sg": ("mode", 0o755),
              "bin/sticky": ("mode", 0o755)}),
    Accepted("owner-writable-no-world-write",
             [a.file("ro", mode=0o444), a.file("none", mode=0o000), a.file("ww", mode=0o666)],
             {"ro": ("mode", 0o644), "none": ("mode", 0o600), "ww": ("mode", 0o644)}),
    Accepted("absolute-symlink-re-rooted",
             [a.folder("./lib/modules/9.9.9/"),
              a.symlink("./lib/modules/9.9.9/build", "/usr/src/kernels/9.9.9"),
              a.symlink("top", "/"), a.symlink("up", "/../../etc/hosts")],
             {"lib/modules/9.9.9/build": ("link", "../../../usr/src/kernels/9.9.9"),
              "top": ("link", "."), "up": ("link", "etc/hosts")}),
    Accepted("relative-symlinks-kept",
             [a.folder("usr/src/h"), a.symlink("usr/src/h/scripts", "../../lib/kbuild/scripts"),
              a.symlink("usr/src/h/self", ".")],
             {"usr/src/h/scripts": ("link", "../../lib/kbuild/scripts"),
              "usr/src/h/self": ("link", ".")}),
    Accepted("dot-slash-and-root-members",
             [a.folder("."), a.folder("./"), a.file("./a/b", b"x"), a.file(".//c/./d", b"y")],
             {"a/b": ("data", b"x"), "c/d": ("data", b"y")}),
    Accepted("later-member-replaces-earlier",
             [a.file("f", b"old"), a.file("f", b"new"), a.symlink("l", "f"), a.file("l", b"f")],
             {"f": ("data", b"new"), "l": ("data", b"f")}),
]


@pytest.mark.parametrize("container", ALL)
@pytest.mark.parametrize("case", ACCEPTED, ids=[c.id for c in ACCEPTED])
def test_accepted_members_are_sanitized(tmp_path: Path, case: Accepted, container: str) -> None:
    name, data = make(container, case.entries)
    archive = tmp_path / name
    archive.write_bytes(data)
    dest = tmp_path / "dest"
    extract(archive, dest)
    for path, (what, value) in case.expect.items():
        target = dest / path
        if what == "mode":
            assert stat.S_IMODE(target.lstat().st_mode) == value, path
        elif what == "link":
            assert os.readlink(target) == value, path
        else:
            assert not target.is_symlink() and target.read_bytes() == value, path
    assert sorted(os.listdir(tmp_path)) == sorted([name, "dest"])


def test_report_counts_and_time(tmp_path: Path) -> None:
    entries = [a.folder("d"), a.file("d/f", b"12345"), a.symlink("d/abs", "/d/f"),
               a.symlink("d/rel", "f"), a.hardlink("d/h", "d/f")]
    archive = tmp_path / "x.tar"
    archive.write_bytes(a.tar(entries))
    report = extract(archive, tmp_path / "dest")
    assert (report.kind, report.files, report.directories, report.links,
            report.rewritten_links, report.bytes) == ("tar", 1, 1, 3, 1, 5)
    assert report.seconds > 0
    assert (tmp_path / "dest/d/h").stat().st_ino == (tmp_path / "dest/d/f").stat().st_ino
    assert (tmp_path / "dest/d/abs").read_bytes() == b"12345"


def test_cpio_hard_links_share_one_inode(tmp_path: Path) -> None:
    """newc stores hard-linked data once, with the last name; the others come first."""
    entries = [a.Entry("./h1", ino=7, nlink=3), a.Entry("./h2", ino=7, nlink=3),
               a.Entry("./h3", data=b"shared", ino=7, nlink=3),
               a.Entry("./lonely1", ino=9, nlink=2), a.Entry("./lonely2", ino=9, nlink=2)]
    archive = tmp_path / "links.rpm"
    archive.write_bytes(a.rpm(entries, "xz"))
    dest = tmp_path / "dest"
    report = extract(archive, dest)
    inodes = {(dest / n).stat().st_ino for n in ("h1", "h2", "h3")}
    assert len(inodes) == 1 and (dest / "h1").read_bytes() == b"shared"
    assert (dest / "lonely2").stat().st_ino == (dest / "lonely1").stat().st_ino
    assert (report.files, report.links) == (2, 3)


CONTENT = [a.folder("./usr/"), a.folder("./usr/src/"), a.file("./usr/src/Makefile", b"all:\n"),
           a.file("./usr/src/big", bytes(range(256)) * 1024),
           a.symlink("./usr/src/build", "/usr/src")]


def check_content(dest: Path) -> None:
    assert (dest / "usr/src/Makefile").read_bytes() == b"all:\n"
    assert (dest / "usr/src/big").read_bytes() == bytes(range(256)) * 1024
    assert os.readlink(dest / "usr/src/build") == "."


@pytest.mark.parametrize("compression", ["none", "gzip", "bzip2", "xz", "zstd"])
@pytest.mark.parametrize("container", ALL)
def test_every_container_and_compression(tmp_path: Path, container: str,
                                         compression: str) -> None:
    if container == "tar":
        name, data = f"h.tar{a.SUFFIX[compression]}", a.tar(CONTENT, compression)
    elif container == "deb":
        name, data = "h.deb", a.deb(CONTENT, compression)
    else:
        name, data = "h.rpm", a.rpm(CONTENT, compression)
    archive = tmp_path / name
    archive.write_bytes(data)
    assert detect_kind(archive) == container
    extract(archive, tmp_path / "dest")
    check_content(tmp_path / "dest")


def test_zstd_with_several_frames(tmp_path: Path) -> None:
    """Parallel zstd writes one frame per block; all of them are read."""
    whole = a.tar(CONTENT)
    middle = len(whole) // 2
    archive = tmp_path / "multi.tar.zst"
    archive.write_bytes(a.compress(whole[:middle], "zstd") + a.compress(whole[middle:], "zstd"))
    extract(archive, tmp_path / "dest")
    check_content(tmp_path / "dest")


@pytest.mark.parametrize("compression", ["none", "gzip", "bzip2", "xz", "zstd"])
def test_truncated_tarball(tmp_path: Path, compression: str) -> None:
    data = a.tar(CONTENT, compression)
    archive = tmp_path / f"cut.tar{a.SUFFIX[compression]}"
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as refused:
        extract(archive, tmp_path / "dest")
    prefix = f"archive {archive}: truncated or corrupt tarball: "
    expected = {
        "none": prefix + "unexpected end of data",
        "gzip": prefix + f"truncated ({ENDED})",
        "bzip2": prefix + f"truncated ({ENDED})",
        "xz": prefix + f"truncated ({ENDED})",
        "zstd": prefix + "truncated (zstd data ended in the middle of a frame)",
    }
    assert refused.value.message == expected[compression]
    assert sorted(os.listdir(tmp_path)) == [archive.name]


def test_corrupt_compressed_data(tmp_path: Path) -> None:
    data = bytearray(a.tar(CONTENT, "gzip"))
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(bytes(data))
    with pytest.raises(InputError) as refused:
        extract(archive, tmp_path / "dest")
    assert refused.value.message.startswith(
        f"archive {archive}: truncated or corrupt tarball: bad compressed data (")
    assert sorted(os.listdir(tmp_path)) == [archive.name]


HTML = b"<html><head><title>404 Not Found</title></head><body>gone</body></html>\n"


@pytest.mark.parametrize(("kind", "message"), [
    (None, "not a .deb, .rpm or tarball (it starts with '<html><head><title>404 Not "
           "Found</title>')"),
    ("deb", "not a .deb (it starts with '<html><head><title>404 Not Found</title>')"),
    ("rpm", "not a .rpm (it starts with '<html><head><title>404 Not Found</title>')"),
    ("tar", "truncated or corrupt tarball: truncated header"),
    ("zip", "unknown kind 'zip'"),
])
def test_html_error_page_saved_as_package(tmp_path: Path, kind: str | None,
                                          message: str) -> None:
    archive = tmp_path / "linux-headers.deb"
    archive.write_bytes(HTML)
    with pytest.raises(InputError) as refused:
        extract(archive, tmp_path / "dest", kind=kind)
    assert refused.value.message == f"archive {archive}: {message}"
    assert sorted(os.listdir(tmp_path)) == [archive.name]


@pytest.mark.parametrize(("data", "message"), [
    (b"", "not a .deb, .rpm or tarball (it is empty)"),
    (b"!<arch>\ndebian-binary   garbage", "not a .deb (Incorrect header length)"),
    (a.ar([("debian-binary", b"2.0\n"), ("control.tar.xz", b"")]),
     "not a .deb (missing required part in given .deb (expected one of: ['data.tar.gz', "
     "'data.tar.bz2', 'data.tar.xz', 'data.tar.lzma', 'data.tar.zst', 'data.tar']))"),
    (b"\xed\xab\xee\xdb" + b"\x00" * 200, "truncated or corrupt .rpm: bad RPM header ("),
])
def test_broken_containers(tmp_path: Path, data: bytes, message: str) -> None:
    archive = tmp_path / "broken.pkg"
    archive.write_bytes(data)
    with pytest.raises(InputError) as refused:
        extract(archive, tmp_path / "dest")
    assert refused.value.message.startswith(f"archive {archive}: {message}")
    assert sorted(os.listdir(tmp_path)) == [archive.name]


def test_missing_archive_and_bad_destination(tmp_path: Path) -> None:
    with pytest.raises(InputError) as refused:
        extract(tmp_path / "nope.deb", tmp_path / "dest")
    assert refused.value.message == f"archive {tmp_path / 'nope.deb'}: no such file"
    archive = tmp_path / "ok.tar"
    archive.write_bytes(a.tar(CONTENT))
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError) as refused:
        extract(archive, tmp_path / "file")
    assert refused.value.message == f"{tmp_path / 'file'}: exists and is not a directory"


# --- several archives into one destination (a sysroot) ---------------------------

def tar_file(tmp_path: Path, name: str, entries: list[a.Entry]) -> Path:
    path = tmp_path / name
    path.write_bytes(a.tar(entries))
    return path


def test_merge_into_existing_destination(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    extract(tar_file(tmp_path, "one.tar", [a.file("usr/src/h/Makefile", b"one"),
                                           a.file("usr/share/doc/one", b"1"),
                                           a.symlink("usr/src/h/scripts", "../kbuild/scripts")]),
            dest)
    extract(tar_file(tmp_path, "two.tar", [a.file("usr/src/kbuild/scripts/Makefile.build"),
                                           a.file("usr/share/doc/one", b"replaced")]), dest)
    assert (dest / "usr/src/h/scripts/Makefile.build").is_file()
    assert (dest / "usr/share/doc/one").read_bytes() == b"replaced"
    assert sorted(os.listdir(tmp_path)) == ["one.tar", "root", "two.tar"]


MERGE_REFUSED = [
    ("through-earlier-symlink",
     [a.folder("real"), a.symlink("link", "real")], [a.file("link/x")],
     "member 'link/' would be written through the symlink 'link' already in {dest}"),
    ("directory-over-file", [a.file("f")], [a.file("f/x")],
     "member 'f/' is a directory but {dest} already has a file there"),
    ("file-over-directory", [a.file("d/x")], [a.file("d")],
     "member 'd' would replace a directory already in {dest}"),
    ("makes-earlier-link-escape", [a.folder("x"), a.symlink("l1", "x/y/../..")],
     [a.symlink("x/y", "..")],
     "its members make the symlink 'l1' already in {dest} resolve outside it"),
    ("link-escapes-through-earlier-link", [a.folder("a/b"), a.symlink("a/b/top", "../..")],
     [a.symlink("evil", "a/b/top/../..")],
     "member 'evil' is a symlink to 'a/b/top/../..' that resolves outside the destination "
     "(through other links)"),
]


@pytest.mark.parametrize(("first", "second", "message"),
                         [case[1:] for case in MERGE_REFUSED],
                         ids=[case[0] for case in MERGE_REFUSED])
def test_merge_refusals_leave_destination_as_it_was(tmp_path: Path, first: list[a.Entry],
                                                    second: list[a.Entry], message: str) -> None:
    dest = tmp_path / "root"
    extract(tar_file(tmp_path, "first.tar", first), dest)
    before = {p: (p.is_symlink(), p.lstat().st_mtime_ns) for p in dest.rglob("*")}
    archive = tar_file(tmp_path, "second.tar", second)
    with pytest.raises(InputError) as refused:
        extract(archive, dest)
    assert refused.value.message == f"archive {archive}: {message.format(dest=dest)}"
    assert {p: (p.is_symlink(), p.lstat().st_mtime_ns) for p in dest.rglob("*")} == before
    assert sorted(os.listdir(tmp_path)) == ["first.tar", "root", "second.tar"]


# --- real packages ------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_debs() -> tuple[str, str, list[Path]]:
    return debian_headers_or_skip(cache_dir())


@pytest.mark.slow
def test_real_flavor_deb(tmp_path: Path, real_debs: tuple[str, str, list[Path]]) -> None:
    uname_r, _, packages = real_debs
    report = extract(packages[0], tmp_path / "root")
    # Debian 12's packages link lib/modules/<r>/build, Debian 13's usr/lib/modules/<r>/build
    build = next(tmp_path / "root" / modules / uname_r / "build"
                 for modules in ("lib/modules", "usr/lib/modules")
                 if (tmp_path / "root" / modules / uname_r / "build").is_symlink())
    assert os.readlink(build).endswith(f"/usr/src/linux-headers-{uname_r}")
    assert (build / ".config").is_file()
    assert report.kind == "deb" and report.rewritten_links == 2 and report.files > 1000


@pytest.mark.slow
def test_truncated_real_deb(tmp_path: Path, real_debs: tuple[str, str, list[Path]]) -> None:
    data = real_debs[2][0].read_bytes()
    archive = tmp_path / real_debs[2][0].name
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as refused:
        extract(archive, tmp_path / "root")
    assert refused.value.message == (
        f"archive {archive}: truncated or corrupt .deb: truncated ({ENDED})")
    assert sorted(os.listdir(tmp_path)) == [archive.name]


@pytest.mark.slow
def test_truncated_real_tar_xz(tmp_path: Path, real_debs: tuple[str, str, list[Path]]) -> None:
    """The flavor package's data.tar.xz is a real tarball of kernel headers."""
    deb = DebFile(str(real_debs[2][0]))
    data = deb.getmember("data.tar.xz").read()
    whole = tmp_path / "headers.tar.xz"
    whole.write_bytes(data)
    assert extract(whole, tmp_path / "whole").files > 1000
    cut = tmp_path / "cut.tar.xz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as refused:
        extract(cut, tmp_path / "root")
    assert refused.value.message == (
        f"archive {cut}: truncated or corrupt tarball: truncated ({ENDED})")
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize(("payload", "why"), [("w9.gzdio", ENDED), ("w6.xzdio", ENDED),
                                              ("w19.zstdio", "zstd data ended in the middle "
                                                             "of a frame")])
def test_real_rpm_whole_and_truncated(tmp_path: Path, payload: str, why: str) -> None:
    """rpmbuild makes the RPM (payload compressed three ways), we extract it, then half of it."""
    tree = tmp_path / "tree"
    (tree / "usr/src/kernels/9.9.9").mkdir(parents=True)
    (tree / "usr/src/kernels/9.9.9/Makefile").write_bytes(b"all:\n")
    (tree / "usr/src/kernels/9.9.9/data").write_bytes(os.urandom(1 << 17))
    built = a.rpmbuild(tree, tmp_path, name="kernel-devel", version="9.9.9",
                       files=["/usr/src/kernels/9.9.9", "/lib/modules/9.9.9/build"],
                       symlinks={"/lib/modules/9.9.9/build": "/usr/src/kernels/9.9.9"},
                       payload=payload)
    report = extract(built, tmp_path / "whole")
    assert (report.kind, report.files, report.rewritten_links) == ("rpm", 2, 1)
    assert (tmp_path / "whole/lib/modules/9.9.9/build/data").read_bytes() == \
        (tree / "usr/src/kernels/9.9.9/data").read_bytes()
    data = built.read_bytes()
    cut = tmp_path / "cut.rpm"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as refused:
        extract(cut, tmp_path / "root")
    assert refused.value.message == f"archive {cut}: truncated or corrupt .rpm: truncated ({why})"
    assert not (tmp_path / "root").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
