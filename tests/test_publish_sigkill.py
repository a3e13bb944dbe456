"""Never lose a probe: SIGKILL the publisher at many points of a run against the fake GitHub
(with faults injected), rerun it until it finishes, and check that every probe is published
exactly once and recorded exactly once, with its digest."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from fakegithub import FakeGitHub, Fault
from test_publish import Spec, specs, write_report

from builder.core.catalog import load_catalog, merge_into
from builder.publish.stores.assetnames import asset_name

TOKEN = "ghp_sigkillToken0123456789"
CAP = 60
# How many more API calls each run may make before it is killed (0: killed while starting).
KILL_AFTER = (0, 1, 2, 25, 4, 30, 7, 40, 3, 45, 12, 50, 5, 60)
# Faults injected into runs long enough to meet them: failed uploads leaving starter
# assets, 5xx, secondary rate limits with Retry-After, connections dropped on uploads,
# on release creation and on listing.
FAULTS: dict[int, list[Fault]] = {
    3: [Fault("POST", r"/assets$", status=502, leave_starter=True, times=2)],
    5: [Fault("POST", r"/assets$", status=503, times=2)],
    7: [Fault("POST", r"/assets$", status=403, retry_after=1)],
    9: [Fault("POST", r"/assets$", drop_connection=True),
        Fault("POST", r"/releases$", drop_connection=True)],
    10: [Fault("GET", r"/assets$", status=502), Fault("GET", r"/releases$", status=500)],
    11: [Fault("POST", r"/assets$", drop_connection=True, leave_starter=True)],
    13: [Fault("POST", r"/assets$", status=429, retry_after=1)],
}


def start(tmp_path: Path, fake: FakeGitHub, repo: str, immutable: bool) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "builder", "publish", str(tmp_path / "build"),
               "--fragment", str(tmp_path / "fragment.jsonl"), "--store", "github",
               "--repository", repo, "--max-assets-per-release", str(CAP),
               "--write-interval", "0", "--retry-delay", "0", "--json"]
    if immutable:
        command.append("--immutable")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env.update(GITHUB_TOKEN=TOKEN, GITHUB_API_URL=fake.api_url)
    return subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_and_kill(process: subprocess.Popen[str], fake: FakeGitHub, after: int) -> bool:
    """SIGKILL the process once the fake has served `after` more calls; True if killed."""
    served = len(fake.calls)
    deadline = time.monotonic() + 120
    if after == 0:
        time.sleep(0.05)
    while process.poll() is None and time.monotonic() < deadline:
        if len(fake.calls) >= served + after:
            process.send_signal(signal.SIGKILL)
            process.communicate()
            return True
        time.sleep(0.0005)
    process.communicate()
    return False


@pytest.mark.parametrize("immutable", [False, True], ids=["mutable", "immutable"])
def test_sigkill_at_many_points_loses_nothing(tmp_path: Path, immutable: bool) -> None:
    probes: list[Spec] = [*specs(200), *specs(100, target="ubuntu-aws")]
    results = write_report(tmp_path / "build", probes, failures=[Spec("4.4.0-1-generic")])
    expected = {r.file + "|" + r.target: r.sha256 for r in results if r.ok}
    repo = "acme/locked" if immutable else "acme/probes"
    with FakeGitHub(token=TOKEN, rate_limit=100_000) as fake:
        if immutable:
            fake.add_repo(repo, immutable_releases=True)
        kills = 0
        for index, after in enumerate(KILL_AFTER):
            for fault in FAULTS.get(index, []):
                fake.inject(fault)
            kills += run_and_kill(start(tmp_path, fake, repo, immutable), fake, after)
            fake.clear_faults()
        assert kills >= len(KILL_AFTER) - 1

        final = start(tmp_path, fake, repo, immutable)
        out, err = final.communicate(timeout=300)
        assert final.returncode == 0, err
        summary = json.loads(out)
        assert summary["complete"] is True and summary["left"] == 0

        # published exactly once: one uploaded asset per probe across every release
        releases = fake.releases(repo)
        assets = [a for r in releases for a in r["assets"]]
        names = Counter(a["name"] for a in assets)
        assert all(a["state"] == "uploaded" for a in assets)
        assert sorted(names) == sorted({asset_name(r.file) for r in results if r.ok})
        assert set(names.values()) == {1}
        assert max(len(r["assets"]) for r in releases) <= CAP
        assert all(not r["draft"] for r in releases)

    # recorded exactly once: one fragment line per probe, merged without conflict
    lines = [json.loads(line) for line in (tmp_path / "fragment.jsonl").read_text().splitlines()]
    probe_lines = Counter(line["file"] + "|" + line["target"] for line in lines
                          if line["kind"] == "probe")
    assert set(probe_lines.values()) == {1} and set(probe_lines) == set(expected)
    assert sum(1 for line in lines if line["kind"] == "failure") == 1
    merge_into(tmp_path / "catalog", [tmp_path / "fragment.jsonl"])
    catalog = list(load_catalog(tmp_path / "catalog").probes())
    assert len(catalog) == len(expected)
    for probe in catalog:
        assert probe.sha256 == expected[probe.file + "|" + probe.target]
        assert "untagged-" not in probe.url


def test_fragment_is_durable_line_by_line(tmp_path: Path) -> None:
    """What a killed run confirmed is on disk: each confirmed probe is a whole line."""
    write_report(tmp_path / "build", specs(40))
    with FakeGitHub(token=TOKEN) as fake:
        process = start(tmp_path, fake, "acme/probes", immutable=False)
        assert run_and_kill(process, fake, 25)
        uploaded = {a["name"]: a for r in fake.releases() for a in r["assets"]}
        text = (tmp_path / "fragment.jsonl").read_text()
        recorded = [json.loads(line) for line in text.splitlines()]
        assert text.endswith("\n") or not text
        assert {asset_name(r["file"]) for r in recorded} <= set(uploaded)
        assert len(uploaded) - len(recorded) <= 1  # at most the one in flight
        for line in recorded:
            with urllib.request.urlopen(line["url"], timeout=10) as response:
                assert hashlib.sha256(response.read()).hexdigest() == line["sha256"]
