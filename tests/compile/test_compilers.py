"""compile/compilers.py: the stage asks here which compiler builds a driver type and which
check its output must pass: kbuild's clang for the eBPF probe, kmod's gcc for the module."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fakeprobe import make_fake_module, make_fake_probe

from builder.compile import kbuild, kmod
from builder.compile.compilers import COMPILERS, compiler_for
from builder.core.drivertypes import DRIVER_TYPES

# type, its compile and toolchain lookup, a valid file of the type, a file of the other type
CASES = [("ebpf", kbuild.compile_probe, kbuild.find_toolchain, make_fake_probe, make_fake_module),
         ("kmod", kmod.compile_module, kmod.find_toolchain, make_fake_module, make_fake_probe)]


@pytest.mark.parametrize(("name", "compile_", "find_toolchain", "good", "other"), CASES)
def test_each_type_is_built_by_its_compiler_and_checked_as_its_kind(
        tmp_path: Path, name: str, compile_: object, find_toolchain: object,
        good: Callable[..., Path], other: Callable[..., Path]) -> None:
    compiler = compiler_for(name)
    assert compiler.driver_type.name == name
    assert (compiler.compile, compiler.find_toolchain) == (compile_, find_toolchain)
    release = "6.1.0-1-amd64"
    valid = good(tmp_path / "good", kernel_release=release)
    assert compiler.check(valid, kernel_release=release, arch="x86_64").ok
    wrong_kind = other(tmp_path / "other", kernel_release=release)
    assert not compiler.check(wrong_kind, kernel_release=release, arch="x86_64").ok


def test_every_driver_type_has_a_compiler() -> None:
    assert sorted(COMPILERS) == sorted(DRIVER_TYPES)
