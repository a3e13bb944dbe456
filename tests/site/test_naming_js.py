"""naming.js (the site's find-my-probe) against builder/core/naming.py and the naming table.

Every case of tests/data/naming_cases.yaml runs through naming.js in headless
Chromium and must give the expected names and request paths, and the same as
builder.core.naming. Then thousands of seeded variations of those hosts (mutated
uname strings, os-release texts full of quotes and comments, every rule era)
run through both, which must agree exactly. naming.js gets the facts it does not
own (override releases, minimum kernels) from the site's JSON, as on the site:
`builder.site.api.naming_constants()`. On CI a missing Chromium fails these tests
(tests/helpers/sitebrowser.py).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from sitebrowser import chromium_context
from testpaths import NAMING_CASES, ROOT

from builder.core.errors import InputError
from builder.core.naming import (
    MIN_KERNEL,
    OVERRIDE_RELEASES,
    NoRequest,
    falcoctl_request_path,
    host_from_inputs,
    names_for_driver,
    parse_os_release,
    parse_release,
    probe_name,
    request_path,
)
from builder.core.versions import KNOWN_RELEASES, FalcoVersion
from builder.site.api import naming_constants

pytestmark = pytest.mark.browser
NAMING_JS = ROOT / "builder" / "site" / "assets" / "naming.js"
CASES: list[dict[str, Any]] = yaml.safe_load(
    NAMING_CASES.read_text())
# Every Falco release whose rules differ from its predecessor's, plus a few more.
ERAS = ["0.26.0", "0.27.0", "0.28.0", "0.31.1", "0.32.0", "0.32.1", "0.32.2", "0.33.0",
        "0.34.0", "0.34.1", "0.35.0", "0.35.1", "0.36.2", "0.37.0", "0.37.1", "0.38.0",
        "0.38.2", "0.39.0", "0.40.0", "0.43.1"]


@pytest.fixture(scope="module")
def js_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium_context(tmp_path_factory.mktemp("chromium-profile")) as context:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.add_script_tag(content=NAMING_JS.read_text())
        page.evaluate("facts => window.FalcoNaming.configure(facts)",
                      json.loads(json.dumps(naming_constants())))
        page.add_script_tag(content=JS_HARNESS)
        yield page
        assert errors == []


def test_the_site_hands_naming_js_the_python_facts(js_page: Any) -> None:
    got = js_page.evaluate("""() => [window.FalcoNaming.OVERRIDE_RELEASES.map(String),
                                     window.FalcoNaming.MIN_KERNEL]""")
    assert got == [[str(v) for v in OVERRIDE_RELEASES],
                   {arch: list(v) for arch, v in MIN_KERNEL.items()}]


def test_naming_js_holds_no_copy_of_those_facts() -> None:
    """The override releases and minimum kernels come from the site's JSON only: the
    script assigns them nothing but null and what configure() is given."""
    source = NAMING_JS.read_text()
    for name in ("OVERRIDE_RELEASES", "MIN_KERNEL"):
        assignments = re.findall(rf"(?<![.\w]){name}\s*=(?!=)\s*([^;]+);", source)
        assert assignments and set(assignments) <= {"null", "{}",
                                                     "facts.override_releases.map(v)"}, name


# Runs one batch of inputs through naming.js; each result mirrors py_result below.
JS_HARNESS = """
window.runNaming = function (jobs) {
  const N = window.FalcoNaming;
  function nameOf(n) {
    return n && [n.target, n.kernel_release, n.kernel_version, n.arch, n.file];
  }
  return jobs.map(function (job) {
    try {
      const host = N.hostFromInputs(job.os_release, job.uname_r, job.uname_v, job.uname_m,
                                    job.etc_version, job.fallback);
      if (job.kind === "names") {
        const out = N.namesForDriver(host, job.falcos.map(N.parseVersion));
        return ["names", nameOf(out.name), out.aliases];
      }
      const falco = N.parseVersion(job.falco);
      const name = N.probeName(host, falco);
      return ["name", nameOf(name), N.requestPath(job.driver_version, name, falco),
              N.falcoctlRequestPath(job.driver_version, name)];
    } catch (err) {
      if (err instanceof N.NoRequest) { return ["none", err.reason, nameOf(err.probeName)]; }
      if (err instanceof N.InputError) { return ["input", err.message]; }
      return ["crash", String(err && err.stack || err)];
    }
  });
};
window.runOsRelease = function (texts) {
  return texts.map(function (text) {
    return Array.from(window.FalcoNaming.parseOsRelease(text).entries());
  });
};
window.runParseRelease = function (jobs) {
  const N = window.FalcoNaming;
  return jobs.map(function (job) {
    const p = N.parseRelease(job[0], N.parseVersion(job[1]));
    return [p.full, p.fullextraversion, p.numbers];
  });
};
"""


def _name(name: Any) -> list[str] | None:
    if name is None:
        return None
    return [name.target, name.kernel_release, name.kernel_version, name.arch, name.file]


def py_result(job: dict[str, Any]) -> list[Any]:
    try:
        host = host_from_inputs(job["os_release"], job["uname_r"], job["uname_v"],
                                job["uname_m"], job["etc_version"], job["fallback"])
        if job["kind"] == "names":
            name, aliases = names_for_driver(host, [FalcoVersion.parse(f)
                                                    for f in job["falcos"]])
            return ["names", _name(name), list(aliases)]
        falco = FalcoVersion.parse(job["falco"])
        probe = probe_name(host, falco)
        return ["name", _name(probe), request_path(job["driver_version"], probe, falco),
                falcoctl_request_path(job["driver_version"], probe)]
    except NoRequest as exc:
        return ["none", exc.reason, _name(exc.name)]
    except InputError as exc:
        return ["input", exc.message]


def job_of(case: dict[str, Any], **changes: Any) -> dict[str, Any]:
    job = {"kind": "name", "falco": case["falco"], "os_release": case["os_release"],
           "uname_r": case["uname_r"], "uname_v": case["uname_v"], "uname_m": case["uname_m"],
           "etc_version": case.get("etc_version"), "fallback": case.get("fallback", ""),
           "driver_version": case.get("driver_version") or "9.0.0+driver"}
    job.update(changes)
    return job


def run_js(page: Any, jobs: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = page.evaluate("jobs => window.runNaming(jobs)", jobs)
    return out


def test_every_table_case_in_the_browser(js_page: Any) -> None:
    results = run_js(js_page, [job_of(case) for case in CASES])
    assert len(results) == len(CASES) == 105
    for case, got in zip(CASES, results, strict=True):
        expect = case["expect"]
        label = case["case"]
        if expect.get("requested") is False:
            assert got[0] == "none", (label, got)
            if "would_be" in expect:
                assert got[2] is None or got[2][4] == expect["would_be"], label
        else:
            assert got[0] == "name", (label, got)
            target, release, version, _arch, file = got[1]
            assert (target, release, version, file) == (
                expect["target"], expect["kernel_release"], expect["kernel_version"],
                expect["file"]), label
            assert got[2] == expect["request_path"], label
        assert got == json.loads(json.dumps(py_result(job_of(case)))), label


def test_every_case_in_every_rule_era_matches_python(js_page: Any) -> None:
    jobs = [job_of(case, falco=falco) for case in CASES for falco in ERAS]
    for job, got in zip(jobs, run_js(js_page, jobs), strict=True):
        assert got == json.loads(json.dumps(py_result(job))), job


def test_names_for_driver_matches_python(js_page: Any) -> None:
    groups = [[], ["0.26.0", "0.26.1"], ["0.32.1", "0.32.2"], ["0.32.2", "0.34.0", "0.35.1"],
              ["0.35.0", "0.35.1"], ["0.36.0", "0.36.2"], ["0.37.0", "0.37.1"],
              ["0.38.0", "0.38.2"], ["0.39.0", "0.43.1"], list(KNOWN_RELEASES)]
    jobs = [job_of(case, kind="names", falcos=group) for case in CASES for group in groups]
    for job, got in zip(jobs, run_js(js_page, jobs), strict=True):
        assert got == json.loads(json.dumps(py_result(job))), job


# --- randomised differential checks ------------------------------------------------------

PIECES = ["#", "~", "-", "+", ".", "_", " ", "1", "9", "42", "0", "aws", "gcp", "generic",
          "-Ubuntu ", "Debian ", "SMP", "amd64", "arm64", "rt-", "cloud-", "5.10", "6.1.55-1",
          "~20.04.1", "x86_64", "el7", "fips", "v8", "\n", "\t", "'", '"', "\\", "é"]
OS_LINES = ["ID=ubuntu", "ID=debian", "ID=amzn", "ID=flatcar", "ID=bottlerocket", "ID=talos",
            "ID=cos", "ID=centos", "ID='Ubuntu'", 'ID="debian"', "ID=", "ID=minikube",
            "VERSION_ID=2", "VERSION_ID=2023", "VERSION_ID=3510.2.1", "VERSION_ID=1.5.0",
            'VERSION_ID="22.04"', "VARIANT_ID=aws-k8s-1.26", "BUILD_ID=17800.66.78",
            "# comment", "  ID=debian # trailing", "ID=deb\\ ian", 'ID="unterminated',
            "ID='it'\\''s'", "ID=a#b", 'NAME="Ubuntu" ID=x', "=bad", "ID=\"a\\\"b\""]


def _mutate(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        pos = rng.randint(0, len(chars))
        action = rng.random()
        if action < 0.5:
            chars[pos:pos] = list(rng.choice(PIECES))
        elif action < 0.8 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif chars:
            chars[min(pos, len(chars) - 1)] = rng.choice(PIECES)
    return "".join(chars)


def _random_os_release(rng: random.Random) -> str | None:
    if rng.random() < 0.08:
        return None
    return "\n".join(rng.choice(OS_LINES) for _ in range(rng.randint(1, 5))) + "\n"


def random_jobs(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    jobs = []
    for _ in range(count):
        case = rng.choice(CASES)
        changes: dict[str, Any] = {"falco": rng.choice(ERAS)}
        if rng.random() < 0.6:
            changes["uname_r"] = _mutate(rng, case["uname_r"])
        if rng.random() < 0.6:
            changes["uname_v"] = _mutate(rng, case["uname_v"])
        if rng.random() < 0.3:
            changes["os_release"] = _random_os_release(rng)
        if rng.random() < 0.1:
            changes["uname_m"] = rng.choice(["x86_64", "aarch64", "i686", " x86_64\n", ""])
        if rng.random() < 0.1:
            changes["etc_version"] = rng.choice([None, "v1.26.0\n", "v1.26", "1.2.3.4"])
        if rng.random() < 0.1:
            changes["fallback"] = rng.choice(["", "debian", "centos", "rhel", "minikube"])
        jobs.append(job_of(case, **changes))
    return jobs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_hosts_match_python(js_page: Any, seed: int) -> None:
    jobs = random_jobs(seed, 1500)
    for job, got in zip(jobs, run_js(js_page, jobs), strict=True):
        assert got == json.loads(json.dumps(py_result(job))), job


def test_os_release_parsing_matches_python(js_page: Any) -> None:
    rng = random.Random(7)
    texts = [_random_os_release(rng) or "" for _ in range(1500)]
    texts += ['ID="a b" c\n', "ID=a\\\n", "ID='x\n", 'ID="x\\"\n', "ID=\"q\\\\\"\n",
              "\ufeffID=bom\n", "\x85ID=nel\n", "ID=x\x1cVERSION_ID=2\n", "ID=a\r\nVERSION_ID=b",
              "  ID = x\n", "ID=ü\n", "ID=#x\n", "ID=x#y z\n", "ID=\"x#y\"\n", "ID=''\n"]
    got = js_page.evaluate("texts => window.runOsRelease(texts)", texts)
    for text, pairs in zip(texts, got, strict=True):
        assert dict(pairs) == parse_os_release(text), repr(text)


def test_kernel_release_parsing_matches_python(js_page: Any) -> None:
    rng = random.Random(11)
    releases = [c["uname_r"] for c in CASES]
    releases += [_mutate(rng, rng.choice(releases)) for _ in range(1500)]
    releases += ["5.4", "5.4.0", "5.04.1", "0.0.0", "6.1.0-13-amd64+", "5.15.65+", "4.14.x",
                 "5.4.0\n", "5.4.0-1-a\n", "3.10.0-1160.el7.x86_64"]
    jobs = [[r, f] for r in releases for f in ("0.37.0", "0.38.0", "0.39.0")]
    got = js_page.evaluate("jobs => window.runParseRelease(jobs)", jobs)
    for (release, falco), result in zip(jobs, got, strict=True):
        parsed = parse_release(release, FalcoVersion.parse(falco))
        assert result == [parsed.full, parsed.fullextraversion, list(parsed.numbers)], release
