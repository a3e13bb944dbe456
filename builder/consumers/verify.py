"""Verify: is a probe file on disk the one the catalog (or the site's index) lists?

A file is looked up by name (its file name, an alias, or the GitHub asset
name) and by digest, across every driver version and arch unless they are
given. It passes when a listed probe has its sha256 and the ELF check of its type (its
extension: `.o` an eBPF probe, `.ko` a kernel module, shared/elfcheck.py) passes for
the driver version and arch it is listed under.

The index may be the catalog or the site's `api/index.json`, whose driver
versions link their probe lists (`probes_url`, relative to the index; only
the wanted driver version's list is fetched). Any JSON whose probe entries
are objects with `sha256` and `file` (optionally `aliases`, `url`, and
`driver_version`/`arch`, on the entry or on an enclosing object) is
understood too.

Provenance (`builder.publish.attest`): when a Sigstore bundle is at hand (`--bundle`,
`<file>.sigstore.json` next to the file as `mirror` writes it, or the
`attestation` URL of the matching record), its statement must name the file's
sha256; with a repository the bundle's signature and signer are checked too,
offline. A file with no bundle passes unless attestations are required.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from builder.core import limits
from builder.core.catalog import Catalog
from builder.core.drivertypes import DEFAULT_TYPE, type_of_file
from builder.core.errors import InputError, StoreError
from builder.core.files import decode_text
from builder.core.jsonio import parse_json
from builder.core.records import SHA256_RE, check_file
from builder.core.schema import printable, short
from builder.publish.attest import BUNDLE_SUFFIX, BundleCheck, check_bundle, read_bundle
from builder.publish.stores.assetnames import asset_name
from builder.shared.elfcheck import check_artifact
from builder.shared.fetch import download, read_document, redact, sha256_file

_SHA256 = re.compile(SHA256_RE)

OK = "ok"
MISMATCH = "mismatch"
UNKNOWN = "unknown"
NOT_A_PROBE = "not_a_probe"
UNREADABLE = "unreadable"
NOT_ATTESTED = "not_attested"       # the bundle does not name the file's sha256
BAD_SIGNATURE = "bad_signature"     # the bundle's signature or signer did not verify
UNATTESTED = "unattested"           # no bundle found, and one was required


@dataclass(frozen=True, slots=True)
class Known:
    """One listed probe: where it belongs, its names and its digest."""

    driver_version: str
    arch: str
    file: str
    sha256: str
    url: str = ""
    aliases: tuple[str, ...] = ()
    attestation: str = ""

    def names(self) -> set[str]:
        names = {self.file, *self.aliases}
        return names | {asset_name(n) for n in names}

    def as_dict(self) -> dict[str, str]:
        return {"driver_version": self.driver_version, "arch": self.arch, "file": self.file,
                "sha256": self.sha256, "url": self.url}


@dataclass(frozen=True, slots=True)
class Verdict:
    path: str
    status: str
    message: str
    sha256: str = ""
    matches: tuple[Known, ...] = ()
    elf_reason: str = ""
    provenance: BundleCheck | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "status": self.status,
                "message": self.message, "sha256": self.sha256 or None,
                "elf_ok": not self.elf_reason, "elf_reason": self.elf_reason or None,
                "matches": [k.as_dict() for k in self.matches],
                "attestation": self.provenance.as_dict() if self.provenance else None}


@dataclass(frozen=True, slots=True)
class AttestationPolicy:
    """How `verify` treats attestations."""

    bundle: Path | None = None         # one bundle for every file (else looked up per file)
    repository: str | None = None      # check signatures: signed by this repository's Actions
    trusted_root: Path | None = None   # else sigstore-python's public-good root
    required: bool = False             # a file without a bundle fails
    downloads: Path | None = None      # where bundles linked by http(s) URLs are fetched


@dataclass
class Index:
    """Listed probes by digest and by every name they answer to."""

    source: str
    by_sha: dict[str, list[Known]] = field(default_factory=lambda: defaultdict(list))
    by_name: dict[str, list[Known]] = field(default_factory=lambda: defaultdict(list))
    size: int = 0

    def add(self, known: Known) -> None:
        self.size += 1
        self.by_sha[known.sha256].append(known)
        for name in known.names():
            self.by_name[name].append(known)


def index_from_catalog(catalog: Catalog) -> Index:
    index = Index(f"catalog {catalog.root}")
    for probe in catalog.probes():
        index.add(Known(probe.driver_version, probe.arch, probe.file, probe.sha256, probe.url,
                        probe.aliases, probe.attestation))
    return index


def load_index(source: str, *, driver_version: str | None = None) -> Index:
    """A JSON index from a path, a file:// URL or an http(s) URL, with the probe lists
    it links (`probes_url`) for `driver_version` (every one when None)."""
    data = _read_json(source)
    index = Index(redact(source))
    for known in _entries(data, {}):
        index.add(known)
    for link in _probe_lists(data, driver_version):
        for known in _entries(_read_json(_resolve(source, link)), {}):
            index.add(known)
    if index.size == 0:
        raise InputError(f"{redact(source)}: no probe entries (objects with sha256 and file)",
                         hint="pass the site's api/index.json, or use --catalog")
    return index


def _probe_lists(data: Any, driver_version: str | None) -> list[str]:
    drivers = data.get("driver_versions") if isinstance(data, dict) else None
    out = []
    for driver in drivers if isinstance(drivers, list) else ():
        if not isinstance(driver, dict) or not isinstance(driver.get("probes_url"), str):
            continue
        if driver_version is None or driver.get("driver_version") == driver_version:
            out.append(driver["probes_url"])
    return out


def _resolve(source: str, link: str) -> str:
    """`link` relative to the index: a URL for URLs, a path for paths. A document fetched
    over the network may only link to http(s) URLs, never make us read a local file."""
    scheme = urllib.parse.urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        resolved = urllib.parse.urljoin(source, link)
        if urllib.parse.urlsplit(resolved).scheme.lower() not in ("http", "https"):
            raise InputError(f"{redact(source)}: links to {printable(short(link))}: a remote "
                             "index may only link to http(s) URLs",
                             hint="an index served over the network cannot point at local "
                                  "files; nothing was read")
        return resolved
    if scheme == "file":
        return urllib.parse.urljoin(source, link)
    return str(Path(source).parent / urllib.request.url2pathname(link))


def _read_json(source: str) -> Any:
    try:
        raw = read_document(source, limits.INDEX)
    except StoreError as exc:
        raise InputError(f"cannot read the index: {exc.message}", hint=exc.hint) from None
    return parse_json(decode_text(raw, redact(source)), redact(source))


def _entries(node: Any, inherited: dict[str, str]) -> Iterator[Known]:
    if isinstance(node, list):
        for item in node:
            yield from _entries(item, inherited)
        return
    if not isinstance(node, dict):
        return
    context = dict(inherited)
    for key in ("driver_version", "arch"):
        if isinstance(node.get(key), str):
            context[key] = node[key]
    sha256, file = node.get("sha256"), node.get("file")
    if isinstance(sha256, str) and _SHA256.fullmatch(sha256) and isinstance(file, str) \
            and check_file(file) is None:
        aliases = tuple(a for a in node.get("aliases") or () if isinstance(a, str))
        url = node.get("url") if isinstance(node.get("url"), str) else ""
        attestation = node.get("attestation") if isinstance(node.get("attestation"), str) else ""
        yield Known(context.get("driver_version", ""), context.get("arch", ""), file, sha256,
                    str(url), aliases, str(attestation))
        return
    for value in node.values():
        if isinstance(value, dict | list):
            yield from _entries(value, context)


def verify_files(paths: Iterable[Path], index: Index, *, driver_version: str | None = None,
                 arch: str | None = None, attestations: AttestationPolicy | None = None,
                 ) -> list[Verdict]:
    return [verify_file(p, index, driver_version=driver_version, arch=arch,
                        attestations=attestations) for p in paths]


def verify_file(path: Path, index: Index, *, driver_version: str | None = None,
                arch: str | None = None, attestations: AttestationPolicy | None = None) -> Verdict:
    verdict = _verify_digest(path, index, driver_version, arch)
    if not verdict.ok or attestations is None:
        return verdict
    return _verify_attestation(verdict, path, attestations)


def _verify_digest(path: Path, index: Index, driver_version: str | None,
                   arch: str | None) -> Verdict:
    def wanted(known: Known) -> bool:
        return (driver_version is None or known.driver_version == driver_version) and \
            (arch is None or known.arch == arch)

    try:
        sha256 = sha256_file(path)
    except OSError as exc:
        return Verdict(str(path), UNREADABLE, f"cannot read: {exc.strerror or exc}")
    except InputError as exc:  # a FIFO or device: never read
        return Verdict(str(path), UNREADABLE, exc.message.removeprefix(f"{path}: "))
    named = [k for k in index.by_name.get(path.name, ()) if wanted(k)]
    same = [k for k in index.by_sha.get(sha256, ()) if wanted(k)]
    elf = check_artifact(path, _kind_of(path))
    if named and not any(k.sha256 == sha256 for k in named):
        listed = ", ".join(sorted({f"{k.sha256} ({k.driver_version} {k.arch})" for k in named}))
        return Verdict(str(path), MISMATCH, f"sha256 {sha256} does not match the listed "
                       f"{listed}", sha256, tuple(named), elf.reason)
    matches = [k for k in named if k.sha256 == sha256] or same
    if matches:  # checked as what it is listed as: a module's machine and API versions
        elf = check_artifact(path, _kind_of(path), arch=matches[0].arch,
                             driver_version=matches[0].driver_version)
    if not matches:
        return Verdict(str(path), UNKNOWN, f"{index.source} lists no probe named {path.name} "
                       f"or with sha256 {sha256}", sha256, (), elf.reason)
    if not elf.ok:
        return Verdict(str(path), NOT_A_PROBE, f"digest listed, but the ELF check fails: "
                       f"{elf.reason}", sha256, tuple(matches), elf.reason)
    where = ", ".join(sorted({f"{k.driver_version} {k.arch} {k.file}" for k in matches}))
    return Verdict(str(path), OK, f"matches {where}", sha256, tuple(matches))


def _verify_attestation(verdict: Verdict, path: Path, policy: AttestationPolicy) -> Verdict:
    found = (policy.bundle, str(policy.bundle)) if policy.bundle else \
        _find_bundle(path, verdict.matches, policy.downloads)
    if found is None:
        if policy.required:
            return replace(verdict, status=UNATTESTED, message=verdict.message + "; no "
                           "provenance bundle found (--bundle, or FILE.sigstore.json next to it)")
        return verdict
    bundle_path, bundle = found
    check = check_bundle(read_bundle(bundle_path), verdict.sha256,
                         repository=policy.repository, trusted_root=policy.trusted_root)
    check = replace(check, bundle=bundle)
    verdict = replace(verdict, provenance=check)
    if not check.attested:
        return replace(verdict, status=NOT_ATTESTED, message=f"{bundle} does not attest "
                       f"sha256 {verdict.sha256}")
    if not check.ok:
        return replace(verdict, status=BAD_SIGNATURE, message=f"{bundle} attests sha256 "
                       f"{verdict.sha256}, but its signature does not verify: {check.signature}")
    signed = (f"signed by {check.signer}" if check.signer else
              "signature not checked: pass --repo OWNER/NAME")
    return replace(verdict, message=f"{verdict.message}; attested by {bundle} ({signed})")


def _find_bundle(path: Path, matches: Iterable[Known],
                 downloads: Path | None) -> tuple[Path, str] | None:
    """(file, where it came from): FILE.sigstore.json next to the file, else the bundle a
    matching record links (a file URL, or an http(s) URL fetched into `downloads`)."""
    beside = path.with_name(path.name + BUNDLE_SUFFIX)
    if beside.is_file():
        return beside, str(beside)
    for known in matches:
        url = urllib.parse.urlsplit(known.attestation)
        if url.scheme == "file":
            local = Path(urllib.request.url2pathname(url.path))
            if local.is_file():
                return local, str(local)
        elif url.scheme in ("http", "https") and downloads is not None:
            name = hashlib.sha256(known.attestation.encode()).hexdigest()[:16] + BUNDLE_SUFFIX
            return (download(known.attestation, downloads / name, limit=limits.PROBE_FILE),
                    redact(known.attestation))
    return None


def _kind_of(path: Path) -> str:
    """The kind a file's extension says; a file with neither is checked as a probe."""
    kind = type_of_file(path.name)
    return kind.name if kind is not None else DEFAULT_TYPE
