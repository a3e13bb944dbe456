"""compile/compilers.py: the stage asks here which compiler builds a driver type and which
check its output must pass; a type no compiler builds yet is a BuildError saying so."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakeprobe import EM_X86_64, make_fake_probe

from builder.compile import kbuild
from builder.compile.compilers import compiler_for
from builder.core.drivertypes import EBPF
from builder.core.errors import BuildError


def test_the_ebpf_probe_is_built_by_kbuild_and_checked_as_an_ebpf_object(tmp_path: Path) -> None:
    compiler = compiler_for("ebpf")
    assert compiler.driver_type == EBPF
    assert compiler.compile is kbuild.compile_probe
    assert compiler.find_toolchain is kbuild.find_toolchain
    good = make_fake_probe(tmp_path / "good.o", kernel_release="6.1.0-1-amd64")
    assert compiler.check(good, kernel_release="6.1.0-1-amd64").ok
    other = make_fake_probe(tmp_path / "x86.o", machine=EM_X86_64)
    assert not compiler.check(other, kernel_release="6.1.0-1-amd64").ok


def test_a_type_without_a_compiler_is_refused_by_name() -> None:
    with pytest.raises(BuildError, match=r"no compiler builds kernel modules \(kmod\) yet"):
        compiler_for("kmod")
