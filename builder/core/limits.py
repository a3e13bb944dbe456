"""How much of any input we read: every size, count and time limit, in one place.

Each input has a limit suited to what it is (an os-release is a few KB, a
catalog file a few MB), so a hostile or broken input is refused with an
`error:` line instead of exhausting memory, disk or time. docs/limits.md lists
them and what each command does when one is hit. Any limit can be changed for
one run with FALCO_PROBES_LIMIT_<NAME> (sizes accept a K, M or G suffix).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from builder.core.errors import InputError

ENV_PREFIX = "FALCO_PROBES_LIMIT_"
_AMOUNT = re.compile(r"([0-9]{1,15})([KMG]?)", re.ASCII)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    default: int
    unit: str    # bytes | count | seconds
    what: str    # what it bounds, for docs and messages

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name

    def get(self) -> int:
        """The limit in force: the environment's override, else the default."""
        raw = os.environ.get(self.env, "").strip()
        if not raw:
            return self.default
        match = _AMOUNT.fullmatch(raw.upper())
        value = int(match.group(1)) * _UNITS[match.group(2)] if match else 0
        if value <= 0:
            raise InputError(f"{self.env}={raw!r} is not a positive number",
                             hint=f"for example {self.env}={human(self.default * 2)}"
                             if self.unit == "bytes" else f"for example {self.env}=10")
        return value

    def exceeded(self, where: str, size: int | None = None, *,
                 amount: str = "", done: str = "nothing was read") -> InputError:
        """The error for an input over this limit (`size` when known before reading)."""
        amount = amount or (f"is {size} bytes" if size is not None else "is larger")
        return InputError(f"{where}: {amount}; {self.what} may be at most "
                          f"{human(self.get())}B",
                          hint=f"{done}; if it is genuine, raise the limit with "
                               f"{self.env} (see docs/limits.md)")


def human(size: int) -> str:
    """2048 -> '2K', 8388608 -> '8M': the spelling the environment variables accept."""
    for suffix in ("G", "M", "K"):
        if size % _UNITS[suffix] == 0:
            return f"{size // _UNITS[suffix]}{suffix}"
    return str(size)


KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30

# --- files and documents --------------------------------------------------------------
OS_RELEASE = Limit("OS_RELEASE", 64 * KIB, "bytes",
                   "an os-release or /etc/VERSION file (find)")
TOKEN_FILE = Limit("TOKEN_FILE", 64 * KIB, "bytes", "a --token-file")
CONFIG = Limit("CONFIG", 1 * MIB, "bytes", "probes.yaml")
CATALOG_FILE = Limit("CATALOG_FILE", 4 * MIB, "bytes",
                     "one catalog file (<driver_version>/<arch>/<target>.yaml)")
JSON_LINES = Limit("JSON_LINES", 8 * MIB, "bytes",
                   "a catalog fragment or a build report (report.jsonl)")
JSON_LINE = Limit("JSON_LINE", 1 * MIB, "bytes",
                  "one line of a fragment, a build report or `find --batch` input")
PLAN = Limit("PLAN", 32 * MIB, "bytes", "a plan file (plan --out, build --plan)")
KERNEL_LIST = Limit("KERNEL_LIST", 32 * MIB, "bytes", "a kernel-crawler list (file or URL)")
INDEX = Limit("INDEX", 32 * MIB, "bytes",
              "a site index or probe list read by verify --index (file or URL)")
# Downloads: a known size (apt's indices, the catalog) bounds what is read; without one,
# the kind of file does. A body longer than either is cut off and refused.
HEADER_PACKAGE = Limit("HEADER_PACKAGE", 128 * MIB, "bytes",
                       "a kernel header package (.deb, .rpm) whose size the kernel list "
                       "does not declare")
HEADER_ARCHIVE = Limit("HEADER_ARCHIVE", 2 * GIB, "bytes",
                       "a kernel header archive (a tarball, Flatcar's developer container) "
                       "whose size is not declared")
DRIVER_SOURCE = Limit("DRIVER_SOURCE", 64 * MIB, "bytes",
                      "a driver source (a libs archive, a Debian source package) whose size "
                      "is not declared")
KERNEL_IMAGE = Limit("KERNEL_IMAGE", 1 * GIB, "bytes",
                     "a kernel image package, or a package of an arm64 guest's root (load "
                     "tests)")
PROBE_FILE = Limit("PROBE_FILE", 256 * MIB, "bytes",
                   "a driver file, log or attestation downloaded by mirror or verify "
                   "when no size is recorded")
DOWNLOAD_SECONDS = Limit("DOWNLOAD_SECONDS", 1800, "seconds",
                         "one download, from its first request to its last byte, retries "
                         "included")

# --- structure: what a document may hold, counted before it is built ------------------------
YAML_NODES = Limit("YAML_NODES", 150_000, "count",
                   "nodes (scalars, lists, mappings) of one YAML document")
YAML_ALIAS_NODES = Limit("YAML_ALIAS_NODES", 100_000, "count",
                         "nodes that YAML aliases (*name) may add to a document when expanded")
JSON_VALUES = Limit("JSON_VALUES", 500_000, "count",
                    "values of one JSON document or line (counted as its commas and brackets)")
MAX_PROBLEMS_PER_FILE = 100  # catalog check: the rest of a broken file's problems are counted

# --- time ---------------------------------------------------------------------------------
HTTP_SECONDS = Limit("HTTP_SECONDS", 300, "seconds",
                     "reading one document (index, kernel list) over http(s), in all")
HTTP_TIMEOUT = Limit("HTTP_TIMEOUT", 60, "seconds",
                     "waiting for a server to connect or send the next bytes")

ALL = (OS_RELEASE, TOKEN_FILE, CONFIG, CATALOG_FILE, JSON_LINES, JSON_LINE, PLAN, KERNEL_LIST,
       INDEX, HEADER_PACKAGE, HEADER_ARCHIVE, DRIVER_SOURCE, KERNEL_IMAGE, PROBE_FILE,
       YAML_NODES, YAML_ALIAS_NODES, JSON_VALUES, HTTP_SECONDS, HTTP_TIMEOUT, DOWNLOAD_SECONDS)

# --- values inside records (validated where they enter, not configurable) ----------------
MAX_PROBE_SIZE = 2 * GIB - 1        # GitHub refuses assets of 2 GiB; probes are a few MB
MAX_COUNT = 1_000_000               # attempts, program and event counts
FIRST_YEAR, LAST_YEAR = 2000, 2199  # timestamps: builds, attempts, load tests
MAX_BACKOFF_HOURS = 24 * 365 * 10   # probes.yaml build.backoff_hours: ten years at most
MAX_JOBS = 256                      # --jobs of parallel commands
