"""A GitHubStore talking to the fake GitHub (tests/helpers/fakegithub/) through real
PyGithub, and `falco-probes publish --store github` run against it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fakegithub import FakeGitHub

from builder.core.versions import BUILTIN_RELEASES
from builder.publish.stores import Budget
from builder.publish.stores.github import GitHubStore, ReleaseText
from builder.publish.stores.githubapi import GitHubApi, GitHubSettings

TOKEN = "ghp_fakeToken0123456789abcdefSECRET"
FAMILY = ("6.0.1+driver", "x86_64", "ubuntu-generic", "")


class Sleeps(list[float]):
    """Records the waits the retry loop asks for, without waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_store(fake: FakeGitHub, *, cap: int = 900, immutable: bool = False,
               budget: Budget | None = None, sleep: Any = None, repo: str = "acme/probes",
               token: str | None = None, clock: Any = time.time) -> GitHubStore:
    """A store writing to `repo` on the fake, with the fake's own token unless given."""
    settings = GitHubSettings(fake.api_url, repo, fake.token if token is None else token,
                              write_interval=0, retry_delay=0.5)
    api = GitHubApi(settings, budget or Budget(), sleep=sleep if sleep is not None else Sleeps(),
                    clock=clock)
    text = ReleaseText("https://site.example/", BUILTIN_RELEASES.falco_for, cap)
    return GitHubStore(api, cap=cap, immutable=immutable, text=text)


def assets_by_name(fake: FakeGitHub, repo: str | None = None) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for release in fake.releases(repo):
        for asset in release["assets"]:
            out.setdefault(asset["name"], []).append({**asset, "tag": release["tag_name"]})
    return out


def publish_cli(fake: FakeGitHub, tmp_path: Path, env: dict[str, str], *extra: str,
                fragment: str = "f.jsonl") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "builder", "publish", str(tmp_path / "build"),
               "--fragment", str(tmp_path / fragment), "--store", "github",
               "--write-interval", "0", "--retry-delay", "0", *extra]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    return subprocess.run(command, env={**clean, **env}, capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)  # no probes.yaml here
