"""core/drivertypes.py: the types of driver (the eBPF probe, the kernel module), told apart
by their file's extension, and named the way each type's loaders name it."""

from __future__ import annotations

import pytest

from builder.core.drivertypes import BY_NAME, DEFAULT_TYPE, DRIVER_TYPES, EBPF, KMOD, type_of_file
from builder.core.records import ProbeName, probe_file_name


@pytest.mark.parametrize(("file", "kind"), [
    ("falco_debian_6.1.0-1-amd64_1.o", EBPF), ("falco_debian_6.1.0-1-amd64_1.ko", KMOD),
    ("falco_debian_6.1.0-1-amd64_1.o.log", None), ("falco.ko.sigstore.json", None),
    ("README", None),
])
def test_a_files_type_is_its_extension(file: str, kind: object) -> None:
    assert type_of_file(file) == kind


def test_the_default_is_the_ebpf_probe_and_each_type_says_how_it_is_loaded() -> None:
    assert DEFAULT_TYPE == "ebpf" and DRIVER_TYPES == ("ebpf", "kmod")
    assert {name: (t.extension, t.helm_kind, t.shell_loader_arg) for name, t in
            BY_NAME.items()} == {"ebpf": (".o", "ebpf", "bpf"), "kmod": (".ko", "kmod", "")}


def test_the_loaders_file_name_takes_the_types_extension() -> None:
    assert probe_file_name("debian", "6.1.0-1-amd64", "1") == "falco_debian_6.1.0-1-amd64_1.o"
    assert probe_file_name("debian", "6.1.0-1-amd64", "1", "kmod") == \
        "falco_debian_6.1.0-1-amd64_1.ko"
    assert ProbeName("cos", "5.15.107+", "1", "x86_64", "kmod").file == "falco_cos_5.15.107+_1.ko"
