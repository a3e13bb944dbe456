"""Where the tests find the repository and their data: ROOT is the checkout, DATA is
tests/data (committed fixtures: kernel-crawler lists, the loader's naming cases, a broken
catalog)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
NAMING_CASES = DATA / "naming_cases.yaml"   # what each Falco release's loader requests
NAMING_CASES_KMOD = DATA / "naming_cases_kmod.yaml"   # where the kernel module differs
