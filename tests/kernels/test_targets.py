"""kernels/targets.py: the kernels of probes.yaml's targets, each source read once, each
kernel kept or left with its target's reason; and when nothing matches, what is offered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from crawlerlists import CURRENT

from builder.core.config import Config, load_config
from builder.core.errors import InputError
from builder.kernels import discover as real_discover
from builder.kernels import targets
from builder.kernels.targets import kernels_for_targets

TARGETS = f"""\
  - name: debian
    kernels: kernel-crawler:{CURRENT}
    include: '^6\\.1\\.'
  - name: ubuntu
    kernels: kernel-crawler:{CURRENT}
    exclude: aws
"""


def config(tmp_path: Path, targets_yaml: str = TARGETS) -> Config:
    path = tmp_path / "probes.yaml"
    path.write_text("schema_version: 1\ndriver_versions:\n  - version: 6.0.1+driver\n"
                    "    falco: [0.36.2]\n    source: {kind: libs-archive}\n"
                    f"targets:\n{targets_yaml}")
    return load_config(path)


def test_each_target_keeps_its_kernels_and_says_why_it_left_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    def counted(spec: str, **options: Any) -> Any:
        reads.append(spec)
        return real_discover(spec, **options)

    monkeypatch.setattr(targets, "discover", counted)
    found = kernels_for_targets(config(tmp_path), (), None)
    assert reads == [f"kernel-crawler:{CURRENT}"]        # one source, read once
    assert [(k.target, k.host.uname_r) for k in found.kernels] == [
        ("debian", "6.1.0-47-amd64"), ("debian", "6.1.0-47-rt-amd64"),
        ("ubuntu-generic", "5.15.0-100-generic")]
    assert [(left.target, left.kernel_release, left.driver_version) for left in found.left] == [
        ("debian", "6.12.48+deb12-cloud-amd64", "*"), ("ubuntu-aws", "5.15.0-1009-aws", "*")]
    assert all(left.reason for left in found.left)
    only = kernels_for_targets(config(tmp_path), ("ubuntu",), None)
    assert [k.target for k in only.kernels] == ["ubuntu-generic"]


def test_an_unknown_target_is_bad_input_listing_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="target 'fedora' is not in") as refused:
        kernels_for_targets(config(tmp_path), ("fedora",), None)
    assert refused.value.hint == "targets: debian, ubuntu"


def test_when_nothing_matches_the_error_says_what_the_source_offers(tmp_path: Path) -> None:
    nothing = TARGETS.replace("'^6\\.1\\.'", "'^7\\.'").replace("exclude: aws", "include: x^")
    with pytest.raises(InputError) as refused:
        kernels_for_targets(config(tmp_path, nothing), (), None)
    assert refused.value.message == (
        f"{tmp_path}/probes.yaml: no kernel matches target 'debian' (kernel-crawler:{CURRENT}"
        f", x86_64, include '^7\\\\.'); target 'ubuntu' (kernel-crawler:{CURRENT}, x86_64, "
        "include 'x^')")
    assert refused.value.hint == (
        "the sources offer (newest per series): 5.15.0-100-generic, 5.15.0-1009-aws, "
        "6.1.0-47-amd64, 6.1.0-47-rt-amd64, 6.12.48+deb12-cloud-amd64; adjust the target's "
        "suites, include or exclude")
