"""The directory store: the loader's own layout, so any static web server is a DRIVERS_REPO.

The probe's bytes live once at `<root>/<driver_version>/<arch>/<file>`. Every
other path a supported loader requests for it is a hard link to that file:

* every alias (another Falco release of the same driver version names the
  probe differently),
* the no-arch path `<root>/<driver_version>/<file>` when a Falco release
  before 0.32.2 loads the driver version (commit-hash versions, 2.0.0+driver);
  x86_64 probes only, because such a loader cannot say which arch it wants
  and x86_64 is what upstream served there,
* both spellings of `+`: the shell loader sends `%2B` for every `+`, falcoctl
  only in the driver version. Servers that decode the path (python -m
  http.server, nginx, GitHub Pages) look for a literal `+`; servers that map
  the raw path to a file name (some object stores and proxies) look for a
  literal `%2B`. Both exist on disk, as links to one file.

The request paths come from `builder.core.naming` (the same functions `find`
uses), so this module never restates a naming rule. Writes are atomic (temp
name + rename) and idempotent; a path that holds different bytes is a
conflict and is never overwritten.

Sidecars, served by the same web server:

* compile logs at `<root>/logs/<driver_version>/<arch>/<file>.log` (a failed
  attempt's at `<file>.attempt-<n>.log`);
* provenance bundles once at `<root>/attestations/<name>`, and linked next to
  each probe they attest as `<driver_version>/<arch>/<file>.sigstore.json`, where
  `verify` and `gh attestation verify --bundle` look for them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from builder.core.errors import ConflictError, InputError, StoreError
from builder.core.files import NO_HARD_LINKS, creating, fsync_path, require_inside
from builder.core.naming import (
    falcoctl_request_path,
    override_releases,
    shell_request_path,
)
from builder.core.records import (
    FailureRecord,
    ProbeRecord,
    check_root,
    root_prefix,
    validate_name_parts,
)
from builder.core.versions import FalcoVersion
from builder.publish.attest import BUNDLE_SUFFIX, BundleFile
from builder.publish.stores import (
    ATTESTATION,
    LOG,
    PROBE,
    Artifact,
    Budget,
    Confirm,
    ConfirmFailure,
    FailedBuild,
    Placed,
    StoredItem,
    log_name,
)
from builder.shared.fetch import sha256_file

NO_ARCH_SERVED = "x86_64"  # the only arch answered at <driver_version>/<file>
SPECIAL = "special"  # inventory state of a link, FIFO or device found in the store

FalcoVersions = Callable[[str], Sequence[FalcoVersion]]


def request_paths(probe: ProbeRecord, falco_versions: Sequence[FalcoVersion]) -> set[str]:
    """Every URL path (relative to DRIVERS_REPO) a supported loader sends for this probe.

    naming computes the folder each loader uses for the probe's canonical
    name and how it spells the file; aliases are requested in the same
    folders with the same spelling.
    """
    name = probe.name  # naming's own fallback: a driver version no release loads by default
    folders: set[tuple[str, bool]] = set()  # (folder, file name sent with %2B)
    for falco in falco_versions or override_releases(probe.driver_type):
        shell = shell_request_path(probe.driver_version, name, falco)
        folders.add((_folder(shell, name.file.replace("+", "%2B")), True))
        folders.add((_folder(falcoctl_request_path(probe.driver_version, name), name.file), False))
    paths = set()
    for folder, encoded in folders:
        for file in probe.all_files():
            paths.add(f"{folder}/{file.replace('+', '%2B') if encoded else file}")
    return paths


def _folder(path: str, sent_file: str) -> str:
    if not path.endswith("/" + sent_file):  # pragma: no cover - naming changed its contract
        raise AssertionError(f"request path {path!r} does not end with {sent_file!r}")
    return path[: -len(sent_file) - 1]


def disk_paths(probe: ProbeRecord, falco_versions: Sequence[FalcoVersion]) -> list[str]:
    """Relative paths that must exist on disk; the first holds the bytes, the rest link to it.
    A twin kernel's probe lives below its root, twins/<root>/ (docs/twins.md), which a node
    on that kernel serves as its DRIVERS_REPO."""
    canonical = canonical_path(probe)
    prefix = root_prefix(probe.root)
    out = {canonical}
    for path in request_paths(probe, falco_versions):
        if path.count("/") == 1 and probe.arch != NO_ARCH_SERVED:
            continue
        out.add(prefix + path)                          # servers that look up the raw path
        out.add(prefix + urllib.parse.unquote(path))    # servers that decode %2B to +
    return [canonical, *sorted(out - {canonical})]


def canonical_path(probe: ProbeRecord) -> str:
    """Where the bytes live: <driver_version>/<arch>/<file>, below the twin root if any."""
    return probe.store_path


LOGS = "logs"
ATTESTATIONS = "attestations"


def log_path(driver_version: str, arch: str, name: str, root: str = "") -> str:
    return f"{LOGS}/{root_prefix(root)}{driver_version}/{arch}/{name}"


def bundle_link_path(probe: ProbeRecord) -> str:
    """Where a probe's provenance bundle is linked: next to it, as `<file>.sigstore.json`."""
    return canonical_path(probe) + BUNDLE_SUFFIX


def _kind(rel: str) -> str:
    if rel.startswith(LOGS + "/"):
        return LOG
    if rel.startswith(ATTESTATIONS + "/") or rel.endswith(BUNDLE_SUFFIX):
        return ATTESTATION
    return PROBE


class DirectoryStore:
    """A folder served as DRIVERS_REPO; also what `mirror` writes."""

    def __init__(self, root: Path, falco_versions: FalcoVersions, *, base_url: str = "",
                 budget: Budget | None = None) -> None:
        self.root = root
        self.falco_versions = falco_versions
        self.base_url = base_url.rstrip("/")
        self.budget = budget or Budget()
        self.description = f"directory {root}"

    # --- the Store protocol --------------------------------------------------------

    def publish(self, artifact: Artifact, confirm: Confirm) -> None:
        placed = self.place(artifact.path, artifact.probe)
        probe = artifact.probe
        log = attestation = ""
        if artifact.log is not None:
            log = self.place_sidecar(artifact.log, log_path(probe.driver_version, probe.arch,
                                                            log_name(probe.file), probe.root))
        if artifact.attestation is not None:
            attestation = self.place_attestation(artifact.attestation, probe)
        confirm(artifact, replace(placed, log=log, attestation=attestation))

    def publish_failure(self, item: FailedBuild, confirm: ConfirmFailure) -> None:
        failure = item.failure
        _require_safe(failure)
        confirm(item, self.place_sidecar(item.log, log_path(failure.driver_version, failure.arch,
                                                            item.log_name, failure.root)))

    def finish(self, confirm: Confirm) -> None:
        """Nothing is pending: every probe is final as soon as it is written."""

    def owns(self, url: str) -> bool:
        return url.startswith(self.url_for_path(""))

    def expected_keys(self, probe: ProbeRecord) -> tuple[str, ...]:
        return tuple(disk_paths(probe, self.falco_versions(probe.driver_version)))

    def inventory(self) -> Iterator[StoredItem]:
        """Every file under the root (hidden temp files and folders skipped). Links and
        special files are listed with state "special", never read (a FIFO would hang)."""
        digests: dict[tuple[int, int], str] = {}
        if not self.root.is_dir():
            return
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files + [d for d in dirs if Path(folder, d).is_symlink()]):
                if name.startswith("."):
                    continue
                path = Path(folder, name)
                rel = path.relative_to(self.root).as_posix()
                info = os.lstat(path)
                if not stat.S_ISREG(info.st_mode):
                    yield StoredItem(rel, self.url_for_path(rel), "", SPECIAL)
                    continue
                inode = (info.st_dev, info.st_ino)
                if inode not in digests:
                    digests[inode] = sha256_file(path)
                rel = path.relative_to(self.root).as_posix()
                yield StoredItem(rel, self.url_for_path(rel), digests[inode], kind=_kind(rel))

    # --- writing -------------------------------------------------------------------

    def url_for_path(self, rel: str) -> str:
        quoted = urllib.parse.quote(rel, safe="/~")
        if self.base_url:
            return f"{self.base_url}/{quoted}"
        return f"{self.root.resolve().as_uri()}/{quoted}"

    def relink(self, probe: ProbeRecord) -> list[str]:
        """Recreate the missing alias and %2B paths of a probe whose bytes are here."""
        paths = self.paths_for(probe)
        missing = [p.relative_to(self.root).as_posix() for p in paths[1:] if not p.exists()]
        if missing and paths[0].is_file():
            self.place(paths[0], probe)
            return missing
        return []

    def place(self, source: Path, probe: ProbeRecord, *, consume: bool = False) -> Placed:
        """Put `source` (bytes with digest probe.sha256) at every path of the probe.

        All or nothing: every path is checked first (no symbolic link on the
        way, no other bytes already there), and if writing one fails, the ones
        this call created are removed. `consume` moves a staging file (mirror
        downloads) instead of copying it. Returns uploaded=False when the
        store already held these bytes.
        """
        paths = self.paths_for(probe)
        real = paths[0]
        have_real = real.exists()
        if have_real:
            _require_same(real, probe.sha256, source)
        missing = [path for path in paths[1:] if not self._holds(path, real, probe.sha256)]
        if not have_real:
            self.budget.take_upload()
        created: list[Path] = []
        try:
            if not have_real:
                self._write_real(source, real, probe.sha256, consume)
                created.append(real)
            for path in missing:
                self._link(real, path)
                created.append(path)
        except BaseException as exc:
            for path in reversed(created):
                with contextlib.suppress(OSError):
                    path.unlink()
            if isinstance(exc, OSError):
                raise StoreError(f"{exc.filename or real}: cannot write: {exc.strerror or exc}",
                                 hint="check the store folder's space and permissions; "
                                      "nothing was written for this probe") from None
            raise
        if consume and source != real:  # the staging name; the bytes live on at `real`
            source.unlink(missing_ok=True)
        return Placed(self.url_for_path(canonical_path(probe)), uploaded=not have_real)

    def paths_for(self, probe: ProbeRecord) -> list[Path]:
        """Where the probe goes (bytes first, then links): name parts checked, and no path
        passing through a symbolic link below the root (InputError)."""
        _require_safe(probe)
        paths = [self.root / rel for rel in disk_paths(probe,
                                                       self.falco_versions(probe.driver_version))]
        for path in paths:
            require_inside(self.root, path)
        return paths

    def place_sidecar(self, source: Path, rel: str) -> str:
        """Copy a log or bundle to `rel` unless something is there already; its URL."""
        dest = self.root / rel
        require_inside(self.root, dest)  # no write through a link planted in the store
        if not dest.exists():
            self.budget.take_upload()
            with creating(dest) as tmp:   # a bundle two probes share: never replaced
                shutil.copyfile(source, tmp)
        return self.url_for_path(rel)

    def place_attestation(self, bundle: BundleFile, probe: ProbeRecord) -> str:
        """The bundle once under attestations/, linked next to the probe; the link's URL.

        A probe already linked to a bundle keeps it: one attestation is enough."""
        _require_safe(probe)
        real = self.root / ATTESTATIONS / bundle.name
        self.place_sidecar(bundle.path, real.relative_to(self.root).as_posix())
        link = bundle_link_path(probe)
        dest = self.root / link
        require_inside(self.root, dest)
        if not (dest.exists() or dest.is_symlink()):
            self._link(real, dest)
        return self.url_for_path(link)

    def retire_alias(self, probe: ProbeRecord, alias: str) -> list[str]:
        """Remove the links that served `alias` for `probe` (it now names another probe).

        Only links to the probe's own bytes are removed; returns the removed paths.
        """
        versions = self.falco_versions(probe.driver_version)
        mine = set(disk_paths(replace(probe, aliases=()), versions))
        real = self.root / canonical_path(probe)
        removed = []
        for rel in sorted(set(disk_paths(replace(probe, aliases=(alias,)), versions)) - mine):
            path = self.root / rel
            require_inside(self.root, path)
            if path.is_file() and real.is_file() and _same_file(path, real):
                path.unlink()
                removed.append(rel)
        return removed

    @staticmethod
    def _holds(path: Path, real: Path, sha256: str) -> bool:
        """True if `path` already serves these bytes; ConflictError if it holds others."""
        if not (path.exists() or path.is_symlink()):
            return False
        if not _same_file(real, path):
            _require_same(path, sha256, real)
        return True

    @staticmethod
    def _write_real(source: Path, real: Path, sha256: str, consume: bool) -> None:
        """The bytes, created once; bytes another writer put there meanwhile must be the
        same (checked), never overwritten."""
        with creating(real) as tmp:
            if consume:
                _link_or_copy(source, tmp)
            else:
                shutil.copyfile(source, tmp)
            got = sha256_file(tmp)
            if got != sha256:
                raise InputError(f"{source}: sha256 is {got}, expected {sha256}",
                                 hint="the file changed after it was checked; rebuild it")
        _require_same(real, sha256, source)

    @staticmethod
    def _link(real: Path, dest: Path) -> None:
        with creating(dest) as tmp:
            _link_or_copy(real, tmp)


def _require_safe(probe: ProbeRecord | FailureRecord) -> None:
    wrong = validate_name_parts(probe.target, probe.kernel_release, probe.kernel_version,
                                probe.arch, probe.driver_version)
    if probe.root and check_root(probe.root):
        wrong.append(f"root: {check_root(probe.root)}")
    if wrong:
        raise InputError(f"{probe.file}: " + "; ".join(wrong),
                         hint="name parts become paths in the store")


def _require_same(path: Path, sha256: str, source: Path) -> None:
    try:
        got = sha256_file(path)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except InputError as exc:  # a FIFO, a device: not a probe we wrote
        raise ConflictError(f"{exc.message}; refusing to replace it with {source.name}",
                            hint="remove it from the store, then run again") from None
    if got != sha256:
        raise ConflictError(f"{path} already holds other bytes (sha256 {got}); refusing to "
                            f"replace it with {source.name} (sha256 {sha256})",
                            hint="the same file name was published with different bytes; "
                                 "run `falco-probes audit` and keep the catalogued one")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _link_or_copy(source: Path, dest: Path) -> None:
    """A hard link (one copy of the bytes); a copy where the filesystem refuses links."""
    try:
        os.link(source, dest)
    except OSError as exc:
        if exc.errno not in NO_HARD_LINKS:
            raise
        shutil.copyfile(source, dest)
        fsync_path(dest)



