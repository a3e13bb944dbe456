"""The GitHub Releases store, through PyGithub.

Layout (see docs/publishing.md):

* one set of releases per (driver version, arch, target), sharded so none
  holds more than the cap (default 900, at most 1,000): tag
  `probes-<driver version slug>-<arch>-<target>-<NNN>`, NNN = 001, 002 ...;
  the slug replaces characters git refs refuse (`+`, `~`) with `-`; the
  prefix means a tag is never 40 hex characters. The release body carries a
  marker `<!-- falco-probes: {...} -->` naming its driver version, arch and
  target; a release whose marker names anything else is never used, so two
  driver versions never share a release even if their slugs collide;
* asset name = the probe's file name when GitHub keeps it unchanged, else
  GitHub's renamed form with `-<8 hex of sha256(file name)>` before `.o`
  (GitHub turns `~` and `+` into `.`; the hash keeps names distinct). The
  label is the real file name; the catalog records the exact URL;
* beside each probe, in the same release: its compile log `<asset>.log` (a
  failed attempt's `<asset>.attempt-<n>.log`, in a release of its family)
  and the provenance bundle attesting it, `attestation-<16 hex>.sigstore.json`
  (named by content; one per release and run, however many probes it covers).
  The cap counts every asset; a log or bundle already there is kept.

Each run lists the repository's releases once and each release's assets
once (when its family is first needed); an asset already there with the same
digest is recorded, not uploaded; another digest is a conflict; a `starter`
asset left by a failed upload is deleted and the upload retried.

Every call goes through `GitHubApi.call` (githubapi.py), which owns retries and
waits; non-idempotent calls (upload, create) pass a `reconcile` function that
looks at the store before retrying.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from github import GithubException
from github.GitRelease import GitRelease
from github.GitReleaseAsset import GitReleaseAsset

from builder.core.errors import ConflictError, InputError, StoreError
from builder.core.records import ProbeRecord, check_tag
from builder.core.versions import FalcoVersion
from builder.publish.stores import (
    Artifact,
    Budget,
    Confirm,
    ConfirmFailure,
    FailedBuild,
    Placed,
    StoredItem,
    log_name,
    sidecar_kind,
)
from builder.publish.stores.assetnames import (
    GITHUB_MAX_ASSETS,
    FamilyKey,
    asset_name,
    family_path,
    family_tag_pattern,
    github_renamed,
    marker_family,
    marker_line,
    release_tag,
    sidecar_asset,
)
from builder.publish.stores.githubapi import (
    GitHubApi,
    GitHubSettings,
    error_text,
    is_file_count,
    raw_data,
)
from builder.shared.fetch import sha256_file

log = logging.getLogger(__name__)  # the command line shows it (ui.show_library_messages)

CONTENT_TYPE = "application/octet-stream"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReleaseText:
    """Release names and bodies: what a human sees on the releases page."""

    site_url: str = ""
    falco_versions: Callable[[str], Sequence[FalcoVersion]] = lambda _dv: ()
    cap: int = 900

    def title(self, family: FamilyKey, number: int) -> str:
        driver_version, arch, target, root = family
        twin = f" for {root} twin kernels" if root else ""
        return f"Falco drivers {driver_version} {target} {arch}{twin} (part {number})"

    def body(self, family: FamilyKey, number: int) -> str:
        driver_version, arch, target, root = family
        falco = ", ".join(str(f) for f in self.falco_versions(driver_version))
        loaded = (f"Loaded by Falco {falco}." if falco else
                  "No Falco release loads this driver version by default; select it with "
                  "DRIVER_VERSION or FALCOCTL_DRIVER_VERSION.")
        site = (f"Find the probe for your kernel, its sha256 and its exact URL at "
                f"{self.site_url} ." if self.site_url else
                "The catalog (catalog/ in the repository) lists every probe's sha256 and URL.")
        twin = ("" if not root else
                f"These are built for the twin kernels of root `{root}`: kernels whose "
                "loaders request the same file names as other kernels' (see docs/twins.md); "
                f"a node on one of them serves this root as `twins/{root}/` of a mirror.")
        return "\n\n".join(part for part in [
            f"Pre-compiled Falco drivers (eBPF probes `.o`, kernel modules `.ko`) for driver "
            f"version `{driver_version}`, target `{target}`, architecture `{arch}`: part "
            f"{number} of this set (at most {self.cap} files per release: drivers, their "
            "compile logs (`.log`) and the provenance bundles attesting them "
            "(`.sigstore.json`)).",
            twin,
            loaded,
            site,
            "Asset names are the probe file names; names with characters GitHub renames "
            "(`~`, `+`) carry a short hash instead, and the label shows the real name.",
            marker_line(family),
        ] if part) + "\n"


# --- the store ----------------------------------------------------------------------------

@dataclass
class _Asset:
    name: str
    state: str
    sha256: str     # "" when GitHub gave no digest
    url: str
    obj: GitReleaseAsset

    @classmethod
    def of(cls, obj: GitReleaseAsset) -> _Asset:
        data = raw_data(obj)
        digest = str(data.get("digest") or "")
        return cls(str(data["name"]), str(data.get("state") or "uploaded"),
                   digest.removeprefix("sha256:") if digest.startswith("sha256:") else "",
                   str(data.get("browser_download_url") or ""), obj)


@dataclass
class _Shard:
    number: int
    release: GitRelease
    assets: dict[str, _Asset]
    pending: list[Callable[[], None]] = field(default_factory=list)  # confirmations
    full: bool = False      # GitHub said file_count although we counted room
    sealed: bool = False    # GitHub refused an upload: the release became immutable

    @property
    def tag(self) -> str:
        return str(raw_data(self.release)["tag_name"])

    @property
    def draft(self) -> bool:
        return bool(raw_data(self.release).get("draft"))

    @property
    def closed(self) -> bool:
        """A published immutable release takes no more assets."""
        return self.sealed or (not self.draft and bool(raw_data(self.release).get("immutable")))


@dataclass
class _Family:
    key: FamilyKey
    shards: list[_Shard]

    def find(self, name: str) -> tuple[_Shard, _Asset] | None:
        for shard in self.shards:
            asset = shard.assets.get(name)
            if asset is not None:
                return shard, asset
        return None


class GitHubStore:
    """Probes as release assets, sharded per (driver version, arch, target)."""

    def __init__(self, api: GitHubApi, *, cap: int = 900, immutable: bool = False,
                 text: ReleaseText | None = None) -> None:
        if not 1 <= cap <= GITHUB_MAX_ASSETS:
            raise InputError(f"max assets per release {cap} is not between 1 and "
                             f"{GITHUB_MAX_ASSETS}",
                             hint="GitHub refuses more than 1,000 assets per release")
        self.api = api
        self.cap = cap
        self.immutable = immutable
        self.text = text or ReleaseText(cap=cap)
        self.description = f"GitHub releases of {api.settings.repository}"
        self._releases: list[GitRelease] | None = None
        self._families: dict[FamilyKey, _Family] = {}

    # --- the Store protocol --------------------------------------------------------

    def publish(self, artifact: Artifact, confirm: Confirm) -> None:
        name = asset_name(artifact.file)
        if github_renamed(name) != name:  # pragma: no cover - asset_name guarantees it
            raise StoreError(f"{artifact.file}: GitHub would rename asset {name!r}")
        try:
            self._publish(artifact, name, confirm)
        except GithubException as exc:
            raise self._error(f"publish {artifact.file}", exc) from None

    def publish_failure(self, item: FailedBuild, confirm: ConfirmFailure) -> None:
        try:
            self._publish_failure(item, confirm)
        except GithubException as exc:
            raise self._error(f"keep the log of {item.failure.file}", exc) from None

    def finish(self, confirm: Confirm) -> None:
        try:
            for family in self._families.values():
                for shard in family.shards:
                    if shard.draft and shard.pending:
                        self._publish_shard(shard)
        except GithubException as exc:
            raise self._error("publish draft releases", exc) from None

    def owns(self, url: str) -> bool:
        web = str(raw_data(self.api.repo).get("html_url") or "").rstrip("/")
        return bool(web) and url.startswith(f"{web}/releases/download/")

    def expected_keys(self, probe: ProbeRecord) -> tuple[str, ...]:
        family = (probe.driver_version, probe.arch, probe.target, probe.root)
        return (f"{family_path(family)}/{asset_name(probe.file)}",)

    def retire_alias(self, probe: ProbeRecord, alias: str) -> list[str]:
        """Nothing to remove: one asset per probe; aliases live only in the catalog."""
        return []

    def relink(self, probe: ProbeRecord) -> list[str]:
        """Nothing to restore: a release asset is the probe's only name here."""
        return []

    def inventory(self) -> Iterator[StoredItem]:
        """Every asset of every release carrying a falco-probes marker."""
        try:
            self._releases = None
            for release in self._all_releases():
                family = marker_family(raw_data(release).get("body"))
                if family is None:
                    continue
                tag = str(raw_data(release)["tag_name"])
                draft = bool(raw_data(release).get("draft"))
                for asset in self._list_assets(release).values():
                    state = asset.state if asset.state != "uploaded" else (
                        "draft" if draft else "ok")
                    yield StoredItem(f"{family_path(family)}/{asset.name}", asset.url, asset.sha256,
                                     state, tag, sidecar_kind(asset.name))
        except GithubException as exc:
            raise self._error("list releases", exc) from None

    # --- publishing ----------------------------------------------------------------

    def _publish(self, artifact: Artifact, name: str, confirm: Confirm) -> None:
        family = self._family(artifact.family)
        need = 1 + (artifact.log is not None) + (artifact.attestation is not None)
        for _ in range(6):
            found = family.find(name)
            if found is not None:
                shard, asset = found
                if asset.state != "uploaded":
                    self._delete_starter(shard, asset)
                    continue
                self._require_digest(artifact.file, artifact.probe.sha256, shard, asset)
                self._settle(shard, artifact, name, False, confirm)
                return
            shard = self._open_shard(family, need)
            done = self._upload(shard, artifact.path, name, artifact.file,
                                artifact.probe.sha256)
            if done is None:  # the shard turned out full or closed: pick another
                continue
            self._settle(shard, artifact, name, done[1], confirm)
            return
        raise StoreError(f"{artifact.file}: could not find a release to hold it",
                         hint="run `falco-probes audit` to see the state of the releases")

    def _settle(self, shard: _Shard, artifact: Artifact, name: str, uploaded: bool,
                confirm: Confirm) -> None:
        """Put the probe's sidecars next to it, then confirm now or when the draft is out."""
        log = attestation = ""
        if artifact.log is not None:
            log = self._keep(shard, artifact.log, sidecar_asset(artifact.file, ".log"),
                             log_name(artifact.file))
        if artifact.attestation is not None:
            bundle = artifact.attestation
            attestation = self._keep(shard, bundle.path, bundle.name, bundle.name)

        def done() -> None:
            confirm(artifact, Placed(self._url(shard, name, artifact.file), shard.tag, uploaded,
                                     log=self._url(shard, log), attestation=self._url(
                                         shard, attestation)))

        self._confirm_when_final(shard, done)

    def _publish_failure(self, item: FailedBuild, confirm: ConfirmFailure) -> None:
        shard, name = self._place_failure_log(item)
        self._confirm_when_final(shard, lambda: confirm(item, self._url(shard, name)))

    def _place_failure_log(self, item: FailedBuild) -> tuple[_Shard, str]:
        """The shard holding the failure's log (found there, or uploaded to the first
        shard with room, as a probe would be) and its asset name."""
        family = self._family(item.family)
        name = sidecar_asset(item.failure.file, item.log_name.removeprefix(item.failure.file))
        for _ in range(6):
            found = family.find(name)
            shard = found[0] if found is not None else self._open_shard(family, 1)
            if self._keep(shard, item.log, name, item.log_name):
                return shard, name
            shard.full = True  # it took no more assets: the next shard
        raise StoreError(f"{item.failure.file}: could not find a release to hold its log",
                         hint="run `falco-probes audit` to see the state of the releases")

    def _confirm_when_final(self, shard: _Shard, done: Callable[[], None]) -> None:
        if not shard.draft:
            done()
            return
        shard.pending.append(done)
        if len(shard.assets) >= self.cap:
            self._publish_shard(shard)

    def _keep(self, shard: _Shard, path: Path, name: str, label: str) -> str:
        """Upload a sidecar into `shard` unless it holds one by that name (the first write
        wins); its asset name, or "" when the shard takes no more assets."""
        there = shard.assets.get(name)
        if there is not None and there.state == "uploaded":
            return name
        if there is not None:
            self._delete_starter(shard, there)
        if shard.closed or shard.full:
            return ""
        done = self._upload(shard, path, name, label, sha256_file(path), same=False)
        return name if done is not None else ""

    @staticmethod
    def _url(shard: _Shard, name: str, probe: str = "") -> str:
        """The download URL of asset `name` in `shard`; "" for a sidecar that is not there.
        A probe's asset (`probe` names it) must be there."""
        asset = shard.assets.get(name) if name else None
        if asset is not None and asset.state == "uploaded":
            return asset.url
        if probe:
            raise StoreError(f"{probe}: asset {name} vanished from {shard.tag} while it was "
                             "published", hint="run again; it will be uploaded again")
        return ""

    def _require_digest(self, label: str, expected: str, shard: _Shard, asset: _Asset) -> None:
        sha256 = asset.sha256 or self._download_digest(asset)
        if sha256 != expected:
            raise ConflictError(
                f"{label}: release {shard.tag} already has asset {asset.name} with "
                f"sha256 {sha256}, the build report says {expected}",
                hint="the same probe was built twice with different bytes; keep the published "
                     "one (run `falco-probes audit --repair` with the build report that "
                     "produced it) or delete the asset and publish again")

    def _download_digest(self, asset: _Asset) -> str:
        """Assets uploaded before GitHub computed digests: hash the bytes ourselves."""
        def fetch() -> str:
            digest = hashlib.sha256()
            _status, _headers, chunks = asset.obj.download_asset(chunk_size=1 << 16)
            for chunk in chunks or ():
                digest.update(chunk)
            return digest.hexdigest()
        return self.api.call(f"download {asset.name} to check its digest", fetch)

    def _open_shard(self, family: _Family, need: int = 1) -> _Shard:
        """The lowest-numbered shard with room for `need` assets that this mode may append
        to, or a new one."""
        for shard in sorted(family.shards, key=lambda s: s.number):
            if shard.closed or shard.full or len(shard.assets) + need > self.cap:
                continue
            if self.immutable and not shard.draft:
                continue  # immutable mode never changes a published release
            return shard
        return self._create_shard(family)

    def _upload(self, shard: _Shard, path: Path, name: str, label: str, sha256: str, *,
                same: bool = True) -> tuple[_Asset, bool] | None:
        """Upload into `shard`: (asset, True), or (asset, False) when GitHub turned out to
        hold it already (a lost answer, a parallel run); None if the shard cannot take it.
        `same`: an asset found under the name must have these bytes (probes), else it is
        kept whatever it holds (sidecars)."""
        self.api.budget.take_upload()
        size = path.stat().st_size
        found: list[bool] = []

        def attempt() -> GitReleaseAsset:
            with path.open("rb") as handle:
                return shard.release.upload_asset_from_memory(
                    handle, size, name, content_type=CONTENT_TYPE, label=label)

        def reconcile() -> GitReleaseAsset | None:
            self._reread_release(shard)  # one request, however many assets it holds
            there = shard.assets.get(name)
            if there is None:
                return None
            if there.state != "uploaded":
                self._delete_starter(shard, there)
                return None
            if same:
                self._require_digest(label, sha256, shard, there)
            found.append(True)
            return there.obj

        try:
            obj = self.api.call(f"upload {label} to {shard.tag}", attempt,
                                reconcile=reconcile)
        except GithubException as exc:
            if exc.status != 422:
                raise
            if is_file_count(exc):
                shard.full = True
                return None
            if "immutable" in error_text(exc).lower():
                if not self.immutable:
                    raise StoreError(f"release {shard.tag} is immutable and takes no more "
                                     "assets: the repository makes releases immutable",
                                     hint="publish with --immutable (or store.immutable: true "
                                          "in probes.yaml)") from None
                shard.sealed = True
                return None
            raise
        asset = _Asset.of(obj)
        if asset.name != name:
            raise StoreError(f"{label}: GitHub stored the asset as {asset.name!r}, not "
                             f"{name!r}", hint="GitHub changed its renaming rules; see "
                                               "docs/publishing.md (asset names)")
        if asset.sha256 and asset.sha256 != sha256 and (same or not found):
            raise StoreError(f"{label}: GitHub computed sha256 {asset.sha256} for the "
                             f"upload, expected {sha256}",
                             hint="the upload was corrupted; delete the asset and run again")
        shard.assets[name] = asset
        return asset, not found

    def _delete_starter(self, shard: _Shard, asset: _Asset) -> None:
        log.info(f"GitHub: deleting {asset.name} (state {asset.state}) left in {shard.tag} by a "
             "failed upload")

        def delete() -> bool:
            try:
                asset.obj.delete_asset()
            except GithubException as exc:
                if exc.status != 404:  # already gone: what we wanted
                    raise
            return True

        self.api.call(f"delete {asset.name} from {shard.tag}", delete)
        shard.assets.pop(asset.name, None)

    def _create_shard(self, family: _Family) -> _Shard:
        number = max((s.number for s in family.shards), default=0) + 1
        for _ in range(10):
            tag = release_tag(family.key, number)
            wrong = check_tag(tag)
            if wrong:
                raise InputError(f"release tag {tag!r}: {wrong}",
                                 hint="driver version and target become the tag; see "
                                      "docs/publishing.md")
            try:
                release, created = self._create_release(family, tag, number)
            except GithubException as exc:
                if exc.status == 422 and "immutable" in error_text(exc).lower():
                    number += 1  # the tag belonged to a deleted immutable release
                    continue
                raise
            if not self.immutable and raw_data(release).get("immutable") \
                    and not raw_data(release).get("draft"):
                raise StoreError(f"release {tag} was created immutable: the repository makes "
                                 "releases immutable, so assets cannot be added after creation",
                                 hint="publish with --immutable (or store.immutable: true)")
            shard = _Shard(number, release, {})
            if raw_data(release).get("assets"):  # found again after a lost answer
                self._refresh_assets(shard)
            family.shards.append(shard)
            kind = "draft release" if shard.draft else "release"
            log.info(f"GitHub: created {kind} {tag}" if created else
                 f"GitHub: {kind} {tag} already existed (a lost answer or a parallel run); "
                 "taking it over")
            return shard
        raise StoreError(f"no free release tag for {family_path(family.key)}")

    def _create_release(self, family: _Family, tag: str, number: int
                        ) -> tuple[GitRelease, bool]:
        """The new release, and False when it turned out to exist already (taken over)."""
        title = self.text.title(family.key, number)
        body = self.text.body(family.key, number)
        found: list[bool] = []

        def attempt() -> GitRelease:
            return self.api.repo.create_git_release(tag, title, body, draft=self.immutable,
                                                    prerelease=False)

        def reconcile() -> GitRelease | None:
            self._releases = None
            for release in self._all_releases():
                if raw_data(release)["tag_name"] == tag:
                    self._require_marker(release, family.key)
                    found.append(True)
                    return release
            return None

        release = self.api.call(f"create release {tag}", attempt, reconcile=reconcile)
        return release, not found

    def _publish_shard(self, shard: _Shard) -> None:
        title = str(raw_data(shard.release).get("name") or "")
        body = str(raw_data(shard.release).get("body") or "")
        tag = shard.tag
        shard.release = self.api.call(
            f"publish release {tag}",
            lambda: shard.release.update_release(title, body, draft=False, tag_name=tag))
        log.info(f"GitHub: published release {tag}")
        self._refresh_assets(shard)  # draft download URLs change on publish
        pending, shard.pending = shard.pending, []
        for done in pending:
            done()

    # --- reading the store ---------------------------------------------------------

    def _all_releases(self) -> list[GitRelease]:
        """Every release, drafts included (we are authenticated); listed once per run."""
        if self._releases is None:
            repo = self.api.repo
            self._releases = self.api.call(f"list releases of {self.api.settings.repository}",
                                           lambda: list(repo.get_releases()))
        return self._releases

    def _list_assets(self, release: GitRelease) -> dict[str, _Asset]:
        tag = raw_data(release)["tag_name"]
        assets = self.api.call(f"list assets of {tag}", lambda: list(release.get_assets()))
        return {a.name: a for a in map(_Asset.of, assets)}

    def _refresh_assets(self, shard: _Shard) -> None:
        shard.assets = self._list_assets(shard.release)

    def _reread_release(self, shard: _Shard) -> None:
        """The release and every asset it holds, in one request (GET of the release: its
        `assets` are all of them; listing them takes a request per 100). What a failed
        upload reconciles against: a 5xx costs one request, not one per page."""
        release_id = shard.release.id
        shard.release = self.api.call(f"read release {shard.tag}",
                                      lambda: self.api.repo.get_release(release_id))
        shard.assets = {a.name: a for a in map(_Asset.of, shard.release.assets)}

    def _family(self, key: FamilyKey) -> _Family:
        family = self._families.get(key)
        if family is not None:
            return family
        pattern = family_tag_pattern(key)
        shards: dict[int, _Shard] = {}
        for release in self._all_releases():
            match = pattern.fullmatch(str(raw_data(release)["tag_name"]))
            if match is None:
                continue
            self._require_marker(release, key)
            number = int(match.group(1))
            if number in shards:
                raise ConflictError(f"two releases use tag {raw_data(release)['tag_name']} "
                                    f"(ids {shards[number].release.id} and {release.id})",
                                    hint="delete the one without assets on GitHub, then run "
                                         "again")
            shards[number] = _Shard(number, release, self._list_assets(release))
        family = _Family(key, sorted(shards.values(), key=lambda s: s.number))
        self._families[key] = family
        self._check_unique_names(family)
        return family

    @staticmethod
    def _require_marker(release: GitRelease, key: FamilyKey) -> None:
        found = marker_family(raw_data(release).get("body"))
        if found != key:
            tag = raw_data(release)["tag_name"]
            says = "has no falco-probes marker" if found is None else \
                f"is marked for {'/'.join(found)}"
            raise ConflictError(f"release {tag} {says}, not {'/'.join(key)}; refusing to use it",
                                hint="two driver versions or targets map to the same tag, or "
                                     "someone edited the release body; restore its marker "
                                     "line or rename the release")

    @staticmethod
    def _check_unique_names(family: _Family) -> None:
        seen: dict[str, str] = {}
        for shard in family.shards:
            for name, asset in shard.assets.items():
                if asset.state == "uploaded" and name in seen:
                    raise ConflictError(f"asset {name} is in both {seen[name]} and {shard.tag}",
                                        hint="delete one copy; run `falco-probes audit`")
                seen[name] = shard.tag

    def _error(self, what: str, exc: GithubException) -> StoreError:
        hints = {403: "the token may lack contents: write on the repository",
                 404: "check --repository / GITHUB_REPOSITORY and that the token can see it"}
        return StoreError(f"GitHub: could not {what}: {self.api.describe(exc)}",
                          hint=hints.get(exc.status, "run `falco-probes audit` to see the "
                                                     "state of the releases"))


def open_github_store(settings: GitHubSettings, budget: Budget, *, cap: int, immutable: bool,
                      text: ReleaseText) -> GitHubStore:
    return GitHubStore(GitHubApi(settings, budget), cap=cap, immutable=immutable, text=text)

