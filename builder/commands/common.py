"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from builder.core.config import Config, load_config
from builder.core.paths import CATALOG_ENV, CONFIG_ENV, default_catalog, default_config
from builder.publish.stores.assetnames import GITHUB_MAX_ASSETS
from builder.publish.stores.choice import StoreChoice
from builder.ui import info

if TYPE_CHECKING:  # only a type here: `find` and `verify` need not import kernel discovery
    from builder.kernels.targets import TargetKernels


def add_catalog_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", type=Path, default=None, metavar="DIR",
                        help=f"catalog folder (default: ${CATALOG_ENV} or ./catalog)")


def add_config_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help=f"probes.yaml to use (default: ${CONFIG_ENV} or ./probes.yaml)")


def add_apt_options(group: argparse._ArgumentGroup, default_suites: str) -> None:
    """Where apt reads from: a sources file and keyring, or named Debian suites on a mirror
    (`kernels` and `loadtest`; `default_suites` says what applies without --suite)."""
    group.add_argument("--sources", type=Path, metavar="FILE",
                       help="apt sources file (one-line or deb822) instead of this machine's")
    group.add_argument("--keyring", type=Path, metavar="FILE",
                       help="OpenPGP keyring for sources without Signed-By")
    group.add_argument("--suite", action="append", default=[], metavar="SUITE",
                       help="read this Debian suite (bullseye, bookworm, trixie, sid ...; "
                            f"repeatable) from the mirror this machine's apt uses; default: "
                            f"{default_suites}")
    group.add_argument("--mirror", default="", metavar="URI",
                       help="with --suite: the Debian archive to read (default: this machine's)")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print machine-readable JSON on stdout")


def catalog_dir(args: argparse.Namespace) -> Path:
    return args.catalog if args.catalog is not None else default_catalog()


def config_from(args: argparse.Namespace, *, required: bool = True) -> Config | None:
    path = args.config if getattr(args, "config", None) is not None else default_config()
    if not required and not path.exists():
        return None
    return load_config(path)


def show_problems(found: TargetKernels, limit: int = 20) -> None:
    """Entries a kernel source had to leave out (junk, unresolvable packages)."""
    for source, problem in found.problems[:limit]:
        info(f"  {source}: {problem}")
    if len(found.problems) > limit:
        info(f"  ... and {len(found.problems) - limit} more")
# --- option types: a value out of range is refused by argparse (exit 2), never clamped ---

def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from `low` to `high`."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10) if text.strip().isascii() else None
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer from {low} to {high}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds, 0 or more (nan and inf refused)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= 7 * 24 * 3600):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to "
                                         "604800 (a week)")
    return value


def folder(text: str) -> Path:
    """An argparse type: a folder path, never empty (an empty path means the working
    directory, where nobody means to publish)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path is not a folder; give one, such as "
                                         "./store")
    return Path(text)


# --- the store options of publish and audit -------------------------------------------

def add_store_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("store (defaults from `store:` in probes.yaml)")
    group.add_argument("--store", choices=("directory", "github"), default=None,
                       help="which store (default: directory with --path/--base-url, "
                            "github with --repository/--api-url/--token-file, else store.kind "
                            "from probes.yaml, else directory)")
    group.add_argument("--path", type=folder, default=None, metavar="DIR",
                       help="directory store: its root folder (default: store.path)")
    group.add_argument("--base-url", default="", metavar="URL",
                       help="directory store: the URL the folder is served at, recorded in "
                            "the catalog (default: a file:// URL of the folder)")
    group.add_argument("--repository", default=None, metavar="OWNER/NAME",
                       help="GitHub repository (default: store.repository, else "
                            "$GITHUB_REPOSITORY)")
    group.add_argument("--api-url", default=None, metavar="URL",
                       help="GitHub API base URL (default: $GITHUB_API_URL, else "
                            "https://api.github.com; Enterprise: https://HOST/api/v3)")
    group.add_argument("--token-file", type=Path, default=None, metavar="FILE",
                       help="read the GitHub token from FILE (default: $GITHUB_TOKEN)")
    group.add_argument("--max-assets-per-release", type=int_in(1, GITHUB_MAX_ASSETS),
                       default=None, metavar="N",
                       help="GitHub: assets per release before a new one is opened, 1-1000 "
                            "(default: store.max_assets_per_release, else 900)")
    group.add_argument("--immutable", action="store_true", default=None,
                       help="GitHub: create releases as drafts, upload, then publish them "
                            "(for repositories with immutable releases)")
    group.add_argument("--write-interval", type=seconds, default=1.0, metavar="SECONDS",
                       help="GitHub: pause between write requests (default 1; GitHub asks "
                            "for at least 1 s; 0 disables pacing, for tests)")
    group.add_argument("--retry-delay", type=seconds, default=2.0, metavar="SECONDS",
                       help="GitHub: first backoff after a 5xx or dropped connection, doubled "
                            "on each retry (default 2)")


def store_choice(args: argparse.Namespace) -> StoreChoice:
    """The store options as the stores module takes them."""
    return StoreChoice(args.store or "", args.path, args.base_url, args.repository,
                       args.api_url, args.token_file, args.max_assets_per_release,
                       args.immutable, args.write_interval, args.retry_delay)
