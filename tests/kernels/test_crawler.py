"""kernels/crawler.py: kernel-crawler lists (both key styles), the hosts they stand for,
junk entries, lists over HTTP (a hostile server's included) and past their limits."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from crawlerlists import ARM, CURRENT, JUNK, LISTS, OLD
from loopback import files, serving

from bench.synth import find_kernel_list
from builder.core.errors import InputError, StoreError
from builder.core.records import HeaderPackage, HostFacts, Kernel
from builder.kernels.crawler import CrawlerList, load_crawler, parse_crawler_text

LIST_2022 = find_kernel_list()
needs_2022 = pytest.mark.skipif(not LIST_2022.is_file(),
                                reason="the 2022 kernel-crawler list is not on this machine")


def by_label(found: CrawlerList) -> dict[str, Kernel]:
    return dict(zip(found.labels, found.kernels, strict=True))


# --- both formats, and the host each entry stands for -------------------------------------

def test_both_key_styles_load() -> None:
    old, current = load_crawler(str(OLD)), load_crawler(str(CURRENT))
    assert old.distros == ("AmazonLinux", "AmazonLinux2", "CentOS", "Oracle7", "PhotonOS",
                           "Debian", "Ubuntu", "Flatcar", "Minikube")
    assert current.distros == ("amazonlinux2023", "ubuntu", "debian", "ol", "photon",
                               "flatcar", "bottlerocket", "talos", "minikube")
    assert (len(old.kernels), old.entries, old.problems) == (13, 13, ())
    assert (len(current.kernels), current.entries, current.problems, current.notes) == (
        12, 12, (), ())
    assert all(k.source == f"kernel-crawler:{CURRENT}" for k in current.kernels)


# (file, label): target, os_id, version_id, uname_r, uname_v, flavor, package_version, extra
HOSTS: list[tuple[Path, str, tuple[str, ...], dict[str, Any]]] = [
    (OLD, "AmazonLinux[0]", ("amazonlinux", "amzn", "2018.03", "4.14.77-70.59.amzn1.x86_64",
                             "#1 SMP", "", ""), {}),
    (OLD, "AmazonLinux2[0]", ("amazonlinux2", "amzn", "2", "5.4.80-40.140.amzn2.x86_64",
                              "#1 SMP", "", ""), {}),
    (OLD, "CentOS[0]", ("centos", "centos", "7", "3.10.0-1160.el7.x86_64", "#1 SMP", "", ""), {}),
    (OLD, "Oracle7[0]", ("oracle7", "ol", "7", "4.14.35-2047.510.5.el7uek.x86_64", "#1 SMP",
                         "", ""), {}),
    (OLD, "PhotonOS[0]", ("photonos", "photon", "3.0", "4.19.15-2.ph3", "#1 SMP", "", ""), {}),
    (OLD, "Debian[0]", ("debian", "debian", "", "5.10.0-16-amd64", "#1 SMP Debian 5.10.127-2",
                        "amd64", "5.10.127-2"), {}),
    (OLD, "Debian[1]", ("debian", "debian", "9", "4.19.0-0.bpo.19-amd64",
                        "#1 SMP Debian 4.19.232-1~deb9u1", "amd64", "4.19.232-1~deb9u1"), {}),
    (OLD, "Ubuntu[0]", ("ubuntu-oracle", "ubuntu", "", "4.15.0-1087-oracle", "#95-Ubuntu SMP",
                        "oracle", "4.15.0-1087.95"), {}),
    (OLD, "Ubuntu[1]", ("ubuntu-gke-4.15", "ubuntu", "", "4.15.0-1032-gke", "#34-Ubuntu SMP",
                        "gke", "4.15.0-1032.34"), {}),
    (OLD, "Ubuntu[2]", ("ubuntu-hwe", "ubuntu", "18.04", "4.18.0-13-generic",
                        "#14~18.04.1-Ubuntu SMP", "generic", "4.18.0-13.14~18.04.1"), {}),
    (OLD, "Flatcar[0]", ("flatcar", "flatcar", "3305.0.1", "3305.0.1", "#1 SMP", "",
                         "3305.0.1"), {}),
    (OLD, "Minikube[0]", ("minikube", "buildroot", "", "5.10.57", "#1 SMP", "", "1_1.26.1"),
     {"etc_version": "v1.26.1"}),
    (CURRENT, "amazonlinux2023[0]", ("amazonlinux2023", "amzn", "2023",
                                     "6.1.55-75.123.amzn2023.x86_64", "#1 SMP", "", ""), {}),
    (CURRENT, "ubuntu[0]", ("ubuntu-aws", "ubuntu", "", "5.15.0-1009-aws", "#11-Ubuntu SMP",
                            "aws", "5.15.0-1009.11"), {}),
    (CURRENT, "debian[0]", ("debian", "debian", "", "6.1.0-47-amd64",
                            "#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1", "amd64", "6.1.158-1"), {}),
    (CURRENT, "debian[1]", ("debian", "debian", "", "6.1.0-47-rt-amd64",
                            "#1 SMP PREEMPT_RT Debian 6.1.158-1", "rt-amd64", "6.1.158-1"), {}),
    (CURRENT, "debian[2]", ("debian", "debian", "12", "6.12.48+deb12-cloud-amd64",
                            "#1 SMP PREEMPT_DYNAMIC Debian 6.12.48-1~deb12u1", "cloud-amd64",
                            "6.12.48-1~deb12u1"), {}),
    (CURRENT, "ol[0]", ("ol", "ol", "8", "5.15.0-100.96.32.el8uek.x86_64", "#2 SMP", "", ""), {}),
    (CURRENT, "photon[0]", ("photon", "photon", "4.0", "5.10.4-16.ph4", "#1 SMP", "", ""), {}),
    (CURRENT, "flatcar[0]", ("flatcar", "flatcar", "3815.2.0", "3815.2.0", "#1 SMP", "",
                             "3815.2.0"), {}),
    (CURRENT, "bottlerocket[0]", ("bottlerocket", "bottlerocket", "1.19.2", "6.1.61", "#1 SMP",
                                  "aws", "1_1.19.2-aws"), {"variant_id": "aws"}),
    (CURRENT, "talos[0]", ("talos", "talos", "v1.5.5", "6.1.58-talos", "#1 SMP", "",
                           "1_v1.5.5"), {}),
    (CURRENT, "minikube[0]", ("minikube", "buildroot", "", "5.10.57", "#1 SMP", "",
                              "1_1.32.0"), {"etc_version": "v1.32.0"}),
    (ARM, "debian[0]", ("debian", "debian", "", "6.1.0-47-arm64",
                        "#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1", "arm64", "6.1.158-1"), {}),
    (ARM, "amazonlinux2[0]", ("amazonlinux2", "amzn", "2", "5.10.198-187.748.amzn2.aarch64",
                              "#1 SMP", "", ""), {}),
]


@pytest.mark.parametrize(("path", "label", "expect", "extra"), HOSTS,
                         ids=[f"{p.parent.name}/{p.name}:{label}" for p, label, _, _ in HOSTS])
def test_each_entry_becomes_the_host_the_loader_would_see(
        path: Path, label: str, expect: tuple[str, ...], extra: dict[str, Any]) -> None:
    kernel = by_label(load_crawler(str(path)))[label]
    host = kernel.host
    assert (kernel.target, host.os_id, host.version_id, host.uname_r, host.uname_v,
            kernel.flavor, kernel.package_version) == expect
    assert host.uname_m == ("aarch64" if path == ARM else "x86_64")
    for name in ("variant_id", "etc_version"):
        assert getattr(host, name) == extra.get(name, HostFacts.__dataclass_fields__[name]
                                                .default)


def test_header_packages_one_per_file_with_kind_and_url() -> None:
    kernels = by_label(load_crawler(str(OLD)))
    gke = kernels["Ubuntu[1]"]  # the same .deb from two mirrors is one header package
    assert [h.name for h in gke.headers] == [
        "linux-headers-4.15.0-1032-gke_4.15.0-1032.34_amd64.deb",
        "linux-gke-4.15-headers-4.15.0-1032_4.15.0-1032.34_amd64.deb"]
    assert gke.headers[0].url.startswith("https://mirror.example/ubuntu/pool/main/l/")
    assert kernels["CentOS[0]"].headers == (HeaderPackage(
        "kernel-devel-3.10.0-1160.el7.x86_64.rpm",
        "https://centos.mirror.example/7.9.2009/os/x86_64/Packages/"
        "kernel-devel-3.10.0-1160.el7.x86_64.rpm", kind="rpm"),)
    assert {h.kind for h in kernels["Debian[0]"].headers} == {"deb"}
    assert len(kernels["Debian[0]"].headers) == 6
    assert kernels["Minikube[0]"].kernelconfigdata.startswith("Q09ORklH")


def test_a_header_file_we_cannot_unpack_is_a_note_and_the_kernel_stays() -> None:
    found = load_crawler(str(OLD))
    assert [str(n) for n in found.notes] == [
        f"{OLD}: record Flatcar[0] field 'headers': item 0: flatcar_developer_container.bin.bz2"
        " is not a .deb, .rpm or tarball; the kernel is listed without it (building it needs "
        "another backend)"]
    assert by_label(found)["Flatcar[0]"].headers == ()


# --- junk: every problem located, the rest still listed ------------------------------------

JUNK_PROBLEMS = [
    ("Ubuntu[1]", "kernelrelease", "missing required key 'kernelrelease'"),
    ("Ubuntu[2]", "kernelrelease", "'../../etc/passwd' is not allowed: letters, digits and "
                                   ". _ + ~ - (as `uname -r` prints)"),
    ("Ubuntu[3]", "kernelrelease", "'5.15.0\\x00-1' is not allowed: letters, digits and "
                                   ". _ + ~ - (as `uname -r` prints)"),
    ("Ubuntu[4]", "kernelrelease", "'<script>alert(1)</script>' is not allowed: letters, "
                                   "digits and . _ + ~ - (as `uname -r` prints)"),
    ("Ubuntu[5]", "kernelrelease", "'5.15.0 -1-generic' is not allowed: letters, digits and "
                                   ". _ + ~ - (as `uname -r` prints)"),
    ("Ubuntu[6]", "target", "'ubuntu/../../x' is not allowed: lowercase letters, digits, "
                            "'.', '_' and '-'"),
    ("Ubuntu[7]", "kernelversion", "must be a string, got a boolean True"),
    ("Ubuntu[8]", "kernelversion", "must be a string, got a list [1]"),
    ("Ubuntu[9]", "headers", "must be a list, got a string 'https://mirror.example/ubuntu/"
                             "pool/main/l/linux/linux-he..."),
    ("Ubuntu[10]", "headers", "item 0: 'javascript:alert(1)' is not allowed: an http, https "
                              "or file URL in printable ASCII without spaces or quotes"),
    ("Ubuntu[11]", "headers", "item 0: must be a URL string, got 7"),
    ("Ubuntu[12]", "headers", "item 0: 'https://mirror.example/pool/..' does not end in a "
                              "usable file name"),
    ("Ubuntu[13]", None, "expected kernel-crawler entry as a mapping, got a string"),
    ("Ubuntu[14]", "kernelrelease", "the same kernel as Ubuntu[0]"),
    ("Debian[0]", "kernelrelease", "'6.1.158-1' is not <debian package version>-<flavor> "
                                   "(like 6.1.158-1-amd64)"),
    ("Debian[1]", "kernelversion", "'1\\n2' is not allowed: letters, digits and . _ + ~ - "
                                   "(the digits after # in `uname -v`)"),
    ("Minikube[0]", "kernelversion", "'37' is not like 1_1.26.0 (1_<minikube version>)"),
    ("Minikube[1]", "kernelconfigdata", "is not valid base64"),
    ("AmazonLinux2[0]", "kernelrelease", "'5.10.198-187.748.amzn2.aarch64' is a kernel for "
                                         "aarch64 but the list is read as x86_64 (give the "
                                         "list's architecture with --arch)"),
    ("Fedora", None, "must be a list of kernels, got {'kernelrelease': '6.5.6-300.fc39.x86_64'}"),
]


def test_everything_wrong_fixture_reports_each_problem_and_lists_the_rest() -> None:
    found = load_crawler(str(JUNK))
    assert [(p.record, p.field, p.message) for p in found.problems] == JUNK_PROBLEMS
    assert all(p.path == str(JUNK) for p in found.problems)
    # The two good entries survive, one with an unknown key and an upper-case target.
    assert [(label, k.target, k.host.uname_r) for label, k in by_label(found).items()] == [
        ("Ubuntu[0]", "ubuntu-generic", "5.15.0-100-generic"),
        ("Ubuntu[15]", "ubuntu-generic", "5.15.0-9-generic")]
    assert found.entries == 21


@pytest.mark.parametrize(("text", "message"), [
    ("[]", "a kernel-crawler list is a JSON object mapping distro names to lists of kernels, "
           "got list"),
    ('{"Ubuntu": [', "list.json:1: invalid JSON: Expecting value (column 13)"),
    ("", "list.json:1: invalid JSON: Expecting value (column 1)"),
])
def test_a_file_that_is_not_a_list_at_all_is_bad_input(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_crawler_text(text, "somewhere/list.json")


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"{tmp_path}/nope.json: no such file"):
        load_crawler(str(tmp_path / "nope.json"))


# --- where a list comes from: paths, file:// and http:// URLs, and its architecture ----------

@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """The test data over real HTTP on loopback."""
    with serving(files(LISTS)) as url:
        yield url


def test_lists_load_from_http_and_file_urls_with_the_arch_from_the_path(served: str) -> None:
    over_http = load_crawler(f"{served}/aarch64/list.json")
    assert {k.arch for k in over_http.kernels} == {"aarch64"}
    assert over_http.kernels[0].source == f"kernel-crawler:{served}/aarch64/list.json"
    over_file = load_crawler(ARM.as_uri())
    assert [k.key for k in over_file.kernels] == [k.key for k in over_http.kernels]
    with pytest.raises(StoreError, match="404"):
        load_crawler(f"{served}/x86_64/missing.json")


def test_explicit_arch_wins_and_mismatched_entries_are_junk() -> None:
    found = load_crawler(str(ARM), arch="x86_64")
    assert {k.arch for k in found.kernels} == {"x86_64"}
    assert [(p.record, p.field) for p in found.problems] == [("amazonlinux2[0]", "kernelrelease"),
                                                           ("debian[0]", "kernelrelease")]


# --- the real 2022 list ----------------------------------------------------------------------

@needs_2022
def test_the_2022_list_loads_whole() -> None:
    found = load_crawler(str(LIST_2022))
    assert len(found.kernels) == found.entries == 4450
    assert found.distros == ("AmazonLinux", "AmazonLinux2", "AmazonLinux2022", "CentOS",
                             "Fedora", "Oracle6", "Oracle7", "Oracle8", "PhotonOS", "Debian",
                             "Ubuntu", "Flatcar", "Minikube")
    assert found.problems == ()
    assert len(found.notes) == 282  # every Flatcar developer container image
    assert len({k.key for k in found.kernels}) == 4450


# Why a 2022 entry's own name is not what the newest loader (falcoctl, Falco 0.43)
# computes for the host that entry stands for. Everything else must match exactly.
NAMING_EXCEPTIONS = {
    # falcoctl refuses eBPF below 4.14 on x86_64 (and select.py skips these by default).
    "below-minimum": 1434,
    # Old lists say oracle6/7/8; a host's os-release says ID=ol, which is the target.
    "oracle-n": 236,
    # Old lists say photonOS and keep .x86_64 in the release; hosts say photon, no suffix.
    "photon-arch-suffix": 190,
    # Debian backports (~bpo11+1, ~deb9u1): the loader keeps only X.Y.Z-N of the version.
    "debian-backport-version": 5,
    # Old lists append the archive folder to target and release (ubuntu-gke-4.15,
    # 4.15.0-1032-gke-4.15); hosts run 4.15.0-1032-gke and the loader says ubuntu-gke.
    "ubuntu-suffixed": 713,
    # ubuntu-hwe*/ubuntu-lts-* are driverkit names: such hosts run -generic kernels.
    "ubuntu-hwe-lts": 234,
    # Flavors with a dash (azure-cvm, intel-iotg): the loader keeps the first word.
    "ubuntu-multiword-flavor": 23,
}


def _naming_exception(want: tuple[str, str, str], got: tuple[str, str, str] | None,
                      reason: str) -> str:
    target, release, version = want
    if got is None:
        return "below-minimum" if "refuses eBPF below kernel" in reason else reason
    if target.startswith("oracle") and got == ("ol", release, version):
        return "oracle-n"
    if target == "photonos" and got == ("photon", release.removesuffix(".x86_64"), version):
        return "photon-arch-suffix"
    if target == "debian" and "~" in release and (got[0], got[2]) == ("debian", version):
        return "debian-backport-version"
    if target.startswith(("ubuntu-hwe", "ubuntu-lts-")) and got[0] == "ubuntu-generic":
        return "ubuntu-hwe-lts"
    if target.startswith("ubuntu-") and got[2] == version and release.startswith(got[1]):
        return "ubuntu-suffixed" if release != got[1] else "ubuntu-multiword-flavor"
    return f"unexplained: {want} -> {got}"


@needs_2022
def test_the_2022_hosts_get_their_entry_names_from_the_newest_loader() -> None:
    naming = pytest.importorskip("builder.core.naming")
    raw = json.loads(LIST_2022.read_text())
    found = load_crawler(str(LIST_2022))
    exceptions: Counter[str] = Counter()
    for label, kernel in by_label(found).items():
        key, index = label.removesuffix("]").split("[")
        entry = raw[key][int(index)]
        want = (entry["target"].lower(), entry["kernelrelease"], str(entry["kernelversion"]))
        try:
            name = naming.probe_name(kernel.host, naming.LATEST_RULES)
        except naming.NoRequest as exc:
            exceptions[_naming_exception(want, None, exc.reason)] += 1
            continue
        got = (name.target, name.kernel_release, name.kernel_version)
        if got != want:
            exceptions[_naming_exception(want, got, "")] += 1
    assert dict(exceptions) == NAMING_EXCEPTIONS
    assert 4450 - sum(exceptions.values()) == 1615


@pytest.mark.parametrize(("data", "message"), [
    (b"[" * 100_000, "invalid JSON: nested too deeply to read"),
    (b'{"Debian": [{"kernelversion": ' + b"7" * 5000 + b"}]}", "Exceeds the limit"),
    (b'{"Debian": "\xff"}', "list.json:1: not UTF-8"),
], ids=["nested", "long integer", "not UTF-8"])
def test_kernel_lists_refused_with_their_location(tmp_path: Path, data: bytes,
                                                  message: str) -> None:
    path = tmp_path / "list.json"
    path.write_bytes(data)
    with pytest.raises(InputError) as excinfo:
        load_crawler(str(path))
    assert message in excinfo.value.message


def test_kernel_list_over_its_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALCO_PROBES_LIMIT_KERNEL_LIST", "1K")
    path = tmp_path / "list.json"
    path.write_text("{}" + " " * 2000)
    with pytest.raises(InputError, match="is 2002 bytes; a kernel-crawler list"):
        load_crawler(str(path))
    with pytest.raises(InputError, match="is a device, not a regular file"):
        load_crawler("/dev/zero")


def test_a_served_kernel_list_cannot_name_local_files(hostile: str) -> None:
    found = load_crawler(f"{hostile}/kernels.json")
    assert [k.host.uname_r for k in found.kernels] == ["4.14.77-70.0.amzn1.x86_64"]
    assert [(p.record, p.field, p.message) for p in found.problems] == [
        ("AmazonLinux[1]", "headers", "header URL 'file:///etc/Packages/kernel-devel-4.14.77-"
                                      "70.1.amzn1.x86_64.rpm': a list fetched over the network "
                                      "may only name http(s) URLs")]


def test_kernel_list_over_http_is_bounded(hostile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALCO_PROBES_LIMIT_KERNEL_LIST", "1M")
    with pytest.raises(InputError, match="is larger; a kernel-crawler list"):
        load_crawler(f"{hostile}/endless/list.json")
