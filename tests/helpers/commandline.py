"""Running `falco-probes` in tests: in this process (`cli`, no traceback allowed) or in
a fresh Python with its peak memory measured (`measured`), and the facts of one node
that `find` is asked about."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from builder.cli import main

NODE = ["--uname-r", "6.1.0-1-amd64", "--uname-v", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.0-1",
        "--uname-m", "x86_64", "--falco-version", "0.35.0"]


def empty_catalog(tmp: Path) -> Path:
    """A catalog folder with nothing in it (find refuses a folder that is not there)."""
    root = tmp / "empty-catalog"
    root.mkdir(exist_ok=True)
    return root


def os_release(tmp_path: Path) -> Path:
    path = tmp_path / "os-release"
    path.write_text("ID=debian\nVERSION_ID=12\n")
    return path


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


MAX_RSS_MB = 200  # the bound for any single hostile input


def measured(argv: list[str], env: dict[str, str] | None = None, stdin: Path | None = None
             ) -> tuple[int, str, str, float]:
    """Run the CLI in a fresh Python; (exit code, stdout, stderr, its peak memory in MB).

    The peak is the process's own VmHWM: getrusage's ru_maxrss would also count the
    memory of this (forking) test process, which Linux carries across exec.
    """
    script = ("import re, sys\nfrom builder.cli import main\ncode = main(sys.argv[1:])\n"
              "status = open('/proc/self/status').read()\n"
              "print('MAXRSS', re.search(r'VmHWM:\\s+(\\d+)', status).group(1), "
              "file=sys.stderr)\nsys.exit(code)\n")
    with open(stdin or os.devnull, "rb") as feed:
        done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True,
                              text=True, timeout=300, stdin=feed,
                              env={**os.environ, **(env or {})})
    match = re.search(r"MAXRSS (\d+)", done.stderr)
    assert match, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    return done.returncode, done.stdout, done.stderr, int(match.group(1)) / 1024
