"""Run a GitHub Actions workflow file on this machine, the way the runner would.

Jobs run in `needs` order with GitHub's `if:` rules (a job whose needs did not all
succeed is skipped unless its condition calls a status function), matrix legs one
after the other, and each `run:` step's own script with `bash --noprofile --norc -eo
pipefail` in a fresh workspace per leg, with the variables and files the runner
provides (GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH, GITHUB_WORKSPACE, RUNNER_TEMP ...).
Expressions (`${{ ... }}` and `if:`) are evaluated by the small evaluator below: the
operators, contexts and functions GitHub documents that these workflows use; anything
else is an error, never a guess.

`uses:` steps are answered by local stand-ins, keyed by action: artifacts are folders
under the run's folder with upload/download-artifact's layout rules; checkout clones a
local origin. A stand-in is given the step's inputs and returns its outputs. Steps the
caller names as machine setup (installing packages) are skipped and reported so.

Only the standard library and PyYAML; used by tests/helpers/rehearse.py.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# --- expressions ---------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\],.*])
    | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
    )""", re.X)
_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.S)
STATUS_FUNCTIONS = ("always", "success", "failure", "cancelled")


class ExpressionError(Exception):
    """An expression this evaluator does not understand: fix it or teach the evaluator."""


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ExpressionError(f"cannot read {text[pos:]!r} in {text!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class Evaluator:
    """Evaluates one expression against contexts (dicts) and functions."""

    def __init__(self, contexts: Mapping[str, Any],
                 functions: Mapping[str, Callable[..., Any]]) -> None:
        self.contexts = contexts
        self.functions = functions

    def evaluate(self, text: str) -> Any:
        self.tokens, self.pos, self.text = tokenize(text), 0, text
        value = self._or()
        if self.pos != len(self.tokens):
            raise ExpressionError(f"unexpected {self.tokens[self.pos][1]!r} in {text!r}")
        return value

    def _peek(self) -> str:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else ""

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise ExpressionError(f"{self.text!r} ends early")
        token = self.tokens[self.pos]
        if expected is not None and token[1] != expected:
            raise ExpressionError(f"expected {expected!r}, found {token[1]!r} in {self.text!r}")
        self.pos += 1
        return token

    def _or(self) -> Any:
        value = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            value = value if truthy(value) else right
        return value

    def _and(self) -> Any:
        value = self._equality()
        while self._peek() == "&&":
            self._take()
            right = self._equality()
            value = right if truthy(value) else value
        return value

    def _equality(self) -> Any:
        value = self._comparison()
        while self._peek() in ("==", "!="):
            op = self._take()[1]
            equal = loose_equal(value, self._comparison())
            value = equal if op == "==" else not equal
        return value

    def _comparison(self) -> Any:
        value = self._unary()
        while self._peek() in ("<", "<=", ">", ">="):
            op = self._take()[1]
            a, b = to_number(value), to_number(self._unary())
            value = {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        return value

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not truthy(self._unary())
        return self._postfix()

    def _postfix(self) -> Any:
        value = self._primary()
        while self._peek() in (".", "["):
            if self._take()[1] == ".":
                value = index(value, self._take()[1])
            else:
                key = self._or()
                self._take("]")
                value = index(value, key)
        return value

    def _primary(self) -> Any:
        kind, text = self._take()
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "number":
            return float(text) if "." in text else int(text)
        if text == "(":
            value = self._or()
            self._take(")")
            return value
        if kind != "name":
            raise ExpressionError(f"unexpected {text!r} in {self.text!r}")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self._peek() == "(":
            self._take()
            args = []
            while self._peek() != ")":
                args.append(self._or())
                if self._peek() == ",":
                    self._take()
            self._take(")")
            function = self.functions.get(text.lower())
            if function is None:
                raise ExpressionError(f"unknown function {text}() in {self.text!r}")
            return function(*args)
        if text not in self.contexts:
            raise ExpressionError(f"unknown context {text!r} in {self.text!r}")
        return self.contexts[text]


def truthy(value: Any) -> bool:
    if isinstance(value, float) and math.isnan(value):
        return False
    return value not in (None, False, 0, "")


def to_number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip() or 0)
        except ValueError:
            return math.nan
    return math.nan


def loose_equal(a: Any, b: Any) -> bool:
    """GitHub's `==`: same types compare directly (strings ignoring case), else as numbers."""
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if type(a) is type(b) or (a is None and b is None):
        return bool(a == b)
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return a is b
    return to_number(a) == to_number(b)


def index(value: Any, key: Any) -> Any:
    if isinstance(value, dict):
        for candidate, item in value.items():
            if str(candidate).lower() == str(key).lower():
                return item
        return None
    if isinstance(value, list) and isinstance(key, int | float) and 0 <= int(key) < len(value):
        return value[int(key)]
    return None


def to_string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def interpolate(text: Any, evaluator: Evaluator) -> Any:
    """A value with every `${{ expr }}` replaced; a string that is one expression keeps the
    expression's type (what `strategy.matrix: ${{ fromJSON(...) }}` relies on)."""
    if isinstance(text, dict):
        return {k: interpolate(v, evaluator) for k, v in text.items()}
    if isinstance(text, list):
        return [interpolate(v, evaluator) for v in text]
    if not isinstance(text, str) or "${{" not in text:
        return text
    whole = _TEMPLATE.fullmatch(text.strip())
    if whole:
        return evaluator.evaluate(whole.group(1))
    return _TEMPLATE.sub(lambda m: to_string(evaluator.evaluate(m.group(1))), text)


def condition(raw: Any, evaluator: Evaluator) -> bool:
    """An `if:`: implicitly `success() && (...)` unless it calls a status function."""
    if raw is None:
        return truthy(evaluator.evaluate("success()"))
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip()
    whole = _TEMPLATE.fullmatch(text)
    text = whole.group(1) if whole else text
    if not any(re.search(rf"\b{name}\s*\(", text) for name in STATUS_FUNCTIONS):
        text = f"success() && ({text})"
    return truthy(evaluator.evaluate(text))


# --- the run -------------------------------------------------------------------------------

@dataclass
class StepRecord:
    job: str
    leg: str
    name: str
    outcome: str            # success | failure | skipped | setup (skipped as machine setup)
    seconds: float = 0.0
    log: Path | None = None


@dataclass
class JobResult:
    result: str             # success | failure | skipped
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class Leg:
    """One matrix leg of one job, while it runs."""

    job_id: str
    label: str
    workspace: Path
    temp: Path
    env: dict[str, str]
    contexts: dict[str, Any]
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: bool = False


ActionHandler = Callable[[Leg, dict[str, Any]], dict[str, str]]


@dataclass
class WorkflowRun:
    """Runs workflows of `workflows` (a .github/workflows folder) for one event."""

    workflows: Path
    root: Path                               # workspaces, artifacts, logs go here
    env: dict[str, str]                      # the runner's environment (PATH, HOME, GITHUB_*)
    github: dict[str, Any]                   # the github context
    inputs: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    actions: dict[str, ActionHandler] = field(default_factory=dict)
    setup_steps: frozenset[str] = frozenset()  # step names skipped as machine setup
    report: Callable[[str], None] = print
    records: list[StepRecord] = field(default_factory=list)
    _check_run: int = 51725241000

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    def run(self, workflow: str) -> dict[str, JobResult]:
        doc = yaml.safe_load((self.workflows / workflow).read_text())
        return self._jobs(doc, workflow)

    def _jobs(self, doc: dict[str, Any], workflow: str) -> dict[str, JobResult]:
        jobs: dict[str, dict[str, Any]] = doc["jobs"]
        done: dict[str, JobResult] = {}
        for job_id in _order(jobs):
            job = jobs[job_id]
            needs = [job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", [])
            needs_context = {n: {"result": done[n].result, "outputs": done[n].outputs}
                             for n in needs}
            base = self._contexts(doc, needs_context)
            evaluator = Evaluator(base, self._functions(None, needs_context, base))
            if not condition(job.get("if"), evaluator):
                done[job_id] = JobResult("skipped")
                self.report(f"{workflow}: {job_id}: skipped")
                continue
            if "uses" in job:
                called = self.run(_local_workflow(job["uses"]))
                failed = any(r.result == "failure" for r in called.values())
                done[job_id] = JobResult("failure" if failed else "success")
                continue
            done[job_id] = self._job(doc, workflow, f"{Path(workflow).stem}.{job_id}", job,
                                     base, evaluator)
        return done

    def _contexts(self, doc: dict[str, Any], needs: dict[str, Any]) -> dict[str, Any]:
        contexts: dict[str, Any] = {
            "github": self.github, "inputs": self.inputs, "secrets": self.secrets,
            "needs": needs, "vars": {}, "env": {}, "matrix": {}, "strategy": {},
            "steps": {}, "job": {"status": "success"}, "runner": {"os": "Linux"}}
        evaluator = Evaluator(contexts, self._functions(None, needs, contexts))
        contexts["env"] = {k: to_string(interpolate(v, evaluator))
                           for k, v in (doc.get("env") or {}).items()}
        return contexts

    def _job(self, doc: dict[str, Any], workflow: str, name: str, job: dict[str, Any],
             base: dict[str, Any], evaluator: Evaluator) -> JobResult:
        """Every leg of one job; `name` is `<workflow>.<job id>`, its legs' labels."""
        legs = _matrix(interpolate(job.get("strategy", {}).get("matrix"), evaluator))
        results, outputs = [], {}
        for number, matrix in enumerate(legs):
            label = name if len(legs) == 1 and not matrix else f"{name}-{number}"
            leg = self._leg(name.split(".", 1)[1], label, job, base, matrix)
            self._steps(workflow, job, leg)
            results.append(not leg.failed)
            leg_eval = Evaluator(leg.contexts, self._functions(leg, base["needs"], leg.contexts))
            outputs = {k: to_string(interpolate(v, leg_eval))
                       for k, v in (job.get("outputs") or {}).items()}
        return JobResult("success" if all(results) else "failure", outputs)

    def _leg(self, job_id: str, label: str, job: dict[str, Any], base: dict[str, Any],
             matrix: dict[str, Any]) -> Leg:
        workspace, temp = self.root / "work" / label, self.root / "temp" / label
        for folder in (workspace, temp):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        self._check_run += 1
        contexts = {**base, "matrix": matrix, "steps": {},
                    "job": {"status": "success", "check_run_id": self._check_run},
                    "runner": {"os": "Linux", "temp": str(temp)},
                    "github": {**self.github, "job": job_id, "workspace": str(workspace)}}
        leg = Leg(job_id, label, workspace, temp, {}, contexts)
        evaluator = Evaluator(contexts, self._functions(leg, base["needs"], contexts))
        job_env = {k: to_string(interpolate(v, evaluator)) for k, v in
                   (job.get("env") or {}).items()}
        contexts["env"] = {**base["env"], **job_env}
        leg.env = {**self.env, **contexts["env"], "GITHUB_WORKSPACE": str(workspace),
                   "RUNNER_TEMP": str(temp), "GITHUB_JOB": job_id, "CI": "true",
                   "GITHUB_ACTIONS": "true"}
        return leg

    def _steps(self, workflow: str, job: dict[str, Any], leg: Leg) -> None:
        timeout = 60 * int(job.get("timeout-minutes") or 360)
        for number, step in enumerate(job.get("steps") or []):
            name = step.get("name") or step.get("uses") or step.get("run", "").split("\n")[0]
            evaluator = Evaluator(leg.contexts, self._functions(leg, leg.contexts["needs"],
                                                                leg.contexts))
            started = time.monotonic()
            if name in self.setup_steps:
                outcome, log = "setup", None
            elif not condition(step.get("if"), evaluator):
                outcome, log = "skipped", None
            else:
                log = self.root / "logs" / leg.label / f"{number:02d}-{_slug(name)}.log"
                ok, outputs = self._step(step, leg, evaluator, log, timeout)
                outcome = "success" if ok else "failure"
                if not ok and not step.get("continue-on-error"):
                    leg.failed = True
                    leg.contexts["job"]["status"] = "failure"
                if "id" in step:
                    leg.contexts["steps"][step["id"]] = {"outputs": outputs, "outcome": outcome,
                                                         "conclusion": outcome}
            if "id" in step and step["id"] not in leg.contexts["steps"]:
                leg.contexts["steps"][step["id"]] = {"outputs": {}, "outcome": "skipped",
                                                     "conclusion": "skipped"}
            record = StepRecord(leg.job_id, leg.label, name, outcome,
                                time.monotonic() - started, log)
            self.records.append(record)
            self.report(f"{workflow}: {leg.label}: {name}: {outcome} ({record.seconds:.1f} s)"
                        + (f"; log {log}" if outcome == "failure" else ""))

    def _step(self, step: dict[str, Any], leg: Leg, evaluator: Evaluator, log: Path,
              timeout: int) -> tuple[bool, dict[str, str]]:
        log.parent.mkdir(parents=True, exist_ok=True)
        if "uses" in step:
            action = step["uses"].split("@")[0]
            handler = self.actions.get(action)
            if handler is None:
                raise ExpressionError(f"no stand-in for action {action}")
            inputs = {k: interpolate(v, evaluator) for k, v in (step.get("with") or {}).items()}
            try:
                outputs = handler(leg, inputs)
            except Exception as exc:  # the action failed: the step fails, as on GitHub
                log.write_text(f"{action}: {exc}\n")
                return False, {}
            log.write_text(f"{action} {json.dumps(inputs)} -> {json.dumps(outputs)}\n")
            return True, outputs
        env = {**leg.env, **{k: to_string(interpolate(v, evaluator))
                             for k, v in (step.get("env") or {}).items()}}
        files = {name: leg.temp / f"{name.lower()}-{time.monotonic_ns()}"
                 for name in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH",
                              "GITHUB_STEP_SUMMARY")}
        for path in files.values():
            path.touch()
        script = leg.temp / "step.sh"
        script.write_text(interpolate(step["run"], evaluator))
        cwd = leg.workspace / step.get("working-directory", ".")
        with log.open("w") as out:
            try:
                result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail",
                                         str(script)], cwd=cwd, stdout=out,
                                        stderr=subprocess.STDOUT,
                                        env={**env, **{k: str(v) for k, v in files.items()}},
                                        timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                out.write(f"\nthe step ran out of its job's {timeout} s\n")
                return False, {}
        outputs = _key_values(files["GITHUB_OUTPUT"].read_text())
        leg.env.update(_key_values(files["GITHUB_ENV"].read_text()))
        added = [line for line in files["GITHUB_PATH"].read_text().splitlines() if line]
        if added:
            leg.env["PATH"] = os.pathsep.join([*reversed(added), leg.env["PATH"]])
        return result.returncode == 0, outputs

    def _functions(self, leg: Leg | None, needs: dict[str, Any],
                   contexts: dict[str, Any]) -> dict[str, Callable[..., Any]]:
        def success() -> bool:
            if leg is not None:
                return not leg.failed
            return all(n["result"] == "success" for n in needs.values())

        def failure() -> bool:
            if leg is not None:
                return leg.failed
            return any(n["result"] == "failure" for n in needs.values())

        def hash_files(*patterns: str) -> str:
            root = Path(contexts["github"].get("workspace") or self.root)
            files = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
            if not files:
                return ""
            digest = hashlib.sha256()
            for path in files:
                digest.update(hashlib.sha256(path.read_bytes()).digest())
            return digest.hexdigest()

        return {
            "always": lambda: True, "cancelled": lambda: False, "success": success,
            "failure": failure, "hashfiles": hash_files,
            "fromjson": lambda text: json.loads(text),
            "tojson": lambda value: json.dumps(value, indent=2),
            "contains": lambda haystack, needle: (
                any(loose_equal(item, needle) for item in haystack)
                if isinstance(haystack, list)
                else to_string(needle).lower() in to_string(haystack).lower()),
            "startswith": lambda a, b: to_string(a).lower().startswith(to_string(b).lower()),
            "endswith": lambda a, b: to_string(a).lower().endswith(to_string(b).lower()),
            "format": lambda text, *args: re.sub(
                r"\{(\d+)\}", lambda m: to_string(args[int(m.group(1))]), text),
            "join": lambda items, sep=",": to_string(sep).join(map(to_string, items)),
        }


def _order(jobs: dict[str, dict[str, Any]]) -> list[str]:
    """Jobs in `needs` order, ties in file order."""
    order: list[str] = []
    pending = list(jobs)
    while pending:
        for job_id in pending:
            needs = jobs[job_id].get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            if all(n in order for n in needs):
                order.append(job_id)
                pending.remove(job_id)
                break
        else:
            raise ExpressionError(f"jobs {pending} need each other or a job that does not exist")
    return order


def _matrix(matrix: Any) -> list[dict[str, Any]]:
    """The legs of a matrix: the product of its vectors, then `include` entries."""
    if not matrix:
        return [{}]
    if not isinstance(matrix, dict):
        raise ExpressionError(f"matrix {matrix!r} is not a mapping")
    legs: list[dict[str, Any]] = [{}]
    for key, values in matrix.items():
        if key in ("include", "exclude"):
            continue
        if not isinstance(values, list) or not values:
            raise ExpressionError(f"matrix vector {key!r} has no values (GitHub fails the job)")
        legs = [{**leg, key: value} for leg in legs for value in values]
    include = matrix.get("include") or []
    if include and legs == [{}]:
        return [dict(item) for item in include]
    return legs + [dict(item) for item in include]


def _local_workflow(uses: str) -> str:
    for prefix in ("$/.github/workflows/", "./.github/workflows/"):
        if uses.startswith(prefix):
            return uses[len(prefix):]
    raise ExpressionError(f"only this repository's reusable workflows can run here: {uses}")


def _key_values(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT / GITHUB_ENV: `key=value` lines and `key<<DELIM` blocks."""
    out: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            block = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            out[key] = "\n".join(block)
        elif "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:50] or "step"


# --- stand-ins for the actions these workflows use -------------------------------------------

def _paths(text: str) -> list[str]:
    return [line.strip() for line in str(text).splitlines() if line.strip()]


def _visible(path: Path, base: Path) -> bool:
    """upload-artifact leaves out hidden files and folders (include-hidden-files: false)."""
    return not any(part.startswith(".") for part in path.relative_to(base).parts)


def upload_artifact(run: WorkflowRun) -> ActionHandler:
    def handler(leg: Leg, inputs: dict[str, Any]) -> dict[str, str]:
        name = str(inputs["name"])
        files: list[tuple[Path, Path]] = []       # (source, path inside the artifact)
        given = [leg.workspace / p for p in _paths(inputs["path"])]
        existing = [p for p in given if p.exists()]
        root = Path(os.path.commonpath(existing)) if existing else leg.workspace
        if len(existing) == 1 and existing[0].is_file():
            root = existing[0].parent
        for path in existing:
            found = [path] if path.is_file() else sorted(p for p in path.rglob("*")
                                                         if p.is_file() and _visible(p, path))
            files += [(f, f.relative_to(root)) for f in found]
        if not files:
            mode = inputs.get("if-no-files-found", "warn")
            if mode == "error":
                raise FileNotFoundError(f"no files found for artifact {name}")
            return {}
        dest = run.artifacts / name
        if dest.exists():
            raise FileExistsError(f"artifact {name} already exists in this run")
        for source, rel in files:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
        return {"artifact-id": str(abs(hash(name)) % 10**9)}
    return handler


def download_artifact(run: WorkflowRun) -> ActionHandler:
    def handler(leg: Leg, inputs: dict[str, Any]) -> dict[str, str]:
        path = leg.workspace / str(inputs.get("path") or ".")
        available = sorted(p.name for p in run.artifacts.iterdir()) \
            if run.artifacts.is_dir() else []
        if inputs.get("name"):
            if inputs["name"] not in available:
                raise FileNotFoundError(f"Artifact '{inputs['name']}' not found")
            chosen, flat = [str(inputs["name"])], True
        else:
            pattern = str(inputs.get("pattern") or "*")
            chosen = [n for n in available if fnmatch.fnmatchcase(n, pattern)]
            flat = bool(inputs.get("merge-multiple")) or len(chosen) == 1
        for name in chosen:
            shutil.copytree(run.artifacts / name, path if flat else path / name,
                            dirs_exist_ok=True)
        return {"download-path": str(path)}
    return handler


def checkout(origin: Path) -> ActionHandler:
    def handler(leg: Leg, inputs: dict[str, Any]) -> dict[str, str]:
        ref = str(inputs.get("ref") or leg.contexts["github"]["sha"])
        # A branch is checked out at its tip now (pages.yml asks for github.ref to see the
        # catalog commit nightly just pushed); a commit as itself.
        target = "origin/" + ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") \
            else ref
        for command in (["git", "clone", "-q", str(origin), "."],
                        ["git", "checkout", "-q", "--detach", target]):
            subprocess.run(command, cwd=leg.workspace, check=True, env=leg.env,
                           capture_output=True, timeout=300)
        return {"ref": ref}
    return handler


def nothing(outputs: dict[str, str] | None = None) -> ActionHandler:
    """An action with no effect here (setup-python: the rehearsal's venv is on PATH)."""
    return lambda _leg, _inputs: dict(outputs or {})


def pages_artifact(run: WorkflowRun) -> ActionHandler:
    def handler(leg: Leg, inputs: dict[str, Any]) -> dict[str, str]:
        source = leg.workspace / str(inputs.get("path") or "_site")
        dest = run.artifacts / str(inputs.get("name") or "github-pages")
        shutil.copytree(source, dest)
        return {"artifact_id": "1"}
    return handler


def default_actions(run: WorkflowRun, origin: Path) -> dict[str, ActionHandler]:
    return {
        "actions/checkout": checkout(origin),
        "actions/setup-python": nothing(),
        "actions/cache": nothing({"cache-hit": "false"}),
        "actions/upload-artifact": upload_artifact(run),
        "actions/download-artifact": download_artifact(run),
        "actions/configure-pages": nothing({"base_url": "http://127.0.0.1/"}),
        "actions/upload-pages-artifact": pages_artifact(run),
        "actions/deploy-pages": nothing({"page_url": "http://127.0.0.1/"}),
        # No GitHub App here: an empty token, so a step falls back to GITHUB_TOKEN.
        "actions/create-github-app-token": nothing({"token": ""}),
    }


def failed_steps(records: list[StepRecord]) -> Iterator[StepRecord]:
    return (r for r in records if r.outcome == "failure")
