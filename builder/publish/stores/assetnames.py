"""GitHub store names, pure: release tags, asset names, the release marker.

Kept apart from the GitHub store itself so that `verify`, `audit` and the
tests can compute a probe's asset name without importing PyGithub.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

from builder.core.drivertypes import type_of_file
from builder.core.records import TWINS_FOLDER

# (driver_version, arch, target, twin root): one set of releases. The root is "" for the
# loader's default path; a twin kernel's probes go to releases of their root's own.
FamilyKey = tuple[str, str, str, str]

TAG_PREFIX = "probes"
GITHUB_MAX_ASSETS = 1000  # GitHub refuses more per release (422 file_count)
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
_MARKER_RE = re.compile(r"<!--\s*falco-probes:\s*(\{[^\n]*?\})\s*-->")
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def github_renamed(name: str) -> str:
    """The name GitHub stores for an upload named `name`.

    Letters with accents lose them; each run of characters outside
    [A-Za-z0-9._-] becomes one "."; leading and trailing dots are dropped.
    """
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _UNSAFE_RUN.sub(".", plain).strip(".")


def asset_name(file: str) -> str:
    """The asset name for a driver file: itself if GitHub keeps it, else renamed + 8 hex
    before the kind's extension (`.o`, `.ko`)."""
    renamed = github_renamed(file)
    if renamed == file:
        return file
    tag = hashlib.sha256(file.encode()).hexdigest()[:8]
    kind = type_of_file(file)
    extension = kind.extension if kind is not None else ""
    return f"{renamed.removesuffix(extension)}-{tag}{extension}"


def sidecar_asset(file: str, suffix: str) -> str:
    """A probe's log asset: its asset name plus `suffix` (`.log`, `.attempt-2.log`)."""
    return asset_name(file) + suffix


def tag_slug(driver_version: str) -> str:
    """A driver version as a tag part: `6.0.1+driver` -> `6.0.1-driver`."""
    return _SLUG_UNSAFE.sub("-", driver_version)


def _tag_prefix(family: FamilyKey) -> str:
    driver_version, arch, target, root = family
    twin = f"{TWINS_FOLDER}-{root}-" if root else ""
    return f"{TAG_PREFIX}-{tag_slug(driver_version)}-{arch}-{target}-{twin}"


def release_tag(family: FamilyKey, number: int) -> str:
    return f"{_tag_prefix(family)}{number:03d}"


def family_tag_pattern(family: FamilyKey) -> re.Pattern[str]:
    return re.compile(re.escape(_tag_prefix(family)) + r"(\d{3,})")


def family_path(family: FamilyKey) -> str:
    """The family as a key prefix: dv/arch/target, and /root for a twin root."""
    return "/".join(part for part in family if part)


def marker_fields(family: FamilyKey) -> dict[str, str]:
    """The marker names the family; `root` only for a twin root (older markers lack it)."""
    fields = dict(zip(("driver_version", "arch", "target", "root"), family, strict=True))
    if not fields["root"]:
        del fields["root"]
    return fields


def marker_line(family: FamilyKey) -> str:
    return f"<!-- falco-probes: {json.dumps(marker_fields(family), sort_keys=True)} -->"


def parse_marker(body: str | None) -> dict[str, Any] | None:
    match = _MARKER_RE.search(body or "")
    if match is None:
        return None
    try:
        data = json.loads(match.group(1))
    except (ValueError, RecursionError):  # someone's edit; never ours
        return None
    return data if isinstance(data, dict) else None


def marker_family(body: str | None) -> FamilyKey | None:
    data = parse_marker(body)
    if data is None:
        return None
    values = tuple(data.get(k, "") for k in ("driver_version", "arch", "target", "root"))
    if not all(isinstance(v, str) for v in values):
        return None
    return (str(values[0]), str(values[1]), str(values[2]), str(values[3]))
