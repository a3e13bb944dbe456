"""The types of driver this repository builds, and what each type's loaders expect.

Falco's loaders request two types of driver under the same name and path but for the
extension: the legacy eBPF probe (`falco_<target>_<release>_<version>.o`) and the
kernel module (`.ko`). falcoctl calls this the driver type (`falcoctl driver install
--type ebpf|kmod`); probes.yaml, the catalog, reports and plans say `driver_type`.
Every stage asks a file's type here (its extension, its loader settings), never
assumes `.o`: a second type is a sibling entry, not a fork.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DriverType:
    name: str              # probes.yaml, the catalog, falcoctl --type: ebpf | kmod
    extension: str         # of the file the loaders request
    noun: str              # what a person calls it
    helm_kind: str         # the Falco Helm chart's `driver.kind`
    shell_loader_arg: str  # falco-driver-loader's argument ("": none, the module)


EBPF = DriverType("ebpf", ".o", "eBPF probe", helm_kind="ebpf", shell_loader_arg="bpf")
KMOD = DriverType("kmod", ".ko", "kernel module", helm_kind="kmod", shell_loader_arg="")
DRIVER_TYPES = (EBPF.name, KMOD.name)
DEFAULT_TYPE = EBPF.name  # a record without `driver_type`: every record before kmod existed
BY_NAME = {t.name: t for t in (EBPF, KMOD)}


def type_of_file(file: str) -> DriverType | None:
    """The type a file name's extension says (`.o` or `.ko`), None for neither."""
    return next((t for t in BY_NAME.values() if file.endswith(t.extension)), None)
