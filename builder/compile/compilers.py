"""Which compiler builds each kind of artifact, and which check it must pass.

The stage asks here, never names kbuild's eBPF build itself: the eBPF probe is built by
kbuild.py with clang and llc and checked by shared/elfcheck.py (`CHECKS`, by kind); a
second kind (the kernel module) is a sibling entry with its own compile and check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from builder.compile import kbuild
from builder.core.drivertypes import BY_NAME, EBPF, DriverType
from builder.core.errors import BuildError
from builder.shared.elfcheck import CHECKS, ProbeCheck


@dataclass(frozen=True, slots=True)
class Compiler:
    driver_type: DriverType
    # (build_dir, source, out_dir, *, timeout, headers, arch) -> kbuild.CompileResult
    compile: Callable[..., kbuild.CompileResult]
    # (file, *, kernel_release) -> why it is not a valid artifact of this kind, if it is not
    check: Callable[..., ProbeCheck]
    find_toolchain: Callable[[], Any]     # raises BuildError naming what is missing


COMPILERS = {EBPF.name: Compiler(EBPF, kbuild.compile_probe, CHECKS[EBPF.name],
                                  kbuild.find_toolchain)}


def compiler_for(name: str) -> Compiler:
    found = COMPILERS.get(name)
    if found is None:
        raise BuildError(f"no compiler builds {BY_NAME[name].noun}s ({name}) yet",
                         hint="plan only the driver types this version builds")
    return found
