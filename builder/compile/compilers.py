"""Which compiler builds each kind of artifact, and which check it must pass.

The stage asks here, never names a build itself: the eBPF probe is built by kbuild.py
with clang and llc, the kernel module by kmod.py with the gcc its kernel was built with;
shared/elfcheck.py checks each (`CHECKS`, by kind).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from builder.compile import kbuild, kmod
from builder.core.drivertypes import BY_NAME, EBPF, KMOD, DriverType
from builder.core.errors import BuildError
from builder.shared.elfcheck import CHECKS, ProbeCheck


@dataclass(frozen=True, slots=True)
class Compiler:
    driver_type: DriverType
    # (build_dir, source, out_dir, *, timeout, headers, arch) -> kbuild.CompileResult
    compile: Callable[..., kbuild.CompileResult[Any]]
    # (file, *, kernel_release, arch, driver_version) -> why it is not a valid artifact of
    # this kind, if it is not
    check: Callable[..., ProbeCheck]
    # What every compile of the kind needs, checked before any download: raises BuildError
    # naming what is missing (a module's gcc is its kernel's, checked per kernel).
    find_toolchain: Callable[[], Any]


COMPILERS = {EBPF.name: Compiler(EBPF, kbuild.compile_probe, CHECKS[EBPF.name],
                                  kbuild.find_toolchain),
             KMOD.name: Compiler(KMOD, kmod.compile_module, CHECKS[KMOD.name],
                                 kmod.find_toolchain)}


def compiler_for(name: str) -> Compiler:
    found = COMPILERS.get(name)
    if found is None:
        raise BuildError(f"no compiler builds {BY_NAME[name].noun}s ({name}) yet",
                         hint="plan only the driver types this version builds")
    return found
