"""Which store a run talks to: the command line's choice over probes.yaml's `store:`.

The command layer fills a StoreChoice from its options; `open_store` here turns it,
with the config and the environment, into a Store (PyGithub is imported only when
the GitHub store is chosen).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from builder.core.config import Config, StoreConfig, falco_releases
from builder.publish.stores import Budget, Store
from builder.publish.stores.directory import DirectoryStore


@dataclass(frozen=True, slots=True)
class StoreChoice:
    """What the user asked for; None or "" leaves a setting to probes.yaml."""

    kind: str = ""                         # directory | github | "" (implied, then probes.yaml)
    path: Path | None = None               # directory store
    base_url: str = ""
    repository: str | None = None          # GitHub store
    api_url: str | None = None
    token_file: Path | None = None
    max_assets_per_release: int | None = None
    immutable: bool | None = None
    write_interval: float = 1.0
    retry_delay: float = 2.0

    def implied_kind(self) -> str:
        """A path means a directory store, a repository or API URL GitHub."""
        if self.path is not None or self.base_url:
            return "directory"
        if self.repository or self.api_url or self.token_file:
            return "github"
        return ""


def open_store(choice: StoreChoice, config: Config | None, budget: Budget,
               env: Mapping[str, str]) -> Store:
    stored = config.store if config is not None else StoreConfig()
    kind = choice.kind or choice.implied_kind() or stored.kind
    versions = falco_releases(config).falco_for
    if kind == "directory":
        root = choice.path if choice.path is not None else Path(stored.path)
        return DirectoryStore(root, versions, base_url=choice.base_url, budget=budget)
    from builder.publish.stores.github import ReleaseText, open_github_store
    from builder.publish.stores.githubapi import github_settings

    cap = (stored.max_assets_per_release if choice.max_assets_per_release is None
           else choice.max_assets_per_release)
    immutable = stored.immutable if choice.immutable is None else choice.immutable
    settings = github_settings(env, api_url=choice.api_url, repository=choice.repository,
                               config_repository=stored.repository,
                               token_file=choice.token_file,
                               write_interval=choice.write_interval,
                               retry_delay=choice.retry_delay)
    text = ReleaseText(site_url=config.site_url if config else "", falco_versions=versions,
                       cap=cap)
    return open_github_store(settings, budget, cap=cap, immutable=immutable, text=text)
