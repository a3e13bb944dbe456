"""QEMU and a static busybox: what a load test's VM needs on this machine."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

VM_TOOLS = shutil.which("qemu-system-x86_64") is not None and Path("/bin/busybox").is_file()


def needs_vm_tools() -> None:
    if not VM_TOOLS:
        if os.environ.get("CI"):
            pytest.fail("CI must have qemu-system-x86 and busybox-static (make deps)")
        pytest.skip("qemu-system-x86 or busybox-static is not installed")
