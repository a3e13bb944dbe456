"""Reproducible probes: the same source and headers give the same bytes wherever they are built.

Two real compiles whose every folder differs: the sysroot (extracted twice,
in different places), the prepared source (cached in two places) and the
kbuild work folder. Without the prefix maps the debug info and BTF would
record those folders and the digests would differ.
"""

from __future__ import annotations

import pytest
from realprobe import compiled_probe, debian_source, dkms_driver, real_kernel, sysroot

from builder.compile.driversrc import prepare_source
from builder.compile.kbuild import CANONICAL_DRIVER, compile_probe

pytestmark = pytest.mark.slow


def test_same_bytes_from_different_folders(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.getbasetemp()
    first = compiled_probe(base)

    # everything elsewhere: another sysroot, another copy of the source, a deeper work folder
    other_build_dir = sysroot(base, "b")
    copy = tmp_path_factory.mktemp("elsewhere") / "a" / "much" / "longer" / "path"
    source = prepare_source(dkms_driver("directory", path=str(debian_source().driver_dir)),
                            copy / "cache")
    work_root = copy / "work"
    work_root.mkdir()
    second = compile_probe(other_build_dir, source, copy / "out", timeout=300,
                           work_root=work_root, headers=real_kernel().headers)
    assert second.ok, second.reason

    assert first.probe is not None and second.probe is not None
    assert source.driver_dir != debian_source().driver_dir
    assert other_build_dir != sysroot(base, "a")
    assert source.digest == first.source_digest
    assert second.sha256 == first.sha256
    assert second.probe.read_bytes() == first.probe.read_bytes()
    # what a report records is the same too
    assert second.canonical_command == first.canonical_command
    assert second.kernel_dir == first.kernel_dir
    assert second.log == first.log


def test_probe_names_only_canonical_folders(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.getbasetemp()
    result = compiled_probe(base)
    assert result.probe is not None
    data = result.probe.read_bytes()
    assert f"{CANONICAL_DRIVER}/bpf/probe.c".encode() in data
    assert str(base).encode() not in data
    assert b"/tmp/" not in data
    assert str(sysroot(base, "a")).encode() not in data
