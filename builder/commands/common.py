"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

from ..config import Config, load_config
from ..kernels.targets import TargetKernels
from ..ui import info

CATALOG_ENV = "FALCO_PROBES_CATALOG"
CONFIG_ENV = "FALCO_PROBES_CONFIG"


def default_catalog() -> Path:
    """The catalog folder: $FALCO_PROBES_CATALOG, else ./catalog (the repo's, run from its root)."""
    return Path(os.environ.get(CATALOG_ENV) or "catalog")


def default_config() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or "probes.yaml")


def add_catalog_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", type=Path, default=None, metavar="DIR",
                        help=f"catalog folder (default: ${CATALOG_ENV} or ./catalog)")


def add_config_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help=f"probes.yaml to use (default: ${CONFIG_ENV} or ./probes.yaml)")


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
