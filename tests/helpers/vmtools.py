"""QEMU and a static busybox: what a load test's VM needs on this machine."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

VM_TOOLS = shutil.which("qemu-system-x86_64") is not None and Path("/bin/busybox").is_file()
ARM64_VM = shutil.which("qemu-system-aarch64") is not None


def needs_vm_tools(arm64: bool = False) -> None:
    """QEMU (with qemu-system-aarch64 too when `arm64`) and busybox-static, or skip (in CI,
    fail: make deps installs them)."""
    missing = (not VM_TOOLS) or (arm64 and not ARM64_VM)
    if missing:
        packages = "qemu-system-x86, busybox-static" + (" and qemu-system-arm" if arm64 else "")
        if os.environ.get("CI"):
            pytest.fail(f"CI must have {packages} (make deps)")
        pytest.skip(f"{packages}: not all installed")
