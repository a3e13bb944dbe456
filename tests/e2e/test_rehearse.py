"""The nightly workflow, rehearsed here (tests/helpers/rehearse.py, `make rehearse`): it
passes end to end, its records link their job, log and attestation, and it ran exactly the
commands the workflow's own text holds, with the same flags.

The static tests below need no rehearsal: the steps skipped as machine setup run no
pipeline command, every action the workflows use has a stand-in, and every expression
they hold is one the runner understands. The rest share one rehearsal (about three
minutes with warm caches: apt, two kernels' headers, four compiles and their load tests in
QEMU, mkdocs).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from realprobe import DKMS_DRIVER_VERSION, snapshot_loads_with
from rehearse import SETUP_STEPS, TOOLS, WORKFLOWS, Rehearsal, attest_standin, rehearse
from workflowrun import Evaluator, WorkflowRun, default_actions
from workflowscripts import EXPRESSION, cli_invocations

from builder.compile.kbuild import find_toolchain

REHEARSED = ("nightly.yml", "pages.yml")   # nightly calls pages
ANY = "\x00any\x00"                        # a shell variable: any number of words


def workflow_steps() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for name in REHEARSED:
        doc = yaml.safe_load((WORKFLOWS / name).read_text())
        for job_id, job in doc["jobs"].items():
            out += [(name, job_id, step) for step in job.get("steps") or []]
    return out


def workflow_commands() -> list[tuple[str, list[str], str]]:
    """(tool, argv pattern, where) of every pipeline command in the rehearsed workflows."""
    return [(tool, argv, f"{name}:{job_id}:{step.get('name')}")
            for name, job_id, step in workflow_steps() if "run" in step
            for tool in TOOLS for argv in cli_invocations(step["run"], tool, ANY)]


def matches(pattern: list[str], argv: list[str]) -> bool:
    """Literal words in order; ANY (a shell variable or expression) stands for zero or more
    words (`"${reports[@]}"` is several reports, `"${attested[@]}"` maybe none)."""
    if not pattern:
        return not argv
    if pattern[0] == ANY:
        return any(matches(pattern[1:], argv[i:]) for i in range(len(argv) + 1))
    return bool(argv) and ANY not in argv[0] and word_matches(pattern[0], argv[0]) and \
        matches(pattern[1:], argv[1:])


def word_matches(pattern: str, word: str) -> bool:
    """A literal word, or one with a variable inside (`"$PWD/site"`: any text there)."""
    if ANY not in pattern:
        return pattern == word
    parts = (re.escape(part) for part in pattern.split(ANY))
    return re.fullmatch(".*".join(parts), word, re.S) is not None


# --- without a rehearsal ---------------------------------------------------------------------

def test_setup_steps_run_no_pipeline_command() -> None:
    skipped = [(where, step) for *where, step in workflow_steps()
               if step.get("name") in SETUP_STEPS]
    assert skipped, "the setup step names no longer match the workflows"
    for where, step in skipped:
        script = step.get("run", "")
        assert not any(list(cli_invocations(script, tool)) for tool in TOOLS), where
        assert "python -m builder" not in script, where


def test_every_action_the_workflows_use_has_a_stand_in(tmp_path: Path) -> None:
    run = WorkflowRun(WORKFLOWS, tmp_path, {}, {})
    known = {*default_actions(run, tmp_path), "actions/attest-build-provenance"}
    used = {step["uses"].split("@")[0] for _, _, step in workflow_steps() if "uses" in step}
    assert used and used <= known, sorted(used - known)
    assert callable(attest_standin())


def test_every_expression_in_the_workflows_is_understood() -> None:
    texts = [(WORKFLOWS / name).read_text() for name in REHEARSED]
    expressions = [m.group(0)[3:-2] for text in texts for m in EXPRESSION.finditer(text)]
    conditions = [str(item["if"]) for name in REHEARSED
                  for item in _with_if(yaml.safe_load((WORKFLOWS / name).read_text()))]
    assert expressions and conditions
    for text in [*expressions, *conditions]:
        bare = re.sub(r"^\s*\$\{\{(.*)\}\}\s*$", r"\1", text, flags=re.S)
        # Every name present but empty: only the syntax is judged (the rehearsal runs them).
        names = set(re.findall(r"[A-Za-z_][\w-]*", bare))
        Evaluator({name: {} for name in names},
                  {n.lower(): (lambda *_args: "") for n in names}).evaluate(bare)


def _with_if(doc: dict[str, Any]) -> list[dict[str, Any]]:
    jobs = list(doc["jobs"].values())
    return [item for item in [*jobs, *(s for j in jobs for s in j.get("steps") or [])]
            if "if" in item]


def test_a_variable_matches_any_number_of_words() -> None:
    pattern = ["publish", "--fragment", "f.jsonl", ANY, ANY]
    assert matches(pattern, ["publish", "--fragment", "f.jsonl", "a/report.jsonl"])
    assert matches(pattern, ["publish", "--fragment", "f.jsonl", "--attestations", "x", "r"])
    assert not matches(pattern, ["publish", "--fragment", "other.jsonl", "r"])
    assert not matches(pattern, ["publish", "--max-uploads", "9", "--fragment", "f.jsonl"])


def test_a_variable_inside_a_word_matches_any_text_there() -> None:
    pattern = ["build", "--site-dir", f"{ANY}/site"]     # --site-dir "$PWD/site"
    assert matches(pattern, ["build", "--site-dir", "/work/checkout/site"])
    assert not matches(pattern, ["build", "--site-dir", "/work/checkout/other"])
    assert not matches(pattern, ["build", "--site-dir", "/a/site", "extra"])


# --- one rehearsal ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Rehearsal:
    return rehearse(tmp_path_factory.mktemp("rehearsal"), kernels=2, report=lambda _l: None)


@pytest.mark.slow
def test_the_nightly_passes_here(rehearsal: Rehearsal) -> None:
    assert rehearsal.problems == []
    assert {job: state.result for job, state in rehearsal.jobs.items()} == dict.fromkeys(
        ("plan", "build", "subjects", "attest", "publish", "pages"), "success")
    legs = {step.leg for step in rehearsal.steps}
    assert {"nightly.build-0", "nightly.attest-0", "pages.build"} <= legs


@pytest.mark.slow
def test_the_records_link_their_job_log_and_attestation(rehearsal: Rehearsal) -> None:
    checks = rehearsal.checks
    # 8.0.0 loads on both kernels; the 2022 snapshot cannot build for 6.12, and for 6.1
    # builds a probe that loads when clang 14 (Debian 12's) compiled it and that 6.1's
    # verifier refuses when clang 15 or newer (Debian 13's 19) did: a failure too.
    outcomes = {version_and_line(key): outcome for key, outcome in checks["outcomes"].items()}
    snapshot = DKMS_DRIVER_VERSION
    toolchain = find_toolchain()
    clang = toolchain.clang_release
    snapshot_on_61 = "probe" if snapshot_loads_with(toolchain) else "loadtest/verifier"
    assert len(outcomes) == len(checks["outcomes"]) == 4, checks["outcomes"]
    assert outcomes[("8.0.0+driver", "6.1")] == outcomes[("8.0.0+driver", "6.12")] == "probe"
    assert outcomes[(snapshot, "6.12")].startswith("compile/"), checks["outcomes"]
    assert outcomes[(snapshot, "6.1")] == snapshot_on_61, (clang, checks["outcomes"])
    assert checks["probes"] == list(outcomes.values()).count("probe") >= 2
    assert checks["failures"] == 4 - checks["probes"] >= 1
    # A probe links its log, file and attestation; every failure, a compile's or the
    # verifier's refusal, links its one log.
    assert checks["links"] == 3 * checks["probes"] + checks["failures"]   # all served
    assert checks["audit"] == 0 and checks["audit_drift"] == []
    assert checks["verify"] == 0 and checks["verified"] >= checks["probes"]
    assert checks["site_pages"] > 1


def version_and_line(key: str) -> tuple[str, str]:
    """`8.0.0+driver 6.12.57+deb12-amd64` -> ("8.0.0+driver", "6.12")."""
    version, release = key.split(" ")
    return version, ".".join(release.split(".")[:2])


@pytest.mark.slow
def test_it_ran_the_workflows_commands_with_their_flags(rehearsal: Rehearsal) -> None:
    """Each pipeline command of the workflow's text ran, with every literal word it has
    (flags, values, files), and nothing else ran: the two cannot drift apart."""
    ran = [(c["tool"], c["argv"]) for c in rehearsal.workflow_commands()]
    assert ran
    for tool, pattern, where in workflow_commands():
        assert any(t == tool and matches(pattern, argv) for t, argv in ran), \
            f"{where}: `{tool} {' '.join(pattern)}` did not run in the rehearsal"
    for tool, argv in ran:
        assert any(t == tool and matches(p, argv) for t, p, _ in workflow_commands()), \
            f"`{tool} {' '.join(argv)}` ran but is in no workflow step"
