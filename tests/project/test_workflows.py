"""The GitHub Actions workflows and dependabot.yml, checked by construction.

Nothing here reaches GitHub, so the workflows cannot run in the tests. Instead the rules
that keep them safe are asserted on the parsed YAML (pinned actions, least privilege,
timeouts, no expressions in shell scripts), every shell script goes through `bash -n`,
and every `falco-probes` command a workflow runs is parsed by the real CLI parser.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from attestations import unsigned_bundle
from buildreports import specs, write_report
from fakegithub import FakeGitHub
from testpaths import ROOT
from workflowscripts import cli_invocations

from builder.cli import build_parser
from builder.core.records import HostFacts, Kernel
from builder.core.versions import BUILTIN_RELEASES
from builder.plan import Plan, matrix, plan_job, shard
from builder.publish.attest import Subject, subject_name

WORKFLOW_DIR = ROOT / ".github" / "workflows"
DEPENDABOT = ROOT / ".github" / "dependabot.yml"

PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[^@\s]+)?@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)\s*(?:#\s*(?P<comment>.*))?$")
VERSION_COMMENT = re.compile(r"^v\d+\.\d+\.\d+$")

# The write permissions each job holds, and needs; every other job holds none.
WRITES = {
    ("nightly.yml", "publish"): {"contents"},           # release assets, catalog commit
    ("nightly.yml", "attest"): {"id-token", "attestations"},  # Sigstore certificate, storing
    ("nightly.yml", "pages"): {"pages", "id-token"},    # calls pages.yml
    ("pages.yml", "deploy"): {"pages", "id-token"},     # deploy-pages
}

# Triggers each workflow must have; pull_request_target and workflow_run run untrusted
# code or events with a writable token and are never used.
TRIGGERS = {
    "ci.yml": {"push", "pull_request"},
    "nightly.yml": {"schedule", "workflow_dispatch"},
    "pages.yml": {"push", "workflow_dispatch", "workflow_call"},
}
FORBIDDEN_TRIGGERS = {"pull_request_target", "workflow_run"}

# The pipeline as the workflows must run it: (workflow, job, subcommand).
EXPECTED_COMMANDS = {
    ("nightly.yml", "plan", "plan"),
    ("nightly.yml", "build", "build"),
    ("nightly.yml", "build", "loadtest"),
    ("nightly.yml", "subjects", "attest"),
    ("nightly.yml", "publish", "publish"),
    ("nightly.yml", "publish", "catalog"),
}


@dataclass(frozen=True)
class Workflow:
    name: str
    text: str
    doc: dict[Any, Any]

    @property
    def triggers(self) -> dict[str, Any]:
        # YAML 1.1 reads the key `on` as the boolean True.
        raw = self.doc.get("on", self.doc.get(True))
        if isinstance(raw, str):
            return {raw: None}
        if isinstance(raw, list):
            return dict.fromkeys(raw)
        return dict(raw or {})

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        return dict(self.doc["jobs"])


def load_workflows() -> list[Workflow]:
    paths = sorted([*WORKFLOW_DIR.glob("*.yml"), *WORKFLOW_DIR.glob("*.yaml")])
    return [Workflow(p.name, p.read_text(), yaml.safe_load(p.read_text())) for p in paths]


WORKFLOWS = load_workflows()
BY_NAME = {w.name: w for w in WORKFLOWS}
JOBS = [(w, job_id, job) for w in WORKFLOWS for job_id, job in w.jobs.items()]
JOB_IDS = [f"{w.name}:{job_id}" for w, job_id, _ in JOBS]


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def run_scripts(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in steps(job) if "run" in step]


def all_uses(workflow: Workflow) -> Iterator[str]:
    for job in workflow.jobs.values():
        if "uses" in job:
            yield job["uses"]
        for step in steps(job):
            if "uses" in step:
                yield step["uses"]


def permissions(value: Any) -> dict[str, str]:
    """A permissions block as scope -> level; read-all/write-all as scope '*'."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {"*": value.removesuffix("-all")}
    return {str(scope): str(level) for scope, level in value.items()}


def writes(workflow: Workflow, job: dict[str, Any]) -> set[str]:
    granted = permissions(job.get("permissions", workflow.doc.get("permissions")))
    return {scope for scope, level in granted.items() if level == "write"}


def pushes(job: dict[str, Any]) -> bool:
    return any(re.search(r"\bgit\b[^\n]*\bpush\b", script) for script in run_scripts(job))


def called_workflow(job: dict[str, Any]) -> Workflow | None:
    """A reusable workflow of this repository (`$/...`, or the older `./...` form)."""
    uses = job.get("uses", "")
    if uses.startswith(("$/.github/workflows/", "./.github/workflows/")):
        return BY_NAME[Path(uses).name]
    return None


# --- what exists and when it runs ----------------------------------------------------------

def test_every_expected_workflow_exists() -> None:
    assert set(TRIGGERS) <= set(BY_NAME)


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.name)
def test_triggers(workflow: Workflow) -> None:
    triggers = set(workflow.triggers)
    assert TRIGGERS.get(workflow.name, set()) <= triggers
    assert not triggers & FORBIDDEN_TRIGGERS


def test_pages_rebuilds_when_its_inputs_change() -> None:
    push = BY_NAME["pages.yml"].triggers["push"]
    assert push["branches"] == ["main"]
    assert {"catalog/**", "docs/**", "mkdocs.yml", "builder/**"} <= set(push["paths"])


# --- pinned actions ------------------------------------------------------------------------

@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.name)
def test_actions_are_pinned_to_a_commit_with_its_version(workflow: Workflow) -> None:
    used = [u for u in all_uses(workflow) if not u.startswith(("./", "$/"))]
    assert used, f"{workflow.name}: uses no action"
    for ref in used:
        assert PINNED.match(ref), f"{workflow.name}: {ref} is not pinned to a 40-hex commit"
    lines = [m for line in workflow.text.splitlines() if (m := USES_LINE.match(line))]
    assert sorted(m["ref"] for m in lines if not m["ref"].startswith(("./", "$/"))) == \
        sorted(used)
    for m in lines:
        if not m["ref"].startswith(("./", "$/")):
            assert VERSION_COMMENT.match(m["comment"] or ""), \
                f"{workflow.name}: {m['ref']} needs a `# vX.Y.Z` comment"


def test_each_action_has_one_pin_everywhere() -> None:
    """Same action, same commit and version comment in every workflow (no drift)."""
    pins: dict[str, set[tuple[str, str]]] = {}
    for workflow in WORKFLOWS:
        for line in workflow.text.splitlines():
            m = USES_LINE.match(line)
            if m and not m["ref"].startswith(("./", "$/")):
                action, sha = m["ref"].split("@")
                pins.setdefault(action, set()).add((sha, m["comment"] or ""))
    assert {a: p for a, p in pins.items() if len(p) > 1} == {}


# --- least privilege -----------------------------------------------------------------------

@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.name)
def test_top_level_permissions_are_empty_or_read_only(workflow: Workflow) -> None:
    assert "permissions" in workflow.doc, f"{workflow.name}: set top-level permissions"
    granted = permissions(workflow.doc["permissions"])
    assert set(granted.values()) <= {"read", "none"}


@pytest.mark.parametrize(("workflow", "job_id", "job"), JOBS, ids=JOB_IDS)
def test_only_the_jobs_that_need_it_can_write(workflow: Workflow, job_id: str,
                                              job: dict[str, Any]) -> None:
    assert writes(workflow, job) == WRITES.get((workflow.name, job_id), set())


def test_called_workflows_ask_no_more_than_their_caller_grants() -> None:
    for workflow, job_id, job in JOBS:
        callee = called_workflow(job)
        if callee is None:
            continue
        granted = writes(workflow, job)
        for callee_job in callee.jobs.values():
            assert writes(callee, callee_job) <= granted, f"{workflow.name}:{job_id}"


@pytest.mark.parametrize(("workflow", "job_id", "job"), JOBS, ids=JOB_IDS)
def test_checkout_keeps_no_credentials_unless_the_job_pushes(workflow: Workflow, job_id: str,
                                                             job: dict[str, Any]) -> None:
    job_pushes = pushes(job)
    if job_pushes:
        assert "contents" in writes(workflow, job), f"{job_id} pushes without contents: write"
    for step in steps(job):
        if step.get("uses", "").startswith("actions/checkout@") and not job_pushes:
            assert (step.get("with") or {}).get("persist-credentials") is False, \
                f"{workflow.name}:{job_id}: checkout needs persist-credentials: false"


# --- limits --------------------------------------------------------------------------------

@pytest.mark.parametrize(("workflow", "job_id", "job"), JOBS, ids=JOB_IDS)
def test_every_job_has_a_timeout(workflow: Workflow, job_id: str, job: dict[str, Any]) -> None:
    if "uses" in job:
        # A reusable-workflow call takes no timeout; the called jobs carry their own.
        assert called_workflow(job) is not None, f"{job_id}: only local reusable workflows"
        return
    timeout = job.get("timeout-minutes")
    assert isinstance(timeout, int) and 1 <= timeout <= 360, f"{workflow.name}:{job_id}"


def test_reusable_workflows_do_not_deadlock_on_concurrency() -> None:
    """A called workflow in its caller's concurrency group waits for itself forever."""
    def groups(workflow: Workflow, *jobs: dict[str, Any]) -> set[str]:
        blocks = [workflow.doc.get("concurrency"), *(j.get("concurrency") for j in jobs)]
        return {b["group"] if isinstance(b, dict) else b for b in blocks if b}

    for workflow, job_id, job in JOBS:
        callee = called_workflow(job)
        if callee is None:
            continue
        inner = groups(callee, *callee.jobs.values())
        assert not groups(workflow, job) & inner, f"{workflow.name}:{job_id}"
        assert not any("github.workflow" in g for g in inner), \
            f"{callee.name}: github.workflow is the caller's name when called"


# --- shell scripts -------------------------------------------------------------------------

SCRIPTS = [(f"{w.name}:{job_id}:{i}", script) for w, job_id, job in JOBS
           for i, script in enumerate(run_scripts(job))]


@pytest.mark.parametrize(("where", "script"), SCRIPTS, ids=[s[0] for s in SCRIPTS])
def test_run_scripts_take_no_expressions(where: str, script: str) -> None:
    """Values reach scripts through env: an expression is pasted into the script's text,
    so a branch name or title could run as code (github.event.* above all)."""
    assert "github.event" not in script, where
    assert "${{" not in script, f"{where}: pass the value through `env:`"


@pytest.mark.parametrize(("where", "script"), SCRIPTS, ids=[s[0] for s in SCRIPTS])
def test_run_scripts_are_valid_bash(where: str, script: str) -> None:
    result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, f"{where}: {result.stderr}"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.name)
def test_scripts_run_in_bash(workflow: Workflow) -> None:
    """Actions' bash runs with -e and pipefail; the scripts rely on both."""
    assert workflow.doc.get("defaults", {}).get("run", {}).get("shell") == "bash"


INVOCATIONS = [(w.name, job_id, args) for w, job_id, job in JOBS
               for script in run_scripts(job) for args in cli_invocations(script)]


def test_the_pipeline_commands_are_all_there() -> None:
    found = {(name, job_id, args[0]) for name, job_id, args in INVOCATIONS if args}
    assert found >= EXPECTED_COMMANDS


@pytest.mark.parametrize(("name", "job_id", "args"), INVOCATIONS,
                         ids=[f"{n}:{j}:{' '.join(a[:2])}" for n, j, a in INVOCATIONS])
def test_commands_are_real_subcommands_whose_flags_parse(
        name: str, job_id: str, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert args, f"{name}:{job_id}: falco-probes without a subcommand"
    if importlib.util.find_spec(f"builder.commands.{args[0]}") is None:
        pytest.skip(f"builder/commands/{args[0]}.py does not exist yet")
    try:
        parsed = build_parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"{name}:{job_id}: falco-probes {shlex.join(args)}: "
                    f"{capsys.readouterr().err.strip()}")
    assert callable(parsed.func)


# --- the nightly pipeline's wiring ---------------------------------------------------------

def one_kernel(n: int) -> Kernel:
    return Kernel("debian", HostFacts("debian", f"6.1.0-{n}-amd64",
                                      f"#1 SMP PREEMPT_DYNAMIC Debian 6.1.{n}-1", "x86_64"))


def test_build_legs_read_only_keys_the_plan_matrix_has() -> None:
    """`matrix.<key>` in the build job must exist in what `plan --matrix-out` writes."""
    jobs = tuple(plan_job(one_kernel(n), ("9.1.0+driver",), BUILTIN_RELEASES) for n in range(3))
    plan = shard(Plan(jobs, ()), 2)
    legs = matrix(plan)["include"]
    assert legs
    build = BY_NAME["nightly.yml"].jobs["build"]
    used = set(re.findall(r"\bmatrix\.([\w-]+)", yaml.safe_dump(build)))
    assert used
    for leg in legs:
        assert used <= set(leg), f"the build job reads {sorted(used - set(leg))}"


def test_nightly_jobs_are_wired_plan_build_publish() -> None:
    jobs = BY_NAME["nightly.yml"].jobs
    build, publish = jobs["build"], jobs["publish"]
    assert build["needs"] == "plan"
    assert "has-work" in build["if"]
    strategy = build["strategy"]
    assert strategy["fail-fast"] is False
    assert isinstance(strategy["max-parallel"], int) and 1 <= strategy["max-parallel"] <= 256
    assert strategy["matrix"].replace(" ", "") == "${{fromJSON(needs.plan.outputs.matrix)}}"
    assert set(publish["needs"]) == {"plan", "build", "subjects", "attest"}
    assert "strategy" not in publish
    assert "cancelled()" in publish["if"] or "always()" in publish["if"]
    assert publish["concurrency"] == {"group": "publish", "cancel-in-progress": False}
    assert BY_NAME["nightly.yml"].doc["concurrency"]["cancel-in-progress"] is False


def test_build_legs_install_what_the_makefile_installs() -> None:
    """The legs compile like `make deps` sets the machine up (no browser needed there)."""
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    declared = re.search(r"^DEMO_PACKAGES\s*:=(.*)$", makefile, re.M)
    assert declared, "Makefile: DEMO_PACKAGES not found"
    wanted = set(declared[1].split())
    installed: set[str] = set()
    for script in run_scripts(BY_NAME["nightly.yml"].jobs["build"]):
        for line in script.replace("\\\n", " ").splitlines():
            words = line.split()
            if "apt-get" in words and "install" in words:
                installed |= {w for w in words[words.index("install") + 1:]
                              if not w.startswith("-")}
    assert wanted - {"chromium"} <= installed


def test_ci_runs_what_ci_runs_locally() -> None:
    job = BY_NAME["ci.yml"].jobs["test"]
    assert "bash .ci/run" in [s.strip() for s in run_scripts(job)]
    container = job["container"]
    image = container["image"] if isinstance(container, dict) else container
    assert image.startswith("debian:12")


def test_pages_builds_strictly_and_deploys_with_the_official_actions() -> None:
    jobs = BY_NAME["pages.yml"].jobs
    assert any("mkdocs build --strict" in s for s in run_scripts(jobs["build"]))
    used = {u.split("@")[0] for u in all_uses(BY_NAME["pages.yml"])}
    assert {"actions/configure-pages", "actions/upload-pages-artifact",
            "actions/deploy-pages"} <= used
    assert jobs["deploy"]["environment"]["name"] == "github-pages"
    assert BY_NAME["pages.yml"].doc["concurrency"]["group"] == "pages"


# --- dependabot ----------------------------------------------------------------------------

def test_dependabot_updates_actions_and_python_weekly() -> None:
    config = yaml.safe_load(DEPENDABOT.read_text())
    assert config["version"] == 2
    updates = {u["package-ecosystem"]: u for u in config["updates"]}
    assert {"github-actions", "pip"} <= set(updates)
    for update in updates.values():
        assert update["directory"] == "/"
        assert update["schedule"]["interval"] == "weekly"



# --- the steps themselves, run as Actions runs them -----------------------------------------
# `bash --noprofile --norc -eo pipefail` on the step's script, with its env: and the
# variables Actions sets, against real parts (a git origin on disk, the fake GitHub).

TOKEN = "ghs_workflowTestToken0123456789"
BOT = "github-actions[bot]"


def workflow_step(workflow: str, job: str, name: str) -> dict[str, Any]:
    for step in steps(BY_NAME[workflow].jobs[job]):
        if step.get("name") == name:
            return step
    raise AssertionError(f"{workflow}:{job}: no step named {name!r}")


def clean_env(home: Path) -> dict[str, str]:
    """A runner-like environment without this machine's (or CI's own) GitHub variables."""
    return {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(home), "LANG": "C.UTF-8", "GIT_CONFIG_NOSYSTEM": "1"}


def run_step(step: dict[str, Any], cwd: Path, env: dict[str, str]
             ) -> subprocess.CompletedProcess[str]:
    declared = {str(k): str(v) for k, v in (step.get("env") or {}).items()}
    unresolved = {k for k, v in declared.items() if "${{" in v} - set(env)
    assert not unresolved, f"{step['name']}: the test must give {sorted(unresolved)}"
    script = cwd.parent / "step.sh"
    script.write_text(step["run"])
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                          cwd=cwd, env={**declared, **env}, capture_output=True, text=True,
                          timeout=120, check=False)


def outputs(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines() if path.exists() else []
    return dict(line.split("=", 1) for line in lines)


def git(cwd: Path, *args: str, env: dict[str, str]) -> str:
    person = {"GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.org",
              "GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@example.org"}
    return subprocess.run(["git", *args], cwd=cwd, env={**env, **person}, capture_output=True,
                          text=True, check=True, timeout=60).stdout.strip()


def origin_and_checkout(tmp_path: Path, files: dict[str, str], env: dict[str, str]
                        ) -> tuple[Path, Path]:
    """A bare `origin` whose main holds `files`, and a clone of it (the job's checkout)."""
    origin, seed, work = tmp_path / "origin.git", tmp_path / "seed", tmp_path / "work"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin), env=env)
    git(tmp_path, "clone", "-q", str(origin), str(seed), env=env)
    for name, text in files.items():
        (seed / name).parent.mkdir(parents=True, exist_ok=True)
        (seed / name).write_text(text)
    git(seed, "add", "-A", env=env)
    git(seed, "commit", "-q", "-m", "start", env=env)
    git(seed, "push", "-q", "origin", "HEAD:main", env=env)
    git(tmp_path, "clone", "-q", str(origin), str(work), env=env)
    return origin, work


PLAN_CONFIG = """\
schema_version: 1
driver_versions: {drivers}
targets:
  - {{name: ubuntu, kernels: 'kernel-crawler:{list}'{extra}}}
"""
CRAWLER_LIST = ROOT / "tests" / "data" / "kernel-crawler" / "x86_64" / "list.json"


DRIVER = "[{version: 6.0.1+driver, falco: [0.36.0], source: {kind: libs-archive}}]"


@pytest.mark.parametrize(("drivers", "extra", "code", "has_work"), [
    (DRIVER, "", 0, "true"),
    ("[]", "", 0, "false"),                                  # plan exits 1: a quiet night
    # a target that keeps no kernel is a mistake, not a quiet night: the job fails
    (DRIVER, ", include: '^no-such-kernel$'", 2, None),
    (DRIVER, ", arch: [sparc]", 2, None),                    # bad input fails the job
])
def test_plan_step_outputs_the_matrix_or_a_quiet_night(tmp_path: Path, drivers: str, extra: str,
                                                       code: int, has_work: str | None) -> None:
    work = tmp_path / "work"
    (work / "catalog").mkdir(parents=True)
    (work / "probes.yaml").write_text(PLAN_CONFIG.format(list=CRAWLER_LIST, extra=extra,
                                                         drivers=drivers))
    output = tmp_path / "output"
    result = run_step(workflow_step("nightly.yml", "plan", "Plan"), work,
                      {**clean_env(tmp_path), "GITHUB_OUTPUT": str(output),
                       "KERNEL_LIMIT": "30"})
    assert result.returncode == code, result.stderr
    if has_work is None:
        return
    found = outputs(output)
    assert found["has-work"] == has_work
    legs = json.loads(found["matrix"])["include"]
    assert (len(legs) > 0) == (has_work == "true")
    assert all({"shard", "compiles"} <= set(leg) for leg in legs)
    assert (work / "plan.json").is_file()


PUBLISH_STEPS = ("Publish to GitHub Releases", "Merge the fragment into the catalog",
                 "Check the catalog", "Commit the catalog to main")
PUBLISH_CONFIG = ("schema_version: 1\ndriver_versions: []\ntargets: []\n"
                  "store: {kind: github, repository: acme/probes}\n")


def test_publish_job_publishes_merges_and_pushes_the_catalog(tmp_path: Path) -> None:
    """The publish job's steps against the fake GitHub and a git origin on disk: probes
    uploaded, failures recorded, the catalog committed to main by the bot; a rerun
    uploads and commits nothing."""
    env = clean_env(tmp_path)
    origin, work = origin_and_checkout(tmp_path, {"probes.yaml": PUBLISH_CONFIG}, env)
    built = write_report(work / "shards" / "out-0", specs(1))
    write_report(work / "shards" / "out-1", specs(1, start=1),
                         failures=specs(1, start=5))
    # The attest job's bundle, covering the first leg's probe only.
    unsigned_bundle(work / "attestations" / "001.sigstore.json",
                    [Subject(subject_name(r.driver_version, r.arch, r.file), r.sha256)
                     for r in built])
    start = git(work, "rev-parse", "HEAD", env=env)
    with FakeGitHub(token=TOKEN, owner="acme", repo="probes") as fake:
        for attempt in (1, 2):
            output = tmp_path / f"output{attempt}"
            actions = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": fake.api_url,
                       "GITHUB_REPOSITORY": "acme/probes", "GITHUB_RUN_ID": "4242",
                       "GITHUB_SERVER_URL": "https://github.com", "GITHUB_SHA": start,
                       "GITHUB_OUTPUT": str(output)}
            for name in PUBLISH_STEPS:
                step = workflow_step("nightly.yml", "publish", name)
                result = run_step(step, work, {**env, **actions})
                assert result.returncode == 0, f"{name}: {result.stderr}"
            assert TOKEN not in result.stdout + result.stderr
            assert outputs(output)["changed"] == ("true" if attempt == 1 else "false")
            # two probes and the bundle (these fake reports have no log files)
            assert sum(len(r["assets"]) for r in fake.releases()) == 3
    assert git(origin, "log", "-1", "--format=%an", "main", env=env) == BOT
    assert "run 4242" in git(origin, "log", "-1", "--format=%s", "main", env=env)
    changed = git(origin, "diff", "--name-only", start, "main", env=env).splitlines()
    assert changed and all(path.startswith("catalog/") for path in changed)
    catalog = "".join(git(origin, "show", f"main:{path}", env=env) for path in changed)
    assert catalog.count(fake.web_url) >= 2      # each probe's exact URL
    assert "actions/runs/4242" in catalog        # and the run that built it
    assert "5.15.0-5-generic" in catalog         # the failed build, recorded
    assert catalog.count("attestation: ") == 1 and ".sigstore.json" in catalog


def test_subjects_step_lists_chunks_for_the_attest_matrix(tmp_path: Path) -> None:
    work = tmp_path / "work"
    write_report(work / "reports" / "report-0", specs(2))
    write_report(work / "reports" / "report-1", [], failures=specs(1, start=4))
    step = workflow_step("nightly.yml", "subjects", "List the probes built")
    output = tmp_path / "output"
    result = run_step(step, work, {**clean_env(tmp_path), "GITHUB_OUTPUT": str(output)})
    assert result.returncode == 0, result.stderr
    assert json.loads(outputs(output)["chunks"]) == ["001"]
    assert len((work / "subjects" / "001.sha256sums").read_text().splitlines()) == 2
    # A night where every compile failed: nothing to attest, the attest job is skipped.
    quiet = tmp_path / "quiet"
    write_report(quiet / "reports" / "report-0", [], failures=specs(1))
    (tmp_path / "output").unlink()
    result = run_step(step, quiet, {**clean_env(tmp_path), "GITHUB_OUTPUT": str(output)})
    assert result.returncode == 0, result.stderr
    assert outputs(output)["chunks"] == "[]"
    assert "nothing to attest" in result.stdout
    assert "needs.subjects.outputs.chunks != '[]'" in BY_NAME["nightly.yml"].jobs["attest"]["if"]


def test_the_attest_job_signs_the_lists_and_runs_no_code_of_ours() -> None:
    """id-token and attestations are granted to this job only (WRITES), and it checks out
    nothing: what it signs comes from the subject lists, what it runs is the action."""
    job = BY_NAME["nightly.yml"].jobs["attest"]
    actions = {s["uses"].split("@")[0]: s for s in steps(job) if "uses" in s}
    assert "actions/checkout" not in actions
    assert all("falco-probes" not in script for script in run_scripts(job))
    attest = actions["actions/attest-build-provenance"]
    assert attest["with"] == {"subject-checksums": "subjects/${{ matrix.chunk }}.sha256sums"}
    assert job["strategy"]["matrix"]["chunk"].replace(" ", "") == \
        "${{fromJSON(needs.subjects.outputs.chunks)}}"
    assert job["strategy"]["fail-fast"] is False
    keep = workflow_step("nightly.yml", "attest", "Keep the bundle")
    assert keep["env"]["BUNDLE"] == "${{ steps.attest.outputs.bundle-path }}"
    download = workflow_step("nightly.yml", "publish", "Download the attestations")
    assert download["with"]["pattern"] == "attestation-*"
    assert "--attestations" in workflow_step("nightly.yml", "publish",
                                             "Publish to GitHub Releases")["run"]


def test_each_build_result_links_its_job() -> None:
    step = workflow_step("nightly.yml", "build", "Build")
    assert step["env"]["FALCO_PROBES_JOB_ID"] == "${{ job.check_run_id }}"


SUPPRESSION = re.compile(r"# zizmor: ignore\[(?P<audits>[\w,-]+)\](?P<why>.*)$")


def test_every_zizmor_suppression_says_why() -> None:
    found = 0
    for workflow in WORKFLOWS:
        for number, line in enumerate(workflow.text.splitlines(), 1):
            if "zizmor:" not in line:
                continue
            match = SUPPRESSION.search(line)
            assert match, f"{workflow.name}:{number}: malformed zizmor comment"
            assert re.fullmatch(r" -- \S.{15,}", match["why"]), \
                f"{workflow.name}:{number}: say why after ` -- `"
            found += 1
    assert found


def test_zizmor_is_clean() -> None:
    """The same check `make lint` runs; zizmor is a dev dependency, pinned."""
    zizmor = Path(sys.executable).with_name("zizmor")
    if not zizmor.exists():
        pytest.skip("zizmor is not installed (pip install -e '.[dev]')")
    result = subprocess.run([str(zizmor), "--offline", "--persona", "auditor",
                             str(ROOT / ".github")], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_commit_step_replays_the_catalog_on_a_main_that_moved(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    origin, work = origin_and_checkout(
        tmp_path, {"README.md": "one\n", "catalog/x.yaml": "a\n"}, env)
    # Someone pushes to main while the nightly builds.
    git(tmp_path / "seed", "commit", "-q", "--allow-empty", "-m", "meanwhile", env=env)
    git(tmp_path / "seed", "push", "-q", "origin", "HEAD:main", env=env)
    (work / "catalog" / "x.yaml").write_text("b\n")
    shims = tmp_path / "shims"          # the retry's back-off, without the wait
    shims.mkdir()
    (shims / "sleep").write_text("#!/bin/sh\nexit 0\n")
    (shims / "sleep").chmod(0o755)
    output = tmp_path / "output"
    result = run_step(workflow_step("nightly.yml", "publish", "Commit the catalog to main"),
                      work, {**env, "PATH": f"{shims}{os.pathsep}{env['PATH']}",
                             "GITHUB_OUTPUT": str(output), "GITHUB_RUN_ID": "7",
                             "GITHUB_SERVER_URL": "https://github.com",
                             "GITHUB_REPOSITORY": "acme/probes"})
    assert result.returncode == 0, result.stderr
    assert outputs(output) == {"changed": "true"}
    log = git(origin, "log", "--format=%an %s", "main", env=env).splitlines()
    assert log == [f"{BOT} catalog: probes published by nightly run 7",
                   "dev meanwhile", "dev start"]
    assert git(origin, "show", "main:catalog/x.yaml", env=env) == "b"


def test_a_crash_is_not_a_quiet_night(tmp_path: Path) -> None:
    """Python exits 1 on an uncaught exception, the code plan and attest subjects use for
    "nothing to do": the steps tell them apart by the file a real answer writes."""
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "falco-probes").write_text("#!/bin/sh\necho 'Traceback ...' >&2\nexit 1\n")
    (shims / "falco-probes").chmod(0o755)
    env = {**clean_env(tmp_path), "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
           "KERNEL_LIMIT": "3"}
    for job, name in (("plan", "Plan"), ("subjects", "List the probes built")):
        work = tmp_path / job
        work.mkdir()
        output = tmp_path / f"{job}.out"
        result = run_step(workflow_step("nightly.yml", job, name), work,
                          {**env, "GITHUB_OUTPUT": str(output)})
        assert result.returncode != 0, f"{job}: a crash passed as nothing to do"
