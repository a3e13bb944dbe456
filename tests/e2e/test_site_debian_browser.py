"""The site as a Debian user meets it (issue 22), in headless Chromium at a phone's and a
laptop's width: `uname -r` alone finds what was built for that kernel, twins each their own
file, kernels the plan leaves out are told why and promised nothing, every control shows
its focus, nothing off-screen sits in the Tab order, the failures' log links are on the
screen and their logs open as text.

The catalog is the demo's shape: Debian 12 kernels of the 6.1 and 6.12 lines, named by the
loaders after the package version (`6.1.0-57-amd64` is requested as `6.1.192-3-amd64`),
with the `uname -r` each was built for; probes.yaml takes only some flavours (`include`)
and the newest kernel of each series (`latest: 1`). The site is served the way `make demo`
serves it (builder.commands.demo.make_server: the store at /store/, logs as text).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import pytest
from sitebrowser import chromium_context
from sitebuild import generated_site
from sitecatalog import Fixture, write_catalog

from builder.commands.demo import make_server
from builder.core.records import FailureRecord, LoadTest, ProbeRecord

pytestmark = pytest.mark.browser

PHONE, LAPTOP = 390, 1366
DRIVER = "9.1.0+driver"
FALCO = "0.43.0, 0.43.1"
PROBES_YAML = r"""schema_version: 1
driver_versions:
  - version: 9.1.0+driver
    falco: [0.43.0, 0.43.1]
    source: {kind: libs-archive}
targets:
  - name: debian
    kernels: apt
    arch: [x86_64, aarch64]
    include: '^6\.1\.0-\d+-(amd64|cloud-amd64|arm64)$|^6\.12\.\d+\+deb1[23]-amd64$'
    latest: 1
"""
SIX_ONE = "6.1.0-57-amd64"


def _probe(release: str, uname_r: str, arch: str = "x86_64", root: str = "",
           n: int = 1, driver_type: str = "ebpf") -> ProbeRecord:
    prefix = f"/store/twins/{root}" if root else "/store"
    record = ProbeRecord(DRIVER, arch, "debian", release, "1", f"{n:02x}" * 32, 3_000_000 + n,
                         "", built="2026-12-01T03:00:00Z", uname_r=uname_r, root=root,
                         driver_type=driver_type,
                         loadtest=LoadTest("passed", uname_r, 170, 170, 1200,
                                           "2026-12-01T04:00:00Z"))
    # the store's port is known once the server is up: {port} is filled in then (_at)
    url = f"http://127.0.0.1:{{port}}{prefix}/9.1.0%2Bdriver/{arch}/{record.file}"
    return replace(record, url=url, log=url + ".log")


def catalog() -> Fixture:
    probes = (
        _probe("6.1.192-3-amd64", SIX_ONE, n=1),
        _probe("6.1.192-3-cloud-amd64", "6.1.0-57-cloud-amd64", n=2),
        _probe("6.1.192-3-arm64", "6.1.0-57-arm64", arch="aarch64", n=3),
        _probe("6.1.192-3-arm64", "6.1.0-57-arm64", arch="aarch64", n=6, driver_type="kmod"),
        # twins: one name, two kernels, each its own file (docs/twins.md)
        _probe("6.12.118-1-amd64", "6.12.118+deb13-amd64", n=4),
        _probe("6.12.118-1-amd64", "6.12.118+deb12-amd64", root="debian-12", n=5),
    )
    failure = FailureRecord(DRIVER, "x86_64", "debian", "6.12.120-1-amd64", "1", "compile",
                            "error: " + "a very long compiler message " * 12,
                            log="http://127.0.0.1:{port}/store/logs/rt.log", attempts=2,
                            last_attempt="2026-12-01T03:10:00Z", uname_r="6.12.120+deb13-amd64")
    return Fixture(probes, (failure,), ())


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("debian-site")
    store = root / "store"
    server = make_server(root / "site", store, 0)
    port = server.server_address[1]
    fixture = catalog()
    placed = Fixture(tuple(_at(r, port) for r in fixture.probes),
                     tuple(_at(f, port) for f in fixture.failures), ())
    write_catalog(root / "catalog", placed)
    (root / "probes.yaml").write_text(PROBES_YAML)
    generated_site(root, root / "catalog", root / "probes.yaml")
    (store / "logs").mkdir(parents=True)
    (store / "logs" / "rt.log").write_text("make: *** [Makefile:12] Error 1\n")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.shutdown()
        thread.join()


def _at(record: Any, port: int) -> Any:
    return replace(record, **{k: getattr(record, k).replace("{port}", str(port))
                              for k in ("url", "log") if hasattr(record, k)})


@pytest.fixture(scope="module")
def context(base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium_context(tmp_path_factory.mktemp("chromium-profile")) as browser:
        yield browser


@pytest.fixture
def open_page(base_url: str, context: Any) -> Iterator[Any]:
    errors: list[str] = []
    external: list[str] = []

    def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            external.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)

    def opened(path: str = "", width: int = LAPTOP) -> Any:
        page = context.new_page()
        page.set_viewport_size({"width": width, "height": 844 if width == PHONE else 900})
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(base_url + path, wait_until="load")
        return page

    yield opened
    context.unroute("**/*")
    for page in context.pages:
        page.close()
    assert external == [] and errors == []


def type_release(page: Any, release: str) -> dict[str, str]:
    page.wait_for_selector("#fp-find[data-fp-ready]")
    page.fill("#fp-r", release)
    page.wait_for_function("""() => { const f = window.FalcoProbesFinder;
        return f && f.result.dataset.seq === String(f.sequence); }""")
    result = page.locator("#fp-result")
    return {"state": result.get_attribute("data-state") or "", "text": result.inner_text()}


def whole_host(page: Any, os_release: str, uname_v: str, uname_r: str) -> dict[str, str]:
    """os-release, uname -v and -m of an x86_64 node, Falco 0.43.1, then uname -r typed."""
    page.wait_for_selector("#fp-find[data-fp-ready]")
    page.click("#fp-exact > summary")
    page.fill("#fp-os", os_release)
    page.fill("#fp-v", uname_v)
    page.fill("#fp-m", "x86_64")
    page.fill("#fp-falco", "0.43.1")
    return type_release(page, uname_r)


@pytest.mark.parametrize("width", [PHONE, LAPTOP])
def test_bare_uname_r_lists_what_was_built_for_that_kernel(open_page: Any, width: int) -> None:
    got = type_release(open_page(width=width), SIX_ONE)
    assert got["state"] == "kernels", got["text"]
    assert got["text"].startswith(f"1 probe for kernel {SIX_ONE}"), got["text"]
    assert "falco_debian_6.1.192-3-amd64_1.o" in got["text"] and f"Falco {FALCO}" in got["text"]
    assert "cloud-amd64" not in got["text"] and "arm64" not in got["text"]
    arm = type_release(open_page(width=width), "6.1.0-57-arm64")
    assert "falco_debian_6.1.192-3-arm64_1.o" in arm["text"]


def test_a_kernel_module_is_listed_and_fetched_under_its_own_name(open_page: Any) -> None:
    page = open_page()
    got = type_release(page, "6.1.0-57-arm64")
    assert "falco_debian_6.1.192-3-arm64_1.o" in got["text"]
    assert "falco_debian_6.1.192-3-arm64_1.ko" in got["text"], got["text"]
    module = page.locator(".fp-probe", has_text="_1.ko")
    assert module.locator("a").get_attribute("href", timeout=5000).endswith("_1.ko")


def test_twins_are_each_answered_with_their_own_file(open_page: Any) -> None:
    page = open_page()
    for uname_r, path in (("6.12.118+deb13-amd64", "/store/9.1.0%2Bdriver/"),
                          ("6.12.118+deb12-amd64", "/store/twins/debian-12/9.1.0%2Bdriver/")):
        got = type_release(page, uname_r)
        assert got["text"].startswith(f"1 probe for kernel {uname_r}"), got["text"]
        links = page.locator("#fp-result .fp-probe a")
        assert links.count() == 1 and path in (links.first.get_attribute("href") or "")


def test_the_loaders_name_and_a_prefix_still_answer(open_page: Any) -> None:
    page = open_page()
    assert "falco_debian_6.1.192-3-amd64_1.o" in type_release(page, "6.1.192-3-amd64")["text"]
    got = type_release(page, "6.1.0-57")
    assert "6.1.192-3-amd64" in got["text"] and "6.1.192-3-cloud-amd64" in got["text"]


@pytest.mark.parametrize(("release", "why"), [
    ("6.1.0-57-rt-amd64", "excluded by this target's filter"),
    ("6.1.0-40-amd64", "older than the kernels this repository keeps")])
def test_kernels_the_plan_leaves_out_are_told_why_and_promised_nothing(
        open_page: Any, release: str, why: str) -> None:
    got = type_release(open_page(), release)
    assert got["state"] == "not-planned", got["text"]
    assert why in got["text"].lower() and "nightly" not in got["text"]


def test_a_whole_host_on_an_old_kernel_is_offered_only_its_own_flavour(open_page: Any) -> None:
    got = whole_host(open_page(), 'PRETTY_NAME="Debian GNU/Linux 12"\nID=debian\n',
                     "#1 SMP PREEMPT_DYNAMIC Debian 6.1.170-1 (2026-06-01)", "6.1.0-40-amd64")
    assert got["state"] == "not-planned", got["text"]
    assert "Older than the kernels this repository keeps" in got["text"]
    assert "nightly" not in got["text"] and "cloud-amd64" not in got["text"]
    assert "6.1.192-3-amd64" in got["text"]            # the newest of its own flavour


def test_the_header_search_finds_a_uname_r(open_page: Any) -> None:
    page = open_page()
    page.click(".md-search__input") if page.locator(".md-search__input").is_visible() else \
        page.click("label[for=__search]")
    page.fill(".md-search__input", SIX_ONE)
    box = page.locator(".fp-search-kernel a")
    box.wait_for()
    assert box.inner_text().startswith(f"1 probe for kernel release {SIX_ONE}")


def _outline(page: Any, selector: str) -> str:
    style: str = page.eval_on_selector(
        selector, "e => { const s = getComputedStyle(e); return s.outlineStyle + ' ' + "
                  "s.outlineWidth; }")
    return style


def test_every_control_shows_its_focus(open_page: Any) -> None:
    page = open_page()
    page.wait_for_selector("#fp-find[data-fp-ready]")
    page.focus("#fp-r")
    assert not _outline(page, "#fp-r").startswith("none"), _outline(page, "#fp-r")
    table = open_page("drivers/9.1.0+driver/debian/")
    field = "form.fp-filter input[type=search]"
    table.focus(field)
    assert not _outline(table, field).startswith("none")


def test_on_a_phone_nothing_off_screen_comes_before_the_find_box(open_page: Any) -> None:
    page = open_page(width=PHONE)
    page.wait_for_selector("#fp-find[data-fp-ready]")
    # The theme's script loads on the first key press (tables.js, themeOnDemand); until it
    # has run, its palette switch is a focusable input with nothing to show. Wake it and
    # wait, so that the Tab order measured is the page's, not a race with that load.
    page.keyboard.press("Shift")
    page.wait_for_function("""() => Array.from(document.querySelectorAll(
        '[data-md-component=palette] label')).some(l => l.getBoundingClientRect().width > 0)""")
    for stop in range(1, 40):
        page.keyboard.press("Tab")
        # a visually hidden toggle (the theme's palette switch) is seen through what holds it
        where = page.evaluate("""() => { let e = document.activeElement;
            if (!e.getBoundingClientRect().width) { e = e.parentElement || e; }
            const r = e.getBoundingClientRect();
            return {id: document.activeElement.id, x: r.x, w: r.width, y: r.y,
                    tag: e.outerHTML.slice(0, 160)}; }""")
        if where["id"] == "fp-r":
            assert stop <= 12, stop
            return
        # on the screen, if only in part (the theme's search field runs past its edge)
        assert where["w"] > 0 and where["x"] < PHONE and where["x"] + where["w"] > 0, \
            (stop, where["tag"], where["x"], where["w"])
    raise AssertionError("the find box was not reached by Tab")


@pytest.mark.parametrize("width", [PHONE, LAPTOP])
def test_failure_logs_are_on_screen_and_open_as_text(open_page: Any, width: int) -> None:
    page = open_page("failures/", width=width)
    link = page.locator(".fp-failures a", has_text="log").first
    box = link.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
    href = link.get_attribute("href") or ""
    response = page.request.get(href)
    assert response.headers["content-type"].startswith("text/plain")
    assert "Error 1" in response.text()


def test_counts_agree_with_their_nouns(open_page: Any) -> None:
    text = open_page("failures/").locator("article").inner_text()
    assert "1 probe could not be built" in text
    driver = open_page("drivers/9.1.0+driver/").locator("article").inner_text()
    assert "1 target;" in driver and "1 failed build" in driver and "1 targets" not in driver


def test_a_hostile_uname_v_is_never_shown_as_a_file_name(open_page: Any) -> None:
    got = whole_host(open_page(), 'ID=ubuntu\nVERSION_ID="22.04"\n',
                     "#<b>evil</b> name-Ubuntu SMP", "5.15.0-1-generic")
    assert "<b>" not in got["text"] and "evil" not in got["text"].split("no valid file name")[0]


def test_the_home_page_fetches_the_search_index_only_when_search_is_used(
        base_url: str, context: Any) -> None:
    page = context.new_page()
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto(base_url, wait_until="load")
    page.wait_for_selector("#fp-find[data-fp-ready]")
    page.wait_for_timeout(1000)
    assert not any("search_index.json" in url for url in fetched), fetched
    page.click(".md-search__input")
    page.fill(".md-search__input", "usage")
    page.wait_for_selector(".md-search-result__item")
    assert any("search_index.json" in url for url in fetched)
    page.close()
