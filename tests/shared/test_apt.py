"""shared/apt.py, kernels from apt archives: Debian 12's suites on the machine's real
mirror, a hand-made Ubuntu-style archive served from a folder, and every kind of bad
sources input.

The real-archive tests name the suites they read (BOOKWORM), so they mean the same on a
Debian 12 and a Debian 13 host."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from debian import deb822

from builder.cli import main
from builder.core.errors import InputError, StoreError
from builder.core.records import Kernel
from builder.shared.apt import (
    AptArchive,
    SourcesFile,
    _apt_config_paths,
    archive_entries,
    host_keyrings,
    host_sources,
    read_sources_file,
    suite_sources,
)

CACHE = Path(os.environ.get("FALCO_PROBES_TEST_CACHE")
             or Path.home() / ".cache" / "falco-probes-tests") / "apt"
HAS_APT = subprocess.run(["which", "apt-get"], capture_output=True).returncode == 0
needs_apt = pytest.mark.skipif(not HAS_APT, reason="apt-get is not installed")


# --- the real archive this machine's apt points at --------------------------------------

# Debian 12 with its point-release updates and security kernels: 6.1 and 6.12+deb12.
BOOKWORM = ("bookworm", "bookworm-updates", "bookworm-security")


@pytest.fixture(scope="module")
def debian() -> tuple[AptArchive, list[Kernel]]:
    archive = AptArchive(CACHE, suites=BOOKWORM)
    archive.update()
    return archive, archive.kernels()


@needs_apt
@pytest.mark.slow
def test_real_archive_lists_every_debian_kernel(debian: tuple[AptArchive, list[Kernel]]
                                                ) -> None:
    archive, kernels = debian
    assert archive.problems == []
    assert len(kernels) >= 30
    assert {k.flavor for k in kernels} >= {"amd64", "cloud-amd64", "rt-amd64"}
    assert any("+deb12-" in k.host.uname_r for k in kernels)  # 6.12 from bookworm
    for kernel in kernels:
        host = kernel.host
        assert (kernel.target, kernel.source, host.os_id, host.uname_m) == (
            "debian", "apt", "debian", "x86_64")
        assert kernel.arch == "x86_64" and host.version_id.isdigit()
        assert host.uname_r.endswith(f"-{kernel.flavor}")
        assert host.uname_v.startswith("#1 SMP ")
        assert host.uname_v.endswith(f" Debian {kernel.package_version}")
        assert ("PREEMPT_RT" in host.uname_v) == kernel.flavor.startswith("rt-")


@needs_apt
@pytest.mark.slow
def test_real_archive_headers_follow_the_real_depends(
        debian: tuple[AptArchive, list[Kernel]]) -> None:
    """headers = [the flavor's package, its -common(-rt), linux-kbuild-X.Y], as Depends say."""
    archive, kernels = debian
    for kernel in kernels:
        flavor_pkg, common, kbuild = kernel.headers
        abi = kernel.host.uname_r.removesuffix(f"-{kernel.flavor}")
        suffix = "-common-rt" if kernel.flavor.startswith("rt-") else "-common"
        assert flavor_pkg.name.startswith(f"linux-headers-{kernel.host.uname_r}_")
        assert common.name.startswith(f"linux-headers-{abi}{suffix}_")
        assert re.match(r"linux-kbuild-\d+\.\d+[^_]*_", kbuild.name)
        for header in kernel.headers:
            assert header.kind == "deb" and header.size > 0
            assert re.fullmatch(r"[0-9a-f]{64}", header.sha256)
            assert header.url.endswith("/" + header.name)
    # apt itself agrees on every URL, size and hash (it resolves the same versions).
    wanted = {h.name: h for k in kernels for h in k.headers}
    specs = sorted({"=".join(h.name.split("_")[:2]) for h in wanted.values()})
    printed = archive._apt("download", "--print-uris", *specs)
    assert printed.returncode == 0, printed.stderr
    seen = {}
    for line in printed.stdout.splitlines():
        url, name, size, digest = line.split()
        # apt writes ~ and + as %7e and %2b in URLs; the archive serves both spellings.
        seen[name] = (urllib.parse.unquote(url.strip("'")), int(size),
                      digest.removeprefix("SHA256:"))
    assert seen == {n: (h.url, h.size, h.sha256) for n, h in wanted.items()}


@needs_apt
@pytest.mark.slow
def test_package_gives_any_binary_package_with_a_verified_url(
        debian: tuple[AptArchive, list[Kernel]]) -> None:
    archive, _ = debian
    dkms = archive.package("falcosecurity-scap-dkms")
    assert dkms.name.startswith("falcosecurity-scap-dkms_") and dkms.name.endswith("_all.deb")
    with urllib.request.urlopen(dkms.url, timeout=60) as response:  # 100 kB, the real thing
        data = response.read()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (dkms.size, dkms.sha256)
    with pytest.raises(InputError, match="is not in the archive"):
        archive.package("no-such-package-at-all")
    with pytest.raises(InputError, match="not a Debian package name"):
        archive.package("../etc/passwd")


@needs_apt
@pytest.mark.slow
def test_one_line_sources_file_for_the_same_archive(
        tmp_path: Path, debian: tuple[AptArchive, list[Kernel]]) -> None:
    """--sources in the one-line format, rebuilt from the machine's deb822 entries."""
    archive, kernels = debian
    lines = []
    for source in archive.sources:
        if not source.name.endswith(".sources"):
            lines += [line for line in source.text.splitlines() if line.startswith("deb ")]
            continue
        for entry in deb822.Deb822.iter_paragraphs(source.text.splitlines()):
            signed = f" [signed-by={entry['Signed-By']}]" if "Signed-By" in entry else ""
            lines += [f"deb{signed} {uri} {suite} {entry.get('Components', '')}"
                      for uri in entry["URIs"].split() for suite in entry["Suites"].split()]
    sources = tmp_path / "archive.list"
    sources.write_text("# rebuilt by the test\n" + "\n".join(lines) + "\n")
    other = AptArchive(CACHE, sources=sources)
    assert other.root != archive.root
    other.update()
    assert [k.key for k in other.kernels()] == [k.key for k in kernels]


# --- the machine's own sources: exactly the files apt reads ---------------------------------

def test_host_sources_and_keyrings_are_the_files_apt_reads(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "trusted.gpg.d").mkdir()
    (etc / "sources.list").write_text("deb http://archive.example/debian bookworm main\n")
    for name in ("a.list", "b.sources", "c.list.disabled-by-farm", "d.list.save",
                 "bad name.list", "e.sources.dpkg-old"):
        (etc / "sources.list.d" / name).write_text("deb http://archive.example/x y z\n")
    for name in ("k.gpg", "k.asc", "k.txt", "k.gpg~"):
        (etc / "trusted.gpg.d" / name).write_bytes(b"key")
    paths = {"SL": etc / "sources.list", "SP": etc / "sources.list.d",
             "TR": etc / "trusted.gpg", "TP": etc / "trusted.gpg.d"}
    assert [(s.name, s.origin) for s in host_sources(paths)] == [
        ("00-sources.list", str(etc / "sources.list")),
        ("01-a.list", str(etc / "sources.list.d" / "a.list")),
        ("02-b.sources", str(etc / "sources.list.d" / "b.sources"))]
    assert host_keyrings(paths) == [etc / "trusted.gpg.d" / "k.asc",
                                    etc / "trusted.gpg.d" / "k.gpg"]


@needs_apt
def test_apt_config_says_where_the_host_sources_are() -> None:
    paths = _apt_config_paths()
    # apt 3.0 (Debian 13) has no Dir::Etc::Trusted default any more
    assert {"SL", "SP", "TP"} <= set(paths) <= {"SL", "SP", "TR", "TP"}
    assert paths["SP"].name == "sources.list.d"


def _one_line_without_signed_by(archive: AptArchive, path: Path) -> Path:
    entries = [p for s in archive.sources if s.name.endswith(".sources")
               for p in deb822.Deb822.iter_paragraphs(s.text.splitlines())]
    path.write_text("".join(f"deb {uri} {suite} {e.get('Components', '')}\n"
                            for e in entries for uri in e["URIs"].split()
                            for suite in e["Suites"].split()))
    return path


DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
OTHER_KEY = Path("/etc/apt/trusted.gpg.d/debian-archive-bullseye-stable.asc")


@needs_apt
@pytest.mark.slow
@pytest.mark.skipif(not (DEBIAN_KEYRING.is_file() and OTHER_KEY.is_file()),
                    reason="needs Debian's archive keyrings")
def test_keyring_is_what_apt_checks_signatures_with(
        tmp_path: Path, debian: tuple[AptArchive, list[Kernel]]) -> None:
    archive, kernels = debian
    if not any(s.name.endswith(".sources") for s in archive.sources):
        pytest.skip("this machine's sources are not deb822")
    sources = _one_line_without_signed_by(archive, tmp_path / "plain.list")
    good = AptArchive(CACHE, sources=sources, keyring=DEBIAN_KEYRING)
    good.update()
    assert len(good.kernels()) == len(kernels)
    wrong = AptArchive(tmp_path / "cache", sources=sources, keyring=OTHER_KEY)
    with pytest.raises(StoreError, match="not signed|NO_PUBKEY") as caught:
        wrong.update()
    assert caught.value.hint is not None and "--keyring" in caught.value.hint


# --- bad sources input --------------------------------------------------------------------

BAD_SOURCES = [
    ("missing", None, "no such sources file"),
    ("garbage.list", "this is not a sources line\n", "garbage.list:1: 'this is not a sources"),
    ("no-uri.list", "deb bookworm main\n", "no-uri.list:1:"),
    ("no-uris.sources", "Types: deb\nSuites: bookworm\nComponents: main\n",
     "record entry 1 field 'URIs': missing 'URIs'"),
    ("only-src.list", "deb-src http://archive.example/debian bookworm main\n",
     "no 'deb' entries"),
    ("sniffed-deb822", "Types: deb\nURIs: http://archive.example/debian\n",
     "field 'Suites': missing 'Suites'"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_SOURCES,
                         ids=[c[0] for c in BAD_SOURCES])
def test_bad_sources_file_is_refused_before_apt_runs(tmp_path: Path, name: str,
                                                     text: str | None, message: str) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        AptArchive(tmp_path / "cache", sources=path)
    assert str(path) in caught.value.message
    assert not (tmp_path / "cache").exists()  # nothing written


def test_missing_keyring_is_refused(tmp_path: Path) -> None:
    sources = tmp_path / "x.list"
    sources.write_text("deb http://archive.example/debian bookworm main\n")
    with pytest.raises(InputError, match="no such keyring"):
        AptArchive(tmp_path / "cache", sources=sources, keyring=tmp_path / "nope.gpg")


def test_unknown_arch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown architecture 'riscv64'"):
        AptArchive(tmp_path, arch="riscv64")


@needs_apt
def test_unreachable_archive_is_a_store_error_naming_it(tmp_path: Path) -> None:
    sources = tmp_path / "dead.list"  # (a dead http host costs apt's retries: seconds)
    sources.write_text(f"deb file:{tmp_path}/no-archive bookworm main\n")
    archive = AptArchive(tmp_path / "cache", sources=sources)
    with pytest.raises(StoreError, match=f"{tmp_path}/no-archive"):
        archive.update()


@needs_apt
def test_malformed_entry_apt_refuses_names_the_users_file(tmp_path: Path) -> None:
    # Passes our quick check (the URI looks like one) but apt refuses the option list.
    sources = tmp_path / "odd.list"
    sources.write_text("deb [arch] http://archive.example/debian bookworm main\n")
    archive = AptArchive(tmp_path / "cache", sources=sources)
    with pytest.raises(InputError, match=re.escape(str(sources))):
        archive.update()


# --- an Ubuntu-style archive in a folder: the whole path without the network ----------------

UBUNTU_PACKAGES = [
    ("linux-headers-5.15.0-100-generic", "5.15.0-100.110", "amd64",
     "linux-headers-5.15.0-100, libc6 (>= 2.34), libelf1 (>= 0.142), zlib1g (>= 1:1.2.3.3)",
     "pool/main/l/linux/linux-headers-5.15.0-100-generic_5.15.0-100.110_amd64.deb"),
    ("linux-headers-5.15.0-100", "5.15.0-100.110", "all", "",
     "pool/main/l/linux/linux-headers-5.15.0-100_5.15.0-100.110_all.deb"),
    ("linux-headers-5.15.0-1009-aws", "5.15.0-1009.11", "amd64",
     "linux-aws-headers-5.15.0-1009, libc6 (>= 2.34)",
     "pool/main/l/linux-aws/linux-headers-5.15.0-1009-aws_5.15.0-1009.11_amd64.deb"),
    ("linux-aws-headers-5.15.0-1009", "5.15.0-1009.11", "all", "",
     "pool/main/l/linux-aws/linux-aws-headers-5.15.0-1009_5.15.0-1009.11_all.deb"),
    ("linux-headers-generic", "5.15.0.100.97", "amd64", "linux-headers-5.15.0-100-generic",
     "pool/main/l/linux-meta/linux-headers-generic_5.15.0.100.97_amd64.deb"),
    # Its -common package is missing from the archive: reported, not listed.
    ("linux-headers-5.15.0-101-generic", "5.15.0-101.111", "amd64", "linux-headers-5.15.0-101",
     "pool/main/l/linux/linux-headers-5.15.0-101-generic_5.15.0-101.111_amd64.deb"),
    # A Filename that climbs out of the archive: reported, not listed.
    ("linux-headers-5.15.0-100-lowlatency", "5.15.0-100.110", "amd64",
     "linux-headers-5.15.0-100", "pool/../../etc/linux-headers_5.15.0-100.110_amd64.deb"),
]


def _stanza(name: str, version: str, arch: str, depends: str, filename: str) -> str:
    digest = hashlib.sha256(filename.encode()).hexdigest()
    lines = [f"Package: {name}", "Source: linux", f"Version: {version}",
             f"Architecture: {arch}", *([f"Depends: {depends}"] if depends else []),
             f"Filename: {filename}", "Size: 12345", f"SHA256: {digest}"]
    return "\n".join(lines) + "\n"


def make_archive(root: Path, origin: str, version: str, suite: str) -> None:
    packages = "\n".join(_stanza(*p) for p in UBUNTU_PACKAGES)
    index = root / "dists" / suite / "main" / "binary-amd64" / "Packages"
    index.parent.mkdir(parents=True)
    index.write_text(packages)
    digest = hashlib.sha256(packages.encode()).hexdigest()
    (root / "dists" / suite / "Release").write_text(
        f"Origin: {origin}\nLabel: {origin}\nSuite: {suite}\nVersion: {version}\n"
        f"Codename: {suite}\nDate: Tue, 25 Nov 2025 00:00:00 UTC\nArchitectures: amd64\n"
        f"Components: main\nSHA256:\n {digest} {len(packages.encode())} "
        "main/binary-amd64/Packages\n")


@needs_apt
def test_ubuntu_archive_in_a_folder(tmp_path: Path) -> None:
    make_archive(tmp_path / "archive", "Ubuntu", "22.04", "jammy")
    sources = tmp_path / "ubuntu.sources"
    sources.write_text(f"Types: deb\nURIs: file:{tmp_path / 'archive'}\nSuites: jammy\n"
                       "Components: main\nTrusted: yes\n")  # the test archive is unsigned
    archive = AptArchive(tmp_path / "cache", sources=sources)
    archive.update()
    kernels = archive.kernels()
    got = [(k.target, k.flavor, k.package_version, k.host.os_id, k.host.version_id,
            k.host.uname_r, k.host.uname_v, [h.name for h in k.headers]) for k in kernels]
    assert got == [
        ("ubuntu-aws", "aws", "5.15.0-1009.11", "ubuntu", "22.04", "5.15.0-1009-aws",
         "#11-Ubuntu SMP", ["linux-headers-5.15.0-1009-aws_5.15.0-1009.11_amd64.deb",
                            "linux-aws-headers-5.15.0-1009_5.15.0-1009.11_all.deb"]),
        ("ubuntu-generic", "generic", "5.15.0-100.110", "ubuntu", "22.04",
         "5.15.0-100-generic", "#110-Ubuntu SMP",
         ["linux-headers-5.15.0-100-generic_5.15.0-100.110_amd64.deb",
          "linux-headers-5.15.0-100_5.15.0-100.110_all.deb"]),
    ]
    header = kernels[1].headers[0]
    assert header.url == (f"file://{tmp_path}/archive/pool/main/l/linux/"
                          "linux-headers-5.15.0-100-generic_5.15.0-100.110_amd64.deb")
    assert header.sha256 == hashlib.sha256(
        b"pool/main/l/linux/linux-headers-5.15.0-100-generic_5.15.0-100.110_amd64.deb"
    ).hexdigest()
    assert [(p.record, p.message) for p in archive.problems] == [
        ("linux-headers-5.15.0-100-lowlatency 5.15.0-100.110",
         "unusable Filename 'pool/../../etc/linux-headers_5.15.0-100.110_amd64.deb' in "
         f"{Path(archive.index_files()[0].path).name}"),
        ("linux-headers-5.15.0-101-generic 5.15.0-101.111",
         "depends on linux-headers-5.15.0-101, which is not in the archive"),
    ]


@needs_apt
def test_a_changed_index_fails_apts_hash_check(tmp_path: Path) -> None:
    make_archive(tmp_path / "archive", "Ubuntu", "22.04", "jammy")
    index = tmp_path / "archive" / "dists" / "jammy" / "main" / "binary-amd64" / "Packages"
    index.write_text(index.read_text().replace("12345", "99999"))
    sources = tmp_path / "ubuntu.list"
    sources.write_text(f"deb [trusted=yes] file:{tmp_path / 'archive'} jammy main\n")
    with pytest.raises(StoreError, match="Hash Sum mismatch|hash"):
        AptArchive(tmp_path / "cache", sources=sources).update()


def test_read_sources_file_keeps_the_format(tmp_path: Path) -> None:
    one = tmp_path / "a"
    one.write_text("# comment\ndeb http://archive.example/debian bookworm main\n")
    many = tmp_path / "b"
    many.write_text("# comment\nTypes: deb\nURIs: http://archive.example/debian\n"
                    "Suites: bookworm\nComponents: main\n")
    assert read_sources_file(one).name == "custom.list"
    assert read_sources_file(many).name == "custom.sources"


# --- the command, on the real archive -------------------------------------------------------

@needs_apt
@pytest.mark.slow
def test_cli_lists_the_real_archive_as_json(capsys: pytest.CaptureFixture[str],
                                            debian: tuple[AptArchive, list[Kernel]]) -> None:
    _, kernels = debian
    suites = [arg for suite in BOOKWORM for arg in ("--suite", suite)]
    code = main(["kernels", "--source", "apt", *suites, "--cache", str(CACHE.parent), "--json"])
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert code == 0
    assert [r["key"] for r in rows] == [k.key for k in kernels]
    assert all(len(r["headers"]) == 3 and all(len(h["sha256"]) == 64 for h in r["headers"])
               for r in rows)
    assert f"listed {len(kernels)} kernels, skipped 0, 0 junk entries left out" in err
    code = main(["kernels", "--source", "apt", *suites, "--cache", str(CACHE.parent),
                 "--latest", "1", "--exclude=-rt-"])
    out, err = capsys.readouterr()
    assert code == 0
    kept = sorted(line.split()[2] for line in out.splitlines())
    # the newest amd64 and cloud-amd64 kernel of each series (6.1 and 6.12)
    assert len(kept) == 4 and all(k.endswith("amd64") and "-rt-" not in k for k in kept)
    assert {k.split(".")[1] for k in kept} == {"1", "12"}
    assert "by exclude" in err and "by latest" in err


@needs_apt
def test_cli_bad_sources_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    bad = tmp_path / "bad.list"
    bad.write_text("deb\n")
    code = main(["kernels", "--source", f"apt:{bad}", "--cache", str(tmp_path / "c")])
    _, err = capsys.readouterr()
    assert code == 2
    assert f"error: {bad}:1: 'deb' is not a sources.list line" in err


# --- suites on the machine's mirror -----------------------------------------------------------

HOST_DEB822 = SourcesFile("00-debian.sources", """\
Types: deb
URIs: http://mirror.example/debian
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: trixie-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
""", "/etc/apt/sources.list.d/debian.sources")
HOST_ONE_LINE = SourcesFile("00-sources.list", """\
# a comment
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib
deb http://mirror.example/debian-security bookworm-security main
deb-src http://mirror.example/debian bookworm main
""", "/etc/apt/sources.list")


HOST_DEBOOTSTRAP = SourcesFile("00-sources.list",
                               "deb http://mirror.example/debian bookworm main\n",
                               "/etc/apt/sources.list")


def test_archive_entries_of_both_formats() -> None:
    assert archive_entries(HOST_DEB822)[1].uri == "http://mirror.example/debian-security"
    assert archive_entries(HOST_ONE_LINE) == [
        archive_entries(HOST_ONE_LINE)[0].__class__(
            "http://mirror.example/debian", ("bookworm",), ("main", "contrib"), "/k.gpg"),
        archive_entries(HOST_ONE_LINE)[0].__class__(
            "http://mirror.example/debian-security", ("bookworm-security",), ("main",), ""),
    ]


@pytest.mark.parametrize(("host", "suites", "mirror", "expected"), [
    # a Debian 13 host reads Debian 12's suites from its own mirror, security from security
    (HOST_DEB822, ("bookworm", "bookworm-security"), "",
     [("http://mirror.example/debian", "bookworm"),
      ("http://mirror.example/debian-security", "bookworm-security")]),
    (HOST_ONE_LINE, ("sid", "bookworm"), "",
     [("http://mirror.example/debian", "sid"), ("http://mirror.example/debian", "bookworm")]),
    (HOST_ONE_LINE, ("trixie",), "http://other.example/debian",
     [("http://other.example/debian", "trixie")]),
    # a debootstrap root lists its archive only: security is beside it, as Debian lays out
    (HOST_DEBOOTSTRAP, ("bookworm", "bookworm-security"), "",
     [("http://mirror.example/debian", "bookworm"),
      ("http://mirror.example/debian-security", "bookworm-security")]),
])
def test_suite_sources_use_the_machines_mirror(host: SourcesFile, suites: tuple[str, ...],
                                               mirror: str,
                                               expected: list[tuple[str, str]]) -> None:
    made = suite_sources([host], suites, mirror)
    paragraphs = list(deb822.Deb822.iter_paragraphs(made.text.splitlines()))
    assert [(p["URIs"], p["Suites"]) for p in paragraphs] == expected
    assert all(p["Components"] == "main" and p["Check-Valid-Until"] == "no"
               for p in paragraphs)
    assert made.name.endswith(".sources")


@pytest.mark.parametrize(("suites", "mirror", "host", "message"), [
    (("../etc",), "", [HOST_DEB822], "is not a Debian suite name"),
    (("Bookworm",), "", [HOST_DEB822], "is not a Debian suite name"),
    (("sid",), "ftp://x", [HOST_DEB822], "is not an http(s) or file URI"),
    (("sid",), "", [], "lists no Debian archive"),
])
def test_bad_suites_or_mirror_are_refused(suites: tuple[str, ...], mirror: str,
                                          host: list[SourcesFile], message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        suite_sources(host, suites, mirror)


@needs_apt
@pytest.mark.slow
def test_arm64_kernels_take_the_build_machines_kbuild() -> None:
    archive = AptArchive(CACHE, suites=("bookworm",), arch="aarch64")
    archive.update()
    kernels = archive.kernels()
    assert kernels and all(k.arch == "aarch64" and k.host.uname_m == "aarch64" for k in kernels)
    for kernel in kernels:
        flavor, common, kbuild = kernel.headers
        assert flavor.name.endswith("_arm64.deb") and common.name.endswith("_all.deb")
        assert kbuild.name.endswith(f"_{archive.build_arch}.deb")  # runs on this machine
