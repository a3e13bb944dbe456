"""The built site in real headless Chromium (Debian's chromium, driven by Playwright).

The fixture site (tests/sitecatalog.py) is built with `mkdocs build --strict` and
served by a loopback http.server. Every request to another host is refused and
fails the test, as does any console error. Expected answers are computed in
Python with builder.core.naming and the loaded catalog, the way `falco-probes find`
answers, so the browser must agree with it.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from sitecatalog import (
    DRIVERS,
    PROBES_YAML,
    STORE_URL,
    Fixture,
    Host,
    build_fixture,
    hosts,
    write_catalog,
)
from test_site_build import mkdocs_build

from builder.core.catalog import Catalog, load_catalog
from builder.core.naming import NoRequest, names_for_driver, probe_name, request_path
from builder.core.versions import FalcoVersion

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@dataclass
class Site:
    url: str
    fixture: Fixture
    catalog: Catalog
    context: Any
    external: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def page(self, path: str = "") -> Any:
        page = self.context.new_page()
        page.on("console", lambda msg: self.errors.append(f"console: {msg.text}")
                if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.goto(self.url + path, wait_until="load")
        return page


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Fixture, Catalog]]:
    root = tmp_path_factory.mktemp("site-browser")
    fixture = write_catalog(root / "catalog", build_fixture())
    (root / "probes.yaml").write_text(PROBES_YAML)
    mkdocs_build(root / "site", root / "catalog", root / "probes.yaml")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(Quiet, directory=str(root / "site")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", fixture, load_catalog(root / "catalog")
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser_context(served: tuple[str, Fixture, Catalog],
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), headless=True,
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield context
        context.close()


@pytest.fixture
def site(served: tuple[str, Fixture, Catalog], browser_context: Any) -> Iterator[Site]:
    url, fixture, catalog = served
    state = Site(url, fixture, catalog, browser_context)

    def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            state.external.append(route.request.url)
            route.abort()

    browser_context.route("**/*", only_loopback)
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url[:-1])
    yield state
    browser_context.unroute("**/*")
    for page in browser_context.pages:
        page.close()
    assert state.external == [], "requests to other hosts"
    assert state.errors == [], "console errors"


# --- find my probe --------------------------------------------------------------------------

def fill_find(page: Any, host: Host, falco: str = "", driver: str = "",
              fallback: str = "") -> dict[str, str]:
    page.wait_for_selector("#fp-find[data-fp-ready]")
    if host.etc_version is not None or fallback:
        page.click("#fp-find details summary")
        page.fill("#fp-etc", (host.etc_version or "").strip())
        page.select_option("#fp-fallback", fallback)
    page.fill("#fp-os", host.os_release or "")
    page.fill("#fp-v", host.uname_v)
    page.fill("#fp-m", host.uname_m)
    page.fill("#fp-falco", falco)
    page.select_option("#fp-driver", driver)
    page.fill("#fp-r", host.uname_r)   # typed last, as a user would
    return answer(page)


def answer(page: Any) -> dict[str, str]:
    page.wait_for_function("""() => { const f = window.FalcoProbesFinder;
        return f && f.result.dataset.seq === String(f.sequence); }""")
    result = page.locator("#fp-result")
    return {"state": result.get_attribute("data-state") or "", "text": result.inner_text()}


def expected(site: Site, host: Host, falco: str, driver: str = "") -> dict[str, Any]:
    """What `falco-probes find` would say: the name, and the catalog's probe or failure."""
    version = FalcoVersion.parse(falco)
    name = probe_name(host.facts(), version)
    driver = driver or next(d for d, falcos in DRIVERS.items() if falco in falcos)
    return {"name": name, "driver": driver,
            "path": request_path(driver, name, version),
            "probe": site.catalog.lookup(driver, name.arch, name.file),
            "failure": site.catalog.failure_for(driver, name.arch, name.file)}


def pick_built(site: Site, test: Any, falco: str) -> Host:
    """The first fixture host passing `test` whose probe for `falco` is in the catalog."""
    for host in hosts():
        if test(host) and expected(site, host, falco)["probe"] is not None:
            return host
    raise AssertionError("no such host in the fixture")


FOUND_CASES = [
    # (label, which host, Falco version)
    ("debian, 0.35.0 (cloud kernel asks the amd64 name: an alias)",
     lambda h: h.uname_r.endswith("-cloud-amd64"), "0.35.0"),
    ("debian, 0.35.1 (release rebuilt from uname -v)",
     lambda h: h.uname_r.endswith("-cloud-amd64"), "0.35.1"),
    ("debian arm64, falcoctl 0.37.1", lambda h: h.uname_r.endswith("-arm64"), "0.37.1"),
    ("ubuntu-generic HWE, 0.36.2 (kernel version like 66~20.04.1)",
     lambda h: h.uname_r.endswith("-generic") and "~" in h.uname_v, "0.36.2"),
    ("ubuntu-generic, 0.35.0", lambda h: h.uname_r.endswith("-generic"), "0.35.0"),
    ("ubuntu-aws, falcoctl 0.37.0", lambda h: h.uname_r.endswith("-aws"), "0.37.0"),
    ("ubuntu-aws aarch64, 0.36.1",
     lambda h: h.uname_r.endswith("-aws") and h.uname_m == "aarch64", "0.36.1"),
    ("amazonlinux2 x86_64, 0.36.0", lambda h: h.uname_r.endswith("amzn2.x86_64"), "0.36.0"),
    ("amazonlinux2 aarch64, falcoctl 0.37.1", lambda h: h.uname_r.endswith("amzn2.aarch64"),
     "0.37.1"),
    ("minikube, 0.35.1 (kernel version from /etc/VERSION)",
     lambda h: h.etc_version is not None, "0.35.1"),
]


@pytest.mark.parametrize(("label", "choose", "falco"), FOUND_CASES,
                         ids=[c[0].split(" (")[0] for c in FOUND_CASES])
def test_find_my_probe_found(site: Site, label: str, choose: Any, falco: str) -> None:
    host = pick_built(site, choose, falco)
    want = expected(site, host, falco)
    page = site.page()
    got = fill_find(page, host, falco)
    assert got["state"] == "found", got["text"]
    name, probe = want["name"], want["probe"]
    assert name.file in got["text"] and probe.sha256 in got["text"]
    curl = (f'curl -fLo {name.file} {probe.url} && echo "{probe.sha256}  {name.file}" '
            "| sha256sum -c")
    assert curl in got["text"]
    if FalcoVersion.parse(falco) < FalcoVersion(0, 37, 0):
        assert f"DRIVERS_REPO={STORE_URL} falco-driver-loader bpf" in got["text"]
    else:
        assert f"FALCOCTL_DRIVER_REPOS={STORE_URL} falcoctl driver install --type ebpf" in \
            got["text"]
    assert f"{STORE_URL}/{want['path']}" in got["text"]
    if probe.file != name.file:
        assert f"Published as {probe.file}" in got["text"]
    # Permalink: the inputs are in the address bar, and reopening it gives the same answer.
    again = site.page(urlsplit(page.url).path.lstrip("/") + "?" + urlsplit(page.url).query)
    assert answer(again) == got


def test_find_a_failed_build(site: Site) -> None:
    failure = site.fixture.failures[0]
    host, falco = _host_for(site, failure.driver_version, failure.arch, failure.file)
    page = site.page()
    got = fill_find(page, host, falco)
    assert got["state"] == "failed", got["text"]
    assert failure.reason in got["text"] and "Build log" in got["text"]
    assert page.locator("#fp-result a", has_text="Build log").get_attribute("href") == \
        failure.log


def _host_for(site: Site, driver: str, arch: str, file: str) -> tuple[Host, str]:
    falcos = DRIVERS[driver]
    for host in hosts():
        name, _ = names_for_driver(host.facts(), [FalcoVersion.parse(f) for f in falcos])
        if name.file == file and name.arch == arch:
            return host, falcos[-1]
    raise AssertionError(f"no fixture host named {file}")


def test_find_a_probe_not_built_yet(site: Site) -> None:
    driver, host = site.fixture.unbuilt[0]
    falco = DRIVERS[driver][-1]
    want = expected(site, host, falco)
    assert want["probe"] is None and want["failure"] is None
    got = fill_find(site.page(), host, falco)
    assert got["state"] == "missing", got["text"]
    assert "Not built yet" in got["text"] and want["name"].file in got["text"]


CENTOS7 = Host('NAME="CentOS Linux"\nID="centos"\nVERSION_ID="7"\n', "3.10.0-1160.el7.x86_64",
               "#1 SMP Mon Oct 19 16:18:59 UTC 2020", "x86_64")


def test_find_a_kernel_too_old(site: Site) -> None:
    got = fill_find(site.page(), CENTOS7, "0.36.2")
    assert got["state"] == "too-old", got["text"]
    assert "Kernel too old" in got["text"] and "4.14" in got["text"]
    assert "falco_centos_3.10.0-1160.el7.x86_64_1.o" in got["text"]


def test_find_when_falcoctl_refuses_the_kernel(site: Site) -> None:
    got = fill_find(site.page(), CENTOS7, "0.38.0", driver="7.0.0+driver")
    assert got["state"] == "none", got["text"]
    with pytest.raises(NoRequest) as refused:
        probe_name(CENTOS7.facts(), FalcoVersion.parse("0.38.0"))
    assert refused.value.reason in got["text"]


def test_find_when_the_loader_requests_nothing(site: Site) -> None:
    no_os = Host(None, "5.10.0", "#1 SMP Mon Jan 1 00:00:00 UTC 2024", "x86_64")
    got = fill_find(site.page(), no_os, "0.36.2")
    assert got["state"] == "none" and "target undetermined" in got["text"]
    with_fallback = fill_find(site.page(), no_os, "0.36.2", fallback="debian")
    assert with_fallback["state"] == "missing" and "falco_debian_5.10.0_1.o" in \
        with_fallback["text"]


@pytest.mark.parametrize(("falco", "driver", "state", "text"), [
    ("0.38.0", "", "error", "does not know which driver version Falco 0.38.0 loads"),
    ("0.44.0", "", "error", "outside the supported range"),
    ("zero", "", "error", "is not a version"),
    ("", "", "error", "Pick a Falco version or a driver version"),
    ("", "6.0.1+driver", "found", "falco-driver-loader of Falco 0.36.2"),
    ("0.36.2", "5.0.1+driver", "found", "DRIVER_VERSION=5.0.1+driver"),
])
def test_find_falco_and_driver_choices(site: Site, falco: str, driver: str, state: str,
                                       text: str) -> None:
    host = next(h for h in hosts() if h.uname_r.endswith("amzn2.x86_64") and all(
        expected(site, h, "0.36.2", d)["probe"] for d in ("5.0.1+driver", "6.0.1+driver")))
    got = fill_find(site.page(), host, falco, driver)
    assert got["state"] == state and text in got["text"], got


def test_find_rejects_hostile_input_as_text(site: Site) -> None:
    page = site.page()
    evil = Host("ID=<img src=x onerror=alert(1)>\n", "5.10.0<script>", "#1 <b>x</b>", "x86_64")
    got = fill_find(page, evil, "0.36.2")
    assert got["state"] == "error" and "uname -r" in got["text"]
    assert page.locator("#fp-result img, #fp-result script, #fp-result b").count() == 0


def test_find_other_arches(site: Site) -> None:
    i686 = Host('ID=debian\nVERSION_ID="11"\n', "5.10.0-22-686-pae",
                "#1 SMP Debian 5.10.178-3 (2023-04-22)", "i686")
    got = fill_find(site.page(), i686, "0.36.2")
    assert got["state"] == "missing" and "x86_64 and aarch64 only" in got["text"]


def test_copy_buttons_copy_the_digest_and_the_download_line(site: Site) -> None:
    host = pick_built(site, lambda h: h.uname_r.endswith("amzn2.x86_64"), "0.36.0")
    want = expected(site, host, "0.36.0")
    page = site.page()
    fill_find(page, host, "0.36.0")
    copied = click_copy(page, page.locator("#fp-result .fp-copyline", has_text="sha256sum -c"))
    assert copied.startswith(f"curl -fLo {want['name'].file} ") and copied.endswith(
        "| sha256sum -c")
    line = page.locator("#fp-result .fp-copyline", has_text=want["probe"].sha256).first
    assert click_copy(page, line) == want["probe"].sha256
    table = site.page("drivers/6.0.1%2Bdriver/amazonlinux2/")
    table.wait_for_selector("#fp-table[data-fp-ready]")
    row = table.locator("#fp-table tbody tr").nth(3)
    assert click_copy(table, row) == row.locator("code").first.inner_text()


def click_copy(page: Any, container: Any) -> str:
    """Click the copy button in `container`; what landed on the clipboard."""
    button = container.locator(".fp-copy")
    button.click()
    page.wait_for_function("b => b.textContent === 'copied'", arg=button.element_handle())
    text: str = page.evaluate("navigator.clipboard.readText()")
    return text


# --- tables: filters, sorting, permalinks ---------------------------------------------------

def visible_rows(page: Any) -> list[list[str]]:
    rows: list[list[str]] = page.evaluate("""() => Array.from(
        document.querySelectorAll('#fp-table tbody tr')).filter(r => !r.hidden)
        .map(r => Array.from(r.cells).map(c => c.textContent))""")
    return rows


def test_table_filter_and_permalink(site: Site) -> None:
    page = site.page("drivers/6.0.1%2Bdriver/ubuntu-generic/")
    page.wait_for_selector("#fp-table[data-fp-ready]")
    records = [r for r in site.fixture.probes
               if (r.driver_version, r.target) == ("6.0.1+driver", "ubuntu-generic")]
    assert len(visible_rows(page)) == len(records)
    page.fill(".fp-filter input[name=filter]", "5.15.0")
    rows = visible_rows(page)
    assert sorted(r[0] for r in rows) == sorted(r.kernel_release for r in records
                                                if "5.15.0" in r.kernel_release)
    assert "filter=5.15.0" in page.url
    assert page.locator(".fp-count").inner_text() == f"{len(rows)} of {len(records)} rows"
    assert page.locator(".fp-permalink").get_attribute("href").endswith("?filter=5.15.0")
    again = site.page(urlsplit(page.url).path.lstrip("/") + "?filter=5.15.0")
    again.wait_for_selector("#fp-table[data-fp-ready]")
    assert again.input_value(".fp-filter input[name=filter]") == "5.15.0"
    assert visible_rows(again) == rows


def natural(text: str) -> list[Any]:
    return [(int(p), "") if p.isdigit() else (-1, p) for p in re.findall(r"\d+|\D+", text)]


def test_table_arch_filter_and_sorting(site: Site) -> None:
    page = site.page("drivers/6.0.1%2Bdriver/ubuntu-aws/")
    page.wait_for_selector("#fp-table[data-fp-ready]")
    records = [r for r in site.fixture.probes
               if (r.driver_version, r.target, r.arch) == ("6.0.1+driver", "ubuntu-aws",
                                                           "aarch64")]
    page.select_option(".fp-filter select[name=arch]", "aarch64")
    assert {r[2] for r in visible_rows(page)} == {"aarch64"}
    assert len(visible_rows(page)) == len(records)
    assert "arch=aarch64" in page.url
    size = page.locator("#fp-table thead th", has_text="Size").locator("button")
    size.click()
    size.click()
    assert "sort=5" in page.url and "desc=1" in page.url
    shown = visible_rows(page)
    assert shown[0][0] == max(records, key=lambda r: r.size).kernel_release
    again = site.page(urlsplit(page.url).path.lstrip("/") + "?" + urlsplit(page.url).query)
    again.wait_for_selector("#fp-table[data-fp-ready]")
    assert visible_rows(again) == shown
    assert again.locator("#fp-table thead th", has_text="Size").get_attribute("aria-sort") == \
        "descending"
    again.locator("#fp-table thead th", has_text="Kernel release").locator("button").click()
    assert [r[0] for r in visible_rows(again)] == [
        r.kernel_release for r in sorted(records, key=lambda r: natural(r.kernel_release))]


def test_coverage_filter(site: Site) -> None:
    page = site.page("targets/debian/?show=failed")
    page.wait_for_selector("#fp-table[data-fp-ready]")
    rows = visible_rows(page)
    failed = {(f.kernel_release, f.arch) for f in site.fixture.failures if f.target == "debian"}
    assert {(r[0], r[2]) for r in rows} == failed
    assert all("✗" in "".join(r[3:]) for r in rows)
    page.select_option(".fp-filter select[name=show]", "missing")
    assert visible_rows(page) and all("·" in "".join(r[3:]) for r in visible_rows(page))
    assert "show=missing" in page.url


def test_failures_page_filter(site: Site) -> None:
    page = site.page("failures/")
    page.wait_for_selector("#fp-table[data-fp-ready]")
    assert len(visible_rows(page)) == len(site.fixture.failures)
    page.select_option(".fp-filter select[name=arch]", "aarch64")
    assert len(visible_rows(page)) == sum(1 for f in site.fixture.failures
                                           if f.arch == "aarch64")
    log = page.locator("#fp-table tbody tr:not([hidden]) a", has_text="log").first
    assert log.get_attribute("href", timeout=1000).startswith("https://ci.example.org/")


def test_home_links_and_charts(site: Site) -> None:
    page = site.page()
    assert page.locator("svg[role=img]").count() >= 1
    page.locator("article a", has_text="6.0.1+driver").first.click()
    page.wait_for_url(re.compile(r"/drivers/6\.0\.1(%2B|\+)driver/$"))
    page.locator("article table a", has_text="debian").first.click()
    page.wait_for_selector("#fp-table[data-fp-ready]")
    assert "debian probes for driver 6.0.1+driver" in page.locator("h1").inner_text()
    targets = site.page("targets/")
    cells = {(t, d) for d in DRIVERS for t in site.fixture.targets()
             if any(r.driver_version == d and r.target == t for r in site.fixture.probes)}
    assert targets.locator(".fp-heatmap rect").count() == len(cells)


def test_permalink_query_of_find(site: Site) -> None:
    host = pick_built(site, lambda h: h.uname_r.endswith("amzn2.x86_64"), "0.36.2")
    query = urlencode({"os": host.os_release, "r": host.uname_r, "v": host.uname_v,
                       "m": host.uname_m, "falco": "0.36.2"})
    got = answer(site.page("?" + query))
    assert got["state"] == "found"
    assert expected(site, host, "0.36.2")["name"].file in got["text"]
