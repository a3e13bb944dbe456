"""loadtest/kernelimage.py: a kernel image's modules, their load order and the share
the VM uses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from builder.loadtest.kernelimage import (
    KernelModule,
    KernelUnavailable,
    headers_version,
    image_from_tree,
    load_order,
    module_name,
)


def _module(tmp_path: Path, name: str, depends: tuple[str, ...] = ()) -> KernelModule:
    path = tmp_path / f"{name}.ko"
    path.write_bytes(b"\x7fELF" + name.encode())
    return KernelModule(name, path, depends)


def test_modules_load_after_what_they_depend_on(tmp_path: Path) -> None:
    index = {m.name: m for m in [
        _module(tmp_path, "9p", ("9pnet", "netfs", "fscache")),
        _module(tmp_path, "9pnet"), _module(tmp_path, "netfs"),
        _module(tmp_path, "fscache", ("netfs",)),
        _module(tmp_path, "9pnet_virtio", ("virtio", "9pnet", "virtio_ring")),
        _module(tmp_path, "virtio", ("virtio_ring",)), _module(tmp_path, "virtio_ring"),
        _module(tmp_path, "virtio_pci", ("virtio_ring", "virtio")),
    ]}
    order = [m.name for m in load_order(index, ("virtio_pci", "9pnet_virtio", "9p"), set())]
    assert order == ["virtio_ring", "virtio", "virtio_pci", "9pnet", "9pnet_virtio", "netfs",
                     "fscache", "9p"]
    builtin = [m.name for m in load_order(index, ("virtio_pci", "9pnet_virtio", "9p"),
                                          {"virtio", "virtio_ring", "virtio_pci"})]
    assert builtin == ["9pnet", "9pnet_virtio", "netfs", "fscache", "9p"]


def test_a_missing_or_circular_module_makes_the_kernel_unavailable(tmp_path: Path) -> None:
    index = {"9p": _module(tmp_path, "9p", ("netfs",))}
    with pytest.raises(KernelUnavailable, match="no module netfs \\(needed by 9p\\)"):
        load_order(index, ("9p",), set())
    index = {"a": _module(tmp_path, "a", ("b",)), "b": _module(tmp_path, "b", ("a",))}
    with pytest.raises(KernelUnavailable, match="circle: a -> b -> a"):
        load_order(index, ("a",), set())


@pytest.mark.parametrize(("path", "name"), [
    ("kernel/net/9p/9pnet_virtio.ko", "9pnet_virtio"),
    ("kernel/drivers/virtio/virtio_pci.ko.xz", "virtio_pci"),
    ("kernel/fs/fscache/fs-cache.ko.zst", "fs_cache"),
])
def test_module_names_are_the_kernels(path: str, name: str) -> None:
    assert module_name(path) == name


def test_headers_version_is_the_headers_packages() -> None:
    headers = ({"name": "linux-headers-6.1.0-56-common_6.1.192-2_all.deb"},
               {"name": "linux-headers-6.1.0-56-amd64_6.1.192-2_amd64.deb"})
    assert headers_version("6.1.0-56-amd64", headers, "x") == "6.1.192-2"
    epoch = ({"name": "linux-headers-6.12.9+deb12-amd64_1%3a6.12.9-1~bpo12_amd64.deb"},)
    assert headers_version("6.12.9+deb12-amd64", epoch, "x") == "1:6.12.9-1~bpo12"
    assert headers_version("6.1.0-56-amd64", (), "6.1.192-2") == "6.1.192-2"


def _real_module(folder: Path, name: str, depends: str) -> None:
    """A kernel module stand-in: a real ELF object with the .modinfo a module has."""
    clang = shutil.which("clang")
    if clang is None:
        pytest.skip("clang is not installed (make deps installs it)")
    source = f'__attribute__((section(".modinfo"), used)) char info[] = "depends={depends}";'
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([clang, "-c", "-x", "c", "-", "-o", str(folder / f"{name}.ko")],
                   input=source.encode(), check=True)


def _kernel_tree(root: Path, release: str, modules: dict[str, str]) -> Path:
    (root / "boot").mkdir(parents=True)
    (root / "boot" / f"vmlinuz-{release}").write_bytes(b"kernel")
    kernel = root / "lib" / "modules" / release / "kernel"
    for name, depends in modules.items():
        _real_module(kernel / "drivers", name, depends)
    (root / "lib" / "modules" / release / "modules.builtin").write_text(
        "kernel/drivers/virtio/virtio_ring.ko\n")
    return root


VIRTIO = {"virtio": "virtio_ring", "virtio_pci": "virtio_ring,virtio"}
NINE_P = {"9pnet": "", "9pnet_virtio": "virtio,9pnet,virtio_ring", "9p": "9pnet"}
VIRTIOFS = {"fuse": "", "virtiofs": "fuse,virtio,virtio_ring"}


@pytest.mark.parametrize(("modules", "shares", "share", "order"), [
    ({**VIRTIO, **NINE_P, **VIRTIOFS}, ("9p", "virtiofs"), "9p",
     ["virtio", "virtio_pci", "9pnet", "9pnet_virtio", "9p"]),
    # Debian's cloud flavors have no 9p: virtiofs, when this host can run virtiofsd.
    ({**VIRTIO, **VIRTIOFS}, ("9p", "virtiofs"), "virtiofs",
     ["virtio", "virtio_pci", "fuse", "virtiofs"]),
])
def test_the_share_is_the_first_the_kernel_has_modules_for(
        tmp_path: Path, modules: dict[str, str], shares: tuple[str, ...], share: str,
        order: list[str]) -> None:
    tree = _kernel_tree(tmp_path, "6.1.0-9-cloud-amd64", modules)
    image = image_from_tree(tree, "6.1.0-9-cloud-amd64", "linux-image-x", shares)
    assert image.share == share
    assert [m.name for m in image.modules] == order  # virtio_ring is built in


def test_a_kernel_without_a_usable_share_is_unavailable(tmp_path: Path) -> None:
    tree = _kernel_tree(tmp_path, "6.1.0-9-cloud-amd64", {**VIRTIO, **VIRTIOFS})
    with pytest.raises(KernelUnavailable) as raised:
        image_from_tree(tree, "6.1.0-9-cloud-amd64", "linux-image-x", ("9p",))
    # What the kernel lacks, and the share it has that this host does not offer.
    assert raised.value.message == (
        "the VM could not see this machine's files: 9p: the kernel has no module "
        "9pnet_virtio and it is not built in; virtiofs: this host runs no virtiofsd (it "
        "needs root and Debian's "
        "virtiofsd on Debian 13, qemu-system-x86 on Debian 12)")
