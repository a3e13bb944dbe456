"""kernels/__init__.py: kernel source specs and `discover` over one or several lists."""

from __future__ import annotations

from collections import Counter

import pytest
from crawlerlists import LISTS, OLD

from builder.core.errors import InputError
from builder.kernels import discover, parse_source


def test_arch_placeholder_reads_one_list_per_arch() -> None:
    found = discover(f"kernel-crawler:{LISTS}/{{arch}}/list.json", arches=("x86_64", "aarch64"))
    assert Counter(k.arch for k in found.kernels) == {"x86_64": 12, "aarch64": 3}
    with pytest.raises(InputError, match="one kernel-crawler list holds one architecture"):
        discover(f"kernel-crawler:{OLD}", arches=("x86_64", "aarch64"))


@pytest.mark.parametrize(("spec", "parsed"), [
    ("apt", ("apt", "")), ("apt:/etc/x.sources", ("apt", "/etc/x.sources")),
    ("kernel-crawler:https://h.example/x86_64/list.json",
     ("kernel-crawler", "https://h.example/x86_64/list.json")),
])
def test_source_specs(spec: str, parsed: tuple[str, str]) -> None:
    assert parse_source(spec) == parsed


@pytest.mark.parametrize("spec", ["", "apt:", "yum", "kernel-crawler:", "crawler:x.json"])
def test_bad_source_specs(spec: str) -> None:
    with pytest.raises(InputError, match="is not a kernel source"):
        parse_source(spec)
