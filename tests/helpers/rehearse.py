"""`make rehearse`: the nightly workflow itself, run on this machine, and its end state checked.

`.github/workflows/nightly.yml` (and the pages.yml it calls) runs job by job, step by
step, through tests/helpers/workflowrun.py: every `run:` script as Actions runs it, against

* a scratch `origin` repository: this checkout's files, with probes.yaml replaced by
  the rehearsal's (two of Debian's falcosecurity-scap-dkms driver sources, reachable
  without GitHub, for the newest Debian 12 kernels of the 6.1 and 6.12 lines: 8.0.0+driver
  builds and loads on both; the 2022 snapshot cannot build for 6.12, a real failure with
  its log) and no catalog;
* real kernels through apt, real downloads, real clang compiles, real mkdocs;
* the fake GitHub (tests/helpers/fakegithub/) on loopback, with real PyGithub, for the
  releases; the catalog commit is pushed to the scratch origin.

Only what cannot run here is stood in for: the machine-setup steps (apt-get, pip: this
venv and `make deps` already did that), and actions/attest-build-provenance, which needs
GitHub's OIDC token and Sigstore: its stand-in writes the same kind of bundle over the
same subject list, unsigned. Every `falco-probes` and `mkdocs` call is logged with its
arguments (tests/e2e/test_rehearse.py holds them against the workflow's own text).

Then the end state: the catalog on origin's main passes `catalog check`; every record
links its build job, its log and (probes) its attestation, all served; `audit` of the
fake's releases is clean; `mirror` copies probes and bundles; `verify
--require-attestation` passes on every mirrored probe; the site was built.

    python tests/helpers/rehearse.py --out rehearsal [--kernels 2] [--cache DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HELPERS = Path(__file__).resolve().parent
ROOT = HELPERS.parents[1]
sys.path[:0] = [str(HELPERS), str(ROOT)]  # run as a script: the tests' helpers, builder

from attestations import unsigned_bundle  # noqa: E402
from fakegithub import FakeGitHub  # noqa: E402
from workflowrun import (  # noqa: E402
    ActionHandler,
    JobResult,
    Leg,
    StepRecord,
    WorkflowRun,
    default_actions,
)

from builder.publish.attest import MAX_SUBJECTS, Subject  # noqa: E402

WORKFLOWS = ROOT / ".github" / "workflows"
OWNER, NAME = "acme", "probes"
REPOSITORY = f"{OWNER}/{NAME}"
TOKEN = "ghs_rehearsalToken0123456789abcdef"
RUN_ID = "4242"
SERVER = "https://github.com"
# Steps that set the machine up: the rehearsal runs on this one, set up by `make deps`
# and the venv. tests/e2e/test_rehearse.py checks none of them runs a pipeline command. A new
# step of the workflow (a load test, say) runs here as it is, unless it only installs
# things: then name it here and have `make deps` install the same.
SETUP_STEPS = frozenset({"Install Python and git", "Install the toolchain",
                         "Install falco-probes", "Install git", "Trust the checkout"})
TOOLS = ("falco-probes", "mkdocs")
CONFIG = """\
# The rehearsal's probes.yaml (tests/helpers/rehearse.py): driver sources reachable without
# GitHub, for the newest Debian 12 kernel of the 6.1 and of the 6.12 line. 8.0.0+driver
# builds, and loads, on both whatever the host's clang. The 2022 snapshot cannot build
# for 6.12 (a recorded failure with its log); for 6.1 it builds, but it predates libs'
# clang 15 verifier fixes: compiled by clang >= 15 (Debian 13's 19) the 6.1 verifier
# rejects 11 of its programs, a recorded loadtest failure; by clang 14 (Debian 12's) it
# loads. The suites are named, so the rehearsal is the same on a Debian 12 and a Debian
# 13 machine, and always holds 8.0.0's two probes and at least one failure.
schema_version: 1
driver_versions:
  - version: 8.0.0+driver
    falco: [0.40.0]
    source: {kind: debian-package, package: falcosecurity-scap-dkms, suite: trixie,
             version: 0.20.0-3}
  - version: 0.1.1dev+git20220316.e5c53d64
    ref: e5c53d64
    source: {kind: debian-package, package: falcosecurity-scap-dkms, suite: bookworm,
             version: 0.1.1dev+git20220316.e5c53d64-5.1}
targets:
  - name: debian
    kernels: apt
    suites: [bookworm, bookworm-updates, bookworm-security]
    arch: [x86_64]
    include: '^6\\.1\\.0-\\d+-amd64$|^6\\.12\\.\\d+\\+deb12-amd64$'
    latest: 1
store: {kind: github, repository: acme/probes}
build: {jobs: 2, timeout: 600}
"""
EXPECTED_JOBS = ("plan", "build", "subjects", "attest", "publish", "pages")


@dataclass
class Rehearsal:
    """What ran and what the end state showed."""

    out: Path
    jobs: dict[str, JobResult] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)  # falco-probes, mkdocs calls
    checks: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def workflow_commands(self) -> list[dict[str, Any]]:
        return [c for c in self.commands if c["phase"] == "workflow"]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "seconds": round(self.seconds, 1), "problems": self.problems,
                "jobs": {k: {"result": v.result, "outputs": v.outputs}
                         for k, v in self.jobs.items()},
                "steps": [{"leg": s.leg, "name": s.name, "outcome": s.outcome,
                           "seconds": round(s.seconds, 1)} for s in self.steps],
                "commands": self.commands, "checks": self.checks}


def rehearse(out: Path, *, kernels: int = 2, cache: Path | None = None,
             report: Callable[[str], None] = print) -> Rehearsal:
    started = time.monotonic()
    out = out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    result = Rehearsal(out)
    env = _environment(out, cache or _default_cache())
    origin, sha = _origin(out, env)
    with FakeGitHub(token=TOKEN, owner=OWNER, repo=NAME) as fake:
        env["GITHUB_API_URL"] = fake.api_url
        run = WorkflowRun(
            WORKFLOWS, out, {**env, "GITHUB_SHA": sha},
            github={"ref": "refs/heads/main", "sha": sha, "repository": REPOSITORY,
                    "repository_owner": OWNER, "run_id": RUN_ID, "run_attempt": "1",
                    "server_url": SERVER, "api_url": fake.api_url,
                    "event_name": "workflow_dispatch", "workflow": "nightly",
                    "ref_name": "main"},
            inputs={"kernels": kernels}, secrets={"GITHUB_TOKEN": TOKEN},
            setup_steps=SETUP_STEPS, report=report)
        run.actions = {**default_actions(run, origin),
                       "actions/attest-build-provenance": attest_standin()}
        result.jobs = run.run("nightly.yml")
        result.steps = run.records
        _check_jobs(result)
        _check_end_state(result, origin, env, fake)
    result.commands = _commands(out)
    result.seconds = time.monotonic() - started
    (out / "rehearsal.json").write_text(json.dumps(result.as_dict(), indent=1) + "\n")
    return result


def attest_standin() -> ActionHandler:
    """actions/attest-build-provenance without GitHub: the same subject list read the same
    way (`sha256  name` lines, at most 1,024), written as an unsigned bundle."""
    def handler(leg: Leg, inputs: dict[str, Any]) -> dict[str, str]:
        lines = (leg.workspace / str(inputs["subject-checksums"])).read_text().splitlines()
        subjects = [Subject(name.lstrip("*"), digest) for digest, _, name in
                    (line.partition("  ") for line in lines if line.strip())]
        if not subjects or len(subjects) > MAX_SUBJECTS:
            raise ValueError(f"{len(subjects)} subjects; the action takes 1 to {MAX_SUBJECTS}")
        bundle = unsigned_bundle(leg.temp / "attest" / "attestation.json", subjects,
                                 "falco-probes rehearsal: unsigned stand-in for "
                                 "actions/attest-build-provenance")
        return {"bundle-path": str(bundle), "attestation-id": "1",
                "attestation-url": f"{SERVER}/{REPOSITORY}/attestations/1"}
    return handler


# --- setting up ----------------------------------------------------------------------------

def _default_cache() -> Path:
    configured = os.environ.get("FALCO_PROBES_TEST_CACHE")
    base = Path(configured) if configured else Path.home() / ".cache" / "falco-probes-tests"
    return base / "rehearsal"


def _environment(out: Path, cache: Path) -> dict[str, str]:
    """The runner's environment: this venv's tools behind logging shims, a scratch HOME, the
    caches kept between rehearsals (apt lists, header packages, sysroots, driver source)."""
    venv_bin = Path(sys.executable).parent
    shims = out / "shims"
    shims.mkdir()
    for tool in TOOLS:
        real = shutil.which(tool, path=str(venv_bin))
        if real is None:
            raise SystemExit(f"rehearse: {tool} is not in {venv_bin}; run `make venv` first")
        shim = shims / tool
        shim.write_text(_SHIM.format(python=sys.executable, log=str(out / "commands.jsonl"),
                                     tool=tool, real=real))
        shim.chmod(0o755)
    home = out / "home"
    home.mkdir()
    cache.mkdir(parents=True, exist_ok=True)
    return {"PATH": os.pathsep.join([str(shims), str(venv_bin), os.environ.get("PATH", "")]),
            "HOME": str(home), "LANG": "C.UTF-8", "GIT_CONFIG_NOSYSTEM": "1",
            "XDG_CACHE_HOME": str(cache), "GITHUB_SERVER_URL": SERVER,
            "GITHUB_REPOSITORY": REPOSITORY, "GITHUB_RUN_ID": RUN_ID,
            "GITHUB_REF": "refs/heads/main", "GITHUB_EVENT_NAME": "workflow_dispatch",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", "REHEARSAL_PHASE": "workflow"}


_SHIM = """\
#!{python}
import json, os, sys
with open({log!r}, "a") as handle:
    handle.write(json.dumps({{"tool": {tool!r}, "argv": sys.argv[1:], "cwd": os.getcwd(),
                             "phase": os.environ.get("REHEARSAL_PHASE", "")}}) + "\\n")
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
"""

_PERSON = {"GIT_AUTHOR_NAME": "rehearsal", "GIT_AUTHOR_EMAIL": "rehearsal@example.org",
           "GIT_COMMITTER_NAME": "rehearsal", "GIT_COMMITTER_EMAIL": "rehearsal@example.org"}


def _git(cwd: Path, env: dict[str, str], *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env={**env, **_PERSON}, check=True,
                          capture_output=True, text=True, timeout=300).stdout.strip()


def _origin(out: Path, env: dict[str, str]) -> tuple[Path, str]:
    """A bare origin whose main is this checkout (tracked and new files, as they are on
    disk) with the rehearsal's probes.yaml and no catalog; returns it and main's commit."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           check=True, capture_output=True, timeout=60).stdout.decode()
    seed = out / "seed"
    for rel in filter(None, files.split("\0")):
        source = ROOT / rel
        if rel.startswith("catalog/") or not source.is_file():
            continue
        (seed / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, seed / rel)
    (seed / "probes.yaml").write_text(CONFIG)
    origin = out / "origin.git"
    _git(out, env, "init", "-q", "--bare", "-b", "main", str(origin))
    _git(seed, env, "init", "-q", "-b", "main")
    _git(seed, env, "add", "-A")
    _git(seed, env, "commit", "-q", "-m", "rehearsal: this checkout")
    _git(seed, env, "push", "-q", str(origin), "HEAD:refs/heads/main")
    return origin, _git(seed, env, "rev-parse", "HEAD")


# --- the end state ---------------------------------------------------------------------------

def _check_jobs(result: Rehearsal) -> None:
    for job in EXPECTED_JOBS:
        state = result.jobs.get(job)
        if state is None or state.result != "success":
            result.problems.append(f"job {job}: {state.result if state else 'did not run'}")
    for step in result.steps:
        if step.outcome == "failure":
            result.problems.append(f"{step.leg}: step {step.name!r} failed (log {step.log})")


def _check_end_state(result: Rehearsal, origin: Path, env: dict[str, str],
                     fake: FakeGitHub) -> None:
    final = result.out / "final"
    _git(result.out, env, "clone", "-q", str(origin), str(final))
    end = {**env, "REHEARSAL_PHASE": "end-state", "GITHUB_TOKEN": TOKEN,
           "FALCO_PROBES_CONFIG": str(final / "probes.yaml"),
           "FALCO_PROBES_CATALOG": str(final / "catalog")}

    def tool(*argv: str) -> tuple[int, Any]:
        done = subprocess.run(["falco-probes", *argv], env=end, cwd=result.out,
                              capture_output=True, text=True, timeout=900, check=False)
        (result.out / "end-state.log").open("a").write(
            f"$ falco-probes {' '.join(argv)}\n{done.stderr}{done.stdout}\n")
        try:
            return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None
        except ValueError:
            return done.returncode, done.stdout

    checks = result.checks
    checks["catalog_check"], _ = tool("catalog", "check", str(final / "catalog"))
    records = _records(final / "catalog")
    checks["probes"], checks["failures"] = len(records["probes"]), len(records["failures"])
    checks["outcomes"] = _outcomes(records)
    checks["links"] = _links(records, result.problems)
    checks["audit"], audited = tool("audit", "--store", "github", "--repository", REPOSITORY,
                                    "--api-url", fake.api_url, "--write-interval", "0",
                                    "--json")
    checks["audit_drift"] = (audited or {}).get("drift") if isinstance(audited, dict) else audited
    mirror = result.out / "mirror"
    checks["mirror"], _ = tool("mirror", str(mirror), "--json")
    mirrored = sorted(str(p) for p in mirror.glob("*/*/*.o"))
    checks["verify"], verified = tool("verify", "--require-attestation", "--json", *mirrored)
    files = verified.get("files", []) if isinstance(verified, dict) else []
    checks["verified"] = sum(1 for f in files if f["ok"] and f["attestation"]["attested"])
    site = result.out / "work" / "pages.build" / "site"
    checks["site_pages"] = len(list(site.rglob("index.html"))) if site.is_dir() else 0
    for name, wanted in (("catalog_check", 0), ("audit", 0), ("mirror", 0), ("verify", 0)):
        if checks[name] != wanted:
            result.problems.append(f"end state: `falco-probes {name.split('_')[0]}` exited "
                                   f"{checks[name]} (see {result.out / 'end-state.log'})")
    if checks["probes"] == 0:
        result.problems.append("end state: the catalog holds no probe")
    if checks["verified"] != len(mirrored) or not mirrored:
        result.problems.append(f"end state: {checks['verified']} of {len(mirrored)} mirrored "
                               "probes verified with their attestation")
    if checks["site_pages"] == 0:
        result.problems.append("end state: pages.yml built no site")


def _records(catalog: Path) -> dict[str, list[dict[str, Any]]]:
    from builder.core.catalog import load_catalog
    from builder.core.records import record_to_dict

    loaded = load_catalog(catalog)
    return {"probes": [record_to_dict(r) for r in loaded.probes()],
            "failures": [record_to_dict(r) for r in loaded.failures()]}


def _outcomes(records: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """Each record's outcome, `driver_version kernel_release` to `probe` or a failure's
    `step/category` (`compile/...`, `loadtest/verifier`)."""
    return {f"{r['driver_version']} {r['kernel_release']}":
            "probe" if kind == "probes" else f"{r['step']}/{r['category']}"
            for kind, items in records.items() for r in items}


def _links(records: dict[str, list[dict[str, Any]]], problems: list[str]) -> int:
    """Every record links its build job, a log that is served, and (probes) an attestation
    that is served; returns how many links were fetched."""
    fetched = 0
    job_prefix = f"{SERVER}/{REPOSITORY}/actions/runs/{RUN_ID}/job/"
    for kind, items in records.items():
        for record in items:
            label = f"{kind[:-1]} {record['file']}"
            if not record["job"].startswith(job_prefix):
                problems.append(f"{label}: job {record['job']!r} is not a job of run {RUN_ID}")
            wanted = ["log", "url", "attestation"] if kind == "probes" else ["log"]
            for key in wanted:
                if not _served(record[key]):
                    problems.append(f"{label}: its {key} {record[key]!r} is not served")
                fetched += 1
    return fetched


def _served(url: str) -> bool:
    if not url.startswith("http://127.0.0.1:"):
        return False
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=30) as response:
        return bool(response.read())
    return False


def _commands(out: Path) -> list[dict[str, Any]]:
    path = out / "commands.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --- the command -------------------------------------------------------------------------------

def _summary(result: Rehearsal) -> Iterator[str]:
    jobs = ", ".join(f"{k} {v.result}" for k, v in result.jobs.items())
    yield f"jobs: {jobs}"
    yield (f"workflow ran {len(result.workflow_commands())} falco-probes/mkdocs command(s); "
           f"{sum(1 for s in result.steps if s.outcome == 'setup')} machine-setup step(s) "
           "skipped")
    yield f"end state: {json.dumps({k: v for k, v in result.checks.items() if k != 'audit_drift'})}"
    for problem in result.problems:
        yield f"PROBLEM: {problem}"
    yield (f"rehearsal {'passed' if result.ok else 'FAILED'} in {result.seconds:.0f} s; "
           f"everything is in {result.out} (rehearsal.json, logs/, work/)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="See docs/maintainers.md.")
    parser.add_argument("--out", type=Path, default=Path("rehearsal"),
                        help="folder for the run (emptied first; default ./rehearsal)")
    parser.add_argument("--kernels", type=int, default=2,
                        help="the workflow_dispatch input `kernels` (default 2)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="downloads kept between rehearsals (default: "
                             "$FALCO_PROBES_TEST_CACHE/rehearsal)")
    args = parser.parse_args(argv)
    result = rehearse(args.out, kernels=args.kernels, cache=args.cache,
                      report=lambda line: print(line, file=sys.stderr, flush=True))
    for line in _summary(result):
        print(line)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
