"""The built site in real headless Chromium (Debian's chromium, driven by Playwright).

The fixture site (tests/helpers/sitecatalog.py) is built as `falco-probes site build`
builds it (generated pages, `mkdocs build --strict`, the API placed after it) and
served by a loopback http.server. Every request to another host is refused and
fails the test, as does any console error. Expected answers are computed in
Python with builder.core.naming and the loaded catalog, the way `falco-probes find`
answers, so the browser must agree with it. What a reader must see is checked where
they see it: at a phone's 390 px and a laptop's 1366 px, values inside the screen's
width, not merely present in the page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from sitebrowser import chromium_context, serve
from sitebuild import generated_site
from sitecatalog import (
    DRIVERS,
    PROBES_YAML,
    REPOSITORY,
    STORE_URL,
    VERIFIER,
    Fixture,
    Host,
    build_fixture,
    hosts,
    write_catalog,
)

from builder.core.catalog import Catalog, load_catalog, natural_key
from builder.core.naming import NoRequest, names_for_driver, probe_name, request_path
from builder.core.records import ProbeRecord, kernel_series
from builder.core.versions import FalcoVersion

pytestmark = pytest.mark.browser

PHONE, LAPTOP = 390, 1366
WIDTHS = [PHONE, LAPTOP]
FITS = [360, PHONE, LAPTOP]          # "fits a phone": down to 360 px
MIRROR_URL = "http://<mirror host>:8080"


@dataclass
class Site:
    url: str
    fixture: Fixture
    catalog: Catalog
    context: Any
    external: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def page(self, path: str = "", width: int = LAPTOP) -> Any:
        page = self.context.new_page()
        page.set_viewport_size({"width": width, "height": 900})
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
    site = generated_site(root, root / "catalog", root / "probes.yaml")
    with serve(site) as url:
        yield url, fixture, load_catalog(root / "catalog")


@pytest.fixture(scope="module")
def browser_context(served: tuple[str, Fixture, Catalog],
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium_context(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


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


# --- helpers ---------------------------------------------------------------------------------

def open_exact(page: Any) -> None:
    """Open "The exact file for your node", as a reader would, to reach its fields."""
    if not page.evaluate("document.getElementById('fp-exact').open"):
        page.click("#fp-exact > summary")


def fill_find(page: Any, host: Host, falco: str = "", driver: str = "",
              fallback: str = "") -> dict[str, str]:
    page.wait_for_selector("#fp-find[data-fp-ready]")
    open_exact(page)
    if host.etc_version is not None or fallback or host.os_release is None:
        page.click("#fp-find .fp-more > summary")
        page.fill("#fp-etc", (host.etc_version or "").strip())
        page.select_option("#fp-fallback", fallback or ("none" if host.os_release is None
                                                        else ""))
    page.fill("#fp-os", host.os_release or "")
    page.fill("#fp-v", host.uname_v)
    page.fill("#fp-m", host.uname_m)
    page.fill("#fp-falco", falco)
    page.select_option("#fp-driver", driver)
    page.fill("#fp-r", host.uname_r)   # typed last, as a user would
    return answer(page)


def type_release(page: Any, release: str) -> dict[str, str]:
    page.wait_for_selector("#fp-find[data-fp-ready]")
    page.fill("#fp-r", release)
    return answer(page)


def answer(page: Any) -> dict[str, str]:
    page.wait_for_function("""() => { const f = window.FalcoProbesFinder;
        return f && f.result.dataset.seq === String(f.sequence); }""")
    result = page.locator("#fp-result")
    return {"state": result.get_attribute("data-state") or "", "text": result.inner_text()}


def assert_on_screen(page: Any, locator: Any, what: str) -> None:
    """Every match is rendered and lies within the screen's width (nothing cut off)."""
    width = page.viewport_size["width"]
    assert locator.count(), f"no {what}"
    for i in range(locator.count()):
        box = locator.nth(i).bounding_box()
        assert box is not None and box["width"] > 0, (what, i)
        assert box["x"] >= -0.5 and box["x"] + box["width"] <= width + 0.5, (what, i, box)


def no_sideways_scroll(page: Any) -> None:
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "page scrolls sideways"


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


def click_copy(page: Any, button: Any) -> str:
    """Click a copy button; what landed on the clipboard."""
    handle = button.element_handle()       # the label changes: keep the element itself
    handle.click()
    page.wait_for_function("b => b.textContent === 'copied'", arg=handle)
    text: str = page.evaluate("navigator.clipboard.readText()")
    return text


def probes_of(site: Site, release: str) -> list[ProbeRecord]:
    return [r for r in site.fixture.probes if r.kernel_release == release]


# --- find my probe: the exact file -----------------------------------------------------------

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
    shell = FalcoVersion.parse(falco) < FalcoVersion(0, 37, 0)
    variable = "DRIVERS_REPO" if shell else "FALCOCTL_DRIVER_REPOS"
    command = " falco-driver-loader bpf" if shell else " falcoctl driver install --type ebpf"
    if want["driver"] == "5.0.1+driver":     # a GitHub release asset: make a mirror first
        folder = want["path"].replace("%2B", "+")
        assert (f"mkdir -p /srv/falco-probes/{folder.rsplit('/', 1)[0]} && curl -fLo "
                f"/srv/falco-probes/{folder} {probe.url}") in got["text"]
        assert (f"falco-probes mirror /srv/falco-probes --driver-version 5.0.1+driver "
                f"--target {name.target} --arch {name.arch}") in got["text"]
        assert "python3 -m http.server --directory /srv/falco-probes 8080" in got["text"]
        assert f"{variable}='{MIRROR_URL}'{command}" in got["text"]
        assert f"{MIRROR_URL}/{want['path']}" in got["text"]
        repo = MIRROR_URL
    else:                                    # a directory store: its own base URL
        assert f"{variable}={STORE_URL}{command}" in got["text"]
        assert f"{STORE_URL}/{want['path']}" in got["text"]
        assert "/srv/falco-probes" not in got["text"]
        repo = STORE_URL
    assert (f"driver:\n  kind: ebpf\n  loader:\n    initContainer:\n      env:\n"
            f'        - name: {variable}\n          value: "{repo}"') in got["text"]
    if probe.file != name.file:
        assert f"Published as {probe.file}" in got["text"]
    # Permalink: the inputs are in the address bar, and reopening it gives the same answer.
    again = site.page(urlsplit(page.url).path.lstrip("/") + "?" + urlsplit(page.url).query)
    assert answer(again) == got


def test_found_answer_says_source_load_test_job_and_provenance(site: Site) -> None:
    host = pick_built(site, lambda h: h.uname_r.endswith("amzn2.x86_64"), "0.37.1")
    want = expected(site, host, "0.37.1")
    probe = want["probe"]
    assert probe.loadtest is not None and probe.job and probe.attestation
    page = site.page()
    got = fill_find(page, host, "0.37.1")
    assert f"Compiled from\n{probe.source}" in got["text"]
    lt = probe.loadtest
    if lt.status == "passed":
        assert (f"loaded in {lt.kernel}: {lt.accepted} of {lt.total} programs accepted, "
                f"{lt.events:,} events captured") in got["text"]
        assert page.locator("#fp-result .fp-answer-title .fp-lt-passed").inner_text() == \
            "✓ loads"
    file = want["name"].file
    assert f"gh attestation verify {file} --repo {REPOSITORY}" in got["text"]
    bundle = probe.attestation.rsplit("/", 1)[1]
    assert f"gh attestation verify {file} --repo {REPOSITORY} --bundle {bundle}" in got["text"]
    for text, url in [("CI job", probe.job), ("attestation", probe.attestation),
                      ("build log", probe.log)]:
        assert page.locator("#fp-result a", has_text=text).first.get_attribute("href") == url


def test_a_rejected_probe_says_why(site: Site) -> None:
    record = next(r for r in site.fixture.probes if r.loadtest and
                  r.loadtest.status == "rejected" and r.target == "amazonlinux2")
    host, falco = _host_for(site, record.driver_version, record.arch, record.file)
    got = fill_find(site.page(), host, falco)
    assert got["state"] == "found" and record.loadtest is not None
    assert f"rejected by the verifier in {record.loadtest.kernel}" in got["text"]
    assert VERIFIER in got["text"]


def _host_for(site: Site, driver: str, arch: str, file: str) -> tuple[Host, str]:
    falcos = DRIVERS[driver]
    for host in hosts():
        name, _ = names_for_driver(host.facts(), [FalcoVersion.parse(f) for f in falcos])
        if name.file == file and name.arch == arch:
            return host, falcos[-1]
    raise AssertionError(f"no fixture host named {file}")


@pytest.mark.parametrize("width", FITS)
def test_found_answer_is_readable_on_the_screen(site: Site, width: int) -> None:
    host = pick_built(site, lambda h: h.uname_r.endswith("-aws") and "~" in h.uname_v, "0.36.2")
    page = site.page(width=width)
    got = fill_find(page, host, "0.36.2")
    assert got["state"] == "found"
    for selector, what in [("#fp-result .fp-facts dd", "answer values"),
                           ("#fp-result .fp-copyline code", "commands"),
                           ("#fp-result .fp-copy", "copy buttons"),
                           ("#fp-result .fp-file", "the file name")]:
        assert_on_screen(page, page.locator(selector), what)
    no_sideways_scroll(page)
    blank = page.evaluate("""() => { const box = document.getElementById('fp-result');
        const used = Array.from(box.children).reduce(
            (sum, child) => sum + child.getBoundingClientRect().height, 0);
        return box.getBoundingClientRect().height - used; }""")
    assert blank < 400, "the answer box is mostly blank"   # margins between its parts


def test_find_a_failed_build_with_its_class_and_log(site: Site) -> None:
    failure = next(f for f in site.fixture.failures if f.category)
    host, falco = _host_for(site, failure.driver_version, failure.arch, failure.file)
    page = site.page()
    got = fill_find(page, host, falco)
    assert got["state"] == "failed", got["text"]
    assert failure.reason in got["text"] and f"({failure.category})" in got["text"]
    assert page.locator("#fp-result a", has_text="Build log").get_attribute("href") == \
        failure.log


def test_a_failed_build_is_found_under_its_other_names(site: Site) -> None:
    """A failure's aliases: an older Falco release asks another name for the kernel."""
    for failure in site.fixture.failures:
        for host in hosts():
            for falco in DRIVERS[failure.driver_version][:-1]:
                try:
                    name = probe_name(host.facts(), FalcoVersion.parse(falco))
                except NoRequest:
                    continue
                if name.arch == failure.arch and name.file in failure.aliases:
                    got = fill_find(site.page(), host, falco)
                    assert got["state"] == "failed", got["text"]
                    assert name.file in got["text"] and failure.reason in got["text"]
                    return
    raise AssertionError("the fixture has no failure requested under an alias")


def test_not_built_yet_shows_what_is_close(site: Site) -> None:
    """An unbuilt kernel: other driver versions that have it, and the planning state."""
    for driver, host in site.fixture.unbuilt:
        falco = DRIVERS[driver][-1]
        want = expected(site, host, falco)
        others = [d for d in DRIVERS if d != driver and
                  site.catalog.lookup(d, want["name"].arch, want["name"].file)]
        if want["failure"] is None and others:
            break
    else:
        raise AssertionError("no unbuilt kernel built for another driver version")
    page = site.page()
    got = fill_find(page, host, falco)
    assert want["name"].file in got["text"]
    # PROBES_YAML plans debian kernels of 7.0.0+driver only: nothing else is promised
    planned = want["name"].target == "debian" and driver == "7.0.0+driver"
    assert ("the nightly build picks it up" if planned else "Not planned: probes.yaml ") \
        in got["text"]
    assert planned or "nightly" not in got["text"]
    assert got["state"] == ("missing" if planned else "not-planned"), got["text"]
    assert "Built for other driver versions" in got["text"]
    group = page.locator("#fp-result .fp-groups").last
    for other in others:
        record = site.catalog.lookup(other, want["name"].arch, want["name"].file)
        assert record is not None
        assert group.locator(f"a[href='{record.url}']").count() == 1
        assert other in group.inner_text() and ", ".join(DRIVERS[other]) in group.inner_text()


def test_near_misses_name_the_same_kernel_elsewhere_and_the_newest_of_its_series(
        site: Site) -> None:
    """A node whose os-release says another distribution than the kernel's, and a newer
    kernel than any built: the same kernel under another name, the newest of the series."""
    built = pick_built(site, lambda h: h.uname_r.endswith("amzn2.x86_64"), "0.36.2")
    centos = Host('ID="centos"\nVERSION_ID="7"\n', built.uname_r, built.uname_v, "x86_64")
    got = fill_find(site.page(), centos, "0.36.2")
    # centos is not in PROBES_YAML: missing, and not planned
    assert got["state"] == "not-planned" and "The same kernel under another name" in got["text"]
    assert f"falco_amazonlinux2_{built.uname_r}_1.o" in got["text"]
    newer = Host(built.os_release, "5.10.999-1.711.amzn2.x86_64", built.uname_v, "x86_64")
    got = fill_find(site.page(), newer, "0.36.2")
    mine = [r for r in site.fixture.probes if (r.driver_version, r.target, r.arch) ==
            ("6.0.1+driver", "amazonlinux2", "x86_64") and kernel_series(r.kernel_release) ==
            "5.10"]
    newest = max(mine, key=lambda r: natural_key(r.kernel_release))
    assert (f"Newest amazonlinux2 kernel of the 5.10 series with a probe for 6.0.1+driver "
            f"(x86_64): {newest.kernel_release} ({len(mine)} kernels") in got["text"]


def test_find_a_kernel_too_old(site: Site) -> None:
    got = fill_find(site.page(), CENTOS7, "0.36.2")
    assert got["state"] == "too-old", got["text"]
    assert "Kernel too old" in got["text"] and "4.14" in got["text"]
    assert "falco_centos_3.10.0-1160.el7.x86_64_1.o" in got["text"]
    assert "kernel module" in got["text"] and "driver.kind: kmod" in got["text"]


CENTOS7 = Host('NAME="CentOS Linux"\nID="centos"\nVERSION_ID="7"\n', "3.10.0-1160.el7.x86_64",
               "#1 SMP Mon Oct 19 16:18:59 UTC 2020", "x86_64")


def test_find_when_falcoctl_refuses_the_kernel(site: Site) -> None:
    got = fill_find(site.page(), CENTOS7, "0.38.0", driver="7.0.0+driver")
    assert got["state"] == "none", got["text"]
    with pytest.raises(NoRequest) as refused:
        probe_name(CENTOS7.facts(), FalcoVersion.parse("0.38.0"))
    assert refused.value.reason in got["text"] and "--type kmod" in got["text"]


def test_find_when_the_loader_requests_nothing(site: Site) -> None:
    no_os = Host(None, "5.10.0", "#1 SMP Mon Jan 1 00:00:00 UTC 2024", "x86_64")
    got = fill_find(site.page(), no_os, "0.36.2")
    assert got["state"] == "none" and "target undetermined" in got["text"]
    with_fallback = fill_find(site.page(), no_os, "0.36.2", fallback="debian")
    assert with_fallback["state"] in ("missing", "not-planned") and \
        "falco_debian_5.10.0_1.o" in \
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
    if driver and falco:   # another driver version than the release loads: said in Helm too
        assert f'- name: DRIVER_VERSION\n          value: "{driver}"' in got["text"]


def test_find_rejects_hostile_input_as_text(site: Site) -> None:
    page = site.page()
    evil = Host("ID=<img src=x onerror=alert(1)>\n", "5.10.0<script>", "#1 <b>x</b>", "x86_64")
    got = fill_find(page, evil, "0.36.2")
    assert got["state"] == "error" and "uname -r" in got["text"]
    assert page.locator("#fp-result img, #fp-result script, #fp-result b").count() == 0
    page.fill("#fp-os", "")
    page.fill("#fp-v", "")
    got = type_release(page, "<img src=x onerror=alert(1)>")
    assert got["state"] == "error" and page.locator("#fp-result img").count() == 0


def test_find_other_arches(site: Site) -> None:
    i686 = Host('ID=debian\nVERSION_ID="11"\n', "5.10.0-22-686-pae",
                "#1 SMP Debian 5.10.178-3 (2023-04-22)", "i686")
    got = fill_find(site.page(), i686, "0.36.2")
    assert got["state"] == "missing" and "x86_64 and aarch64 only" in got["text"]


# --- find my probe: uname -r alone, prefixes, pastes -------------------------------------------

@pytest.mark.parametrize("width", WIDTHS)
def test_uname_r_alone_lists_every_probe_of_the_kernel(site: Site, width: int) -> None:
    release = next(r.kernel_release for r in site.fixture.probes
                   if r.target == "amazonlinux2" and len(probes_of(site, r.kernel_release)) > 1)
    mine = probes_of(site, release)
    page = site.page(width=width)
    got = type_release(page, release)
    assert got["state"] == "kernels", got["text"]
    assert got["text"].startswith(f"{len(mine)} probes for kernel {release}")
    groups = page.locator("#fp-result h3.fp-group")
    order = [d for d in ("7.0.0+driver", "6.0.1+driver", "5.0.1+driver")
             if any(r.driver_version == d for r in mine)]
    assert [g.split(" ")[0] for g in groups.all_inner_texts()] == order   # newest first
    for driver in order:
        heading = groups.filter(has_text=driver).inner_text()
        assert "loaded by Falco " + ", ".join(DRIVERS[driver]) in heading
    for record in mine:
        item = page.locator("#fp-result li.fp-probe").filter(
            has=page.locator(f"a[href='{record.url}']"))
        assert item.count() == 1
        assert item.locator("a").inner_text() == record.file
        assert_on_screen(page, item.locator(".fp-file"), "file name")
        assert_on_screen(page, item.locator(".fp-copy"), "copy buttons")
        digest = item.locator(".fp-copy", has_text="sha256")
        assert digest.inner_text() == f"sha256 {record.sha256[:12]}…"
    no_sideways_scroll(page)
    first = page.locator("#fp-result li.fp-probe .fp-copy", has_text="sha256").first
    record = next(r for r in mine if r.url == page.locator(
        "#fp-result li.fp-probe a").first.get_attribute("href"))
    assert click_copy(page, first) == record.sha256
    assert "paste the output of" in got["text"]


def test_a_prefix_lists_matching_releases_and_narrows_on_click(site: Site) -> None:
    page = site.page(width=PHONE)
    got = type_release(page, "5.10.18")
    releases = sorted({r.kernel_release for r in site.fixture.probes
                       if r.kernel_release.startswith("5.10.18")} |
                      {f.kernel_release for f in site.fixture.failures
                       if f.kernel_release.startswith("5.10.18")}, key=natural_key)
    assert got["state"] == "kernels"
    assert f"{len(releases)} kernel releases start with “5.10.18”" in got["text"]
    links = page.locator("#fp-result .fp-releases a")
    assert links.all_inner_texts() == releases[:24]
    links.nth(1).click()
    got = answer(page)
    assert got["text"].startswith(f"{len(probes_of(site, releases[1]))} probes for kernel "
                                  f"{releases[1]}")
    assert page.input_value("#fp-r") == releases[1]
    every = sorted({r.kernel_release for r in site.fixture.probes
                    if r.kernel_release.startswith("5")} |
                   {f.kernel_release for f in site.fixture.failures
                    if f.kernel_release.startswith("5")})
    assert f"{len(every)} kernel releases start with “5”" in type_release(page, "5")["text"]


def test_missing_uname_v_asks_for_it_instead_of_a_verdict(site: Site) -> None:
    host = pick_built(site, lambda h: h.uname_r.endswith("amzn2.x86_64"), "0.36.2")
    blank = Host(host.os_release, host.uname_r, "", host.uname_m)
    got = fill_find(site.page(), blank, "0.36.2")
    assert got["state"] == "kernels", got["text"]
    assert got["text"].startswith("Fill in uname -v") or "Fill in uname -v" in got["text"]
    assert "Not built yet" not in got["text"] and "_.o" not in got["text"]
    for record in probes_of(site, host.uname_r):
        assert (record.file in got["text"]) == (record.target == "amazonlinux2")


COMMAND_OUTPUT = "{os}{r}\n{v}\n{m}\n"


@pytest.mark.parametrize("box", ["#fp-r", "#fp-os", "#fp-v"])
def test_pasting_the_whole_command_output_fills_every_field(site: Site, box: str) -> None:
    host = pick_built(site, lambda h: h.uname_r.endswith("-generic") and "~" in h.uname_v,
                      "0.36.2")
    text = COMMAND_OUTPUT.format(os=host.os_release, r=host.uname_r, v=host.uname_v,
                                 m=host.uname_m)
    page = site.page(width=PHONE)
    page.wait_for_selector("#fp-find[data-fp-ready]")
    open_exact(page)
    page.fill("#fp-falco", "0.36.2")
    page.evaluate("text => navigator.clipboard.writeText(text)", text)
    page.focus(box)
    page.keyboard.press("Control+V")
    got = answer(page)
    assert page.input_value("#fp-r") == host.uname_r
    assert page.input_value("#fp-v") == host.uname_v
    assert page.input_value("#fp-m") == host.uname_m
    assert page.input_value("#fp-os") == host.os_release
    want = expected(site, host, "0.36.2")
    assert got["state"] == "found" and want["name"].file in got["text"], got["text"]


# --- the header search finds kernel releases --------------------------------------------------

@pytest.mark.parametrize("width", WIDTHS)
def test_header_search_leads_to_the_kernel_answer(site: Site, width: int) -> None:
    release = next(r.kernel_release for r in site.fixture.probes if r.target == "debian")
    page = site.page("drivers/6.0.1%2Bdriver/debian/", width=width)
    assert page.locator("script[src*='javascripts/bundle']").count() == 0   # on demand
    if width >= 1220:
        page.click(".md-search__input")
    else:
        page.click("label.md-header__button[for=__search]")
    page.wait_for_selector("script[src*='javascripts/bundle']", state="attached")
    assert page.get_attribute(".md-search[role=dialog]", "aria-label") == "Search"
    page.locator(".md-search__input").press_sequentially(release, delay=20)
    hint = page.locator(".fp-search-kernel a")
    hint.wait_for()
    count = len(probes_of(site, release))
    assert hint.inner_text() == (f"{count} probe{'s' if count > 1 else ''} for kernel release "
                                 f"{release} →")
    hint.click()
    page.wait_for_url(re.compile(r"/\?r="))
    got = answer(page)
    assert got["state"] == "kernels" and release in got["text"]


# --- keyboard ---------------------------------------------------------------------------------

def tab_to(page: Any, test: str, what: str, most: int) -> int:
    """Press Tab until `test` (JavaScript on document.activeElement, as `el`) holds;
    how many presses it took (at most `most`)."""
    for presses in range(1, most + 1):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return {test}; }})()"):
            return presses
    raise AssertionError(f"{what} is not within {most} Tab presses")


def skip_to_content(page: Any) -> None:
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('md-skip')")
    page.keyboard.press("Enter")


def test_keyboard_only_from_skip_link_to_a_copied_digest(site: Site) -> None:
    release = next(r.kernel_release for r in site.fixture.probes if r.target == "minikube")
    page = site.page()
    page.wait_for_selector("#fp-find[data-fp-ready]")
    skip_to_content(page)
    tab_to(page, "el.id === 'fp-r'", "the find box", 3)
    page.keyboard.type(release)
    answer(page)
    tab_to(page, "el.matches('#fp-result .fp-copy')", "a copy button", 30)
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement.textContent === 'copied'")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied in {r.sha256 for r in probes_of(site, release)}


def test_keyboard_only_filters_and_sorts_a_table(site: Site) -> None:
    page = site.page("drivers/6.0.1%2Bdriver/ubuntu-aws/")
    skip_to_content(page)
    tab_to(page, "el.name === 'filter'", "the filter box", 12)
    page.keyboard.type("5.15")
    assert all(r[0].startswith("5.15") for r in visible_rows(page))
    tab_to(page, "el.textContent === 'Size'", "the Size sort button", 12)
    page.keyboard.press("Enter")
    header = page.locator("#fp-table thead th", has_text="Size").first
    assert header.get_attribute("aria-sort") == "ascending"


# --- tables: filters, sorting, permalinks, one line per row ------------------------------------

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
    assert page.locator(".fp-count").inner_text() == f"{len(records)} rows"
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
    digest = records[0].sha256[20:36]           # the whole digest is searchable, not shown
    again.fill(".fp-filter input[name=filter]", digest)
    assert [r[0] for r in visible_rows(again)] == [records[0].kernel_release]


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
    size = page.locator("#fp-table thead th", has_text="Size").first.locator("button")
    size.click()
    size.click()
    assert "sort=5" in page.url and "desc=1" in page.url
    shown = visible_rows(page)
    assert shown[0][0] == max(records, key=lambda r: r.size).kernel_release
    again = site.page(urlsplit(page.url).path.lstrip("/") + "?" + urlsplit(page.url).query)
    again.wait_for_selector("#fp-table[data-fp-ready]")
    assert visible_rows(again) == shown
    assert again.locator("#fp-table thead th", has_text="Size").first.get_attribute(
        "aria-sort") == "descending"
    again.locator("#fp-table thead th", has_text="Kernel release").first.locator(
        "button").click()
    assert [r[0] for r in visible_rows(again)] == [
        r.kernel_release for r in sorted(records, key=lambda r: natural(r.kernel_release))]


@pytest.mark.parametrize("width", WIDTHS)
def test_table_rows_are_one_line_and_sortable_columns_say_so(site: Site, width: int) -> None:
    page = site.page("drivers/7.0.0%2Bdriver/ubuntu-aws/", width=width)
    page.wait_for_selector("#fp-table[data-fp-ready]")
    heights = page.evaluate("""() => Array.from(document.querySelectorAll('#fp-table tbody tr'))
        .map(r => r.getBoundingClientRect().height)""")
    line = page.evaluate("""() => parseFloat(getComputedStyle(
        document.querySelector('#fp-table tbody td')).lineHeight)""")
    assert heights and max(heights) < 2 * line, (heights, line)  # one line, never wrapped
    arrows = page.evaluate("""() => Array.from(document.querySelectorAll(
        '#fp-table thead th[data-sort] .fp-sort')).filter(b => b.offsetParent).map(
        b => getComputedStyle(b, '::after').content)""")
    assert arrows[0] == '" ▲"' and set(arrows[1:]) == {'" ↕"'}   # before any click
    no_sideways_scroll(page)                   # the table scrolls in its own box
    assert page.locator("#fp-table .fp-lt-rejected").count() == sum(
        1 for r in site.fixture.probes if (r.driver_version, r.target) == (
            "7.0.0+driver", "ubuntu-aws") and r.loadtest and r.loadtest.status == "rejected")
    link = page.locator("a.fp-lt-rejected").first
    link.click()
    target = link.get_attribute("href").lstrip("#")
    assert VERIFIER in page.locator(f"li[id='{target}']").inner_text()


def test_table_copy_button_copies_the_whole_digest(site: Site) -> None:
    table = site.page("drivers/6.0.1%2Bdriver/amazonlinux2/")
    table.wait_for_selector("#fp-table[data-fp-ready]")
    row = table.locator("#fp-table tbody tr").nth(3)
    file = row.locator("td a").first.inner_text()
    record = next(r for r in site.fixture.probes if r.file == file and
                  r.driver_version == "6.0.1+driver")
    assert click_copy(table, row.locator(".fp-copy")) == record.sha256


@pytest.mark.parametrize("width", FITS)
def test_coverage_fits_the_screen_with_every_driver(site: Site, width: int) -> None:
    page = site.page("targets/debian/?show=failed", width=width)
    page.wait_for_selector("#fp-table[data-fp-ready]")
    rows = visible_rows(page)
    failed = {(f.kernel_release, f.arch) for f in site.fixture.failures if f.target == "debian"}
    assert {(r[0].split(" ")[0], r[0].split(" ")[-1]) for r in rows} == failed
    assert all("✗" in "".join(r[1:]) for r in rows)
    no_sideways_scroll(page)
    first = page.locator("#fp-table tbody tr:not([hidden])").first
    assert_on_screen(page, first.locator("td"), "driver cells")
    assert_on_screen(page, first.locator("th"), "the kernel")
    assert_on_screen(page, page.locator(".fp-matrix td"), "series counts")
    assert_on_screen(page, page.locator(".fp-bar-value"), "chart values")
    page.select_option(".fp-filter select[name=show]", "missing")
    assert visible_rows(page) and all("·" in "".join(r[1:]) for r in visible_rows(page))
    assert "show=missing" in page.url


# A block off screen takes the height its style estimates from its row count and
# --fp-row-height (content-visibility: auto). A row taller than that makes the page jump
# while scrolling and lets the footer cover rows while their block is skipped.
ROW_HEIGHTS = """() => [...document.querySelectorAll('.fp-block')].map(b => {
  const probe = b.appendChild(document.createElement('div'));
  probe.style.height = 'var(--fp-row-height)';
  const allowed = probe.getBoundingClientRect().height + 2;   // + the row's border
  probe.remove();
  const rows = [...b.querySelectorAll('tbody tr')].map(r => r.getBoundingClientRect().height);
  return [allowed, Math.max(...rows)];
})"""


@pytest.mark.parametrize("width", FITS)
@pytest.mark.parametrize("path", ["targets/debian/", "drivers/6.0.1%2Bdriver/amazonlinux2/"])
def test_rows_are_no_taller_than_their_block_estimates(site: Site, width: int,
                                                       path: str) -> None:
    page = site.page(path, width=width)
    page.wait_for_selector("#fp-table[data-fp-ready]")
    heights = page.evaluate(ROW_HEIGHTS)
    assert heights and all(tallest <= allowed + 0.5 for allowed, tallest in heights), heights


def test_failures_page_filter_and_logs(site: Site) -> None:
    page = site.page("failures/")
    page.wait_for_selector("#fp-table[data-fp-ready]")
    assert len(visible_rows(page)) == len(site.fixture.failures)
    page.select_option(".fp-filter select[name=arch]", "aarch64")
    assert len(visible_rows(page)) == sum(1 for f in site.fixture.failures
                                           if f.arch == "aarch64")
    page.select_option(".fp-filter select[name=arch]", "")
    page.select_option(".fp-filter select[name=category]", "unsupported-kernel")
    assert len(visible_rows(page)) == sum(1 for f in site.fixture.failures
                                           if f.category == "unsupported-kernel")
    logs = page.locator("#fp-table tbody tr:not([hidden]) a", has_text="log")
    assert logs.count() == len(visible_rows(page))
    assert logs.first.get_attribute("href").startswith("https://ci.example.org/")


@pytest.mark.parametrize("width", FITS)
def test_home_and_index_pages_fit_and_link(site: Site, width: int) -> None:
    page = site.page(width=width)
    no_sideways_scroll(page)
    assert_on_screen(page, page.locator(".fp-bar-value"), "chart values")
    assert_on_screen(page, page.locator("#fp-r"), "the find box")
    underline = page.evaluate("""() => getComputedStyle(
        document.querySelector('article p a')).textDecorationLine""")
    assert "underline" in underline                       # links: not by colour alone
    page.locator("article a", has_text="6.0.1+driver").first.click()
    page.wait_for_url(re.compile(r"/drivers/6\.0\.1(%2B|\+)driver/$"))
    no_sideways_scroll(page)
    page.locator("article table a", has_text="debian").first.click()
    page.wait_for_selector("#fp-table[data-fp-ready]")
    assert "debian probes for driver 6.0.1+driver" in page.locator("h1").inner_text()
    targets = site.page("targets/", width=width)
    no_sideways_scroll(targets)
    cells = {(t, d) for d in DRIVERS for t in site.fixture.targets()
             if any(r.driver_version == d and r.target == t for r in site.fixture.probes)}
    assert targets.locator(".fp-heatmap td a").count() == len(cells)
    assert_on_screen(targets, targets.locator(".fp-heatmap td"), "heatmap cells")


def test_the_digest_list_opens_in_the_browser(site: Site) -> None:
    """probes.json (file names and digests) shows in the browser; SHA256SUMS is for
    `sha256sum -c` (issue 23: one copy of each record, no SHA256SUMS.txt)."""
    page = site.page("drivers/6.0.1%2Bdriver/")
    with page.expect_navigation():
        page.locator("article a", has_text="probes.json").first.click()
    assert page.url.endswith("probes.json")
    body = page.locator("body").inner_text()
    first = next(r for r in sorted(site.fixture.probes, key=lambda r: (r.arch, r.file))
                 if r.driver_version == "6.0.1+driver")
    assert first.sha256 in body and first.file in body


def test_permalink_query_of_find(site: Site) -> None:
    host = pick_built(site, lambda h: h.uname_r.endswith("amzn2.x86_64"), "0.36.2")
    query = urlencode({"os": host.os_release, "r": host.uname_r, "v": host.uname_v,
                       "m": host.uname_m, "falco": "0.36.2"})
    page = site.page("?" + query)
    got = answer(page)
    assert got["state"] == "found"
    assert expected(site, host, "0.36.2")["name"].file in got["text"]
    assert page.evaluate("document.getElementById('fp-exact').open")
