"""`falco-probes demo`, for real on a small config: the pipeline ends with a `find`
command that, pasted as is, finds a probe it built, and the demo's web server answers
the loader's request path for it with the right bytes.

The embedded defaults build 12 probes (several minutes); this runs the same code on
one driver source and one kernel. `make demo` itself is the README's first command.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from realprobe import DKMS_PACKAGE_VERSION, DKMS_SUITE, shared_cache
from testpaths import ROOT

from builder.commands.demo import make_server
from builder.core.config import load_config

pytestmark = pytest.mark.slow
CONFIG = f"""\
schema_version: 1
driver_versions:
  - version: 0.1.1dev+git20220316.e5c53d64
    ref: e5c53d64
    falco: [0.43.0, 0.43.1]   # pretend, so the newest Falco finds it by default
    source: {{kind: debian-package, package: falcosecurity-scap-dkms, suite: {DKMS_SUITE},
             version: {DKMS_PACKAGE_VERSION}}}
targets:
  - name: debian
    kernels: apt
    suites: [bookworm]
    include: '^6\\.1\\.0-\\d+-amd64$'
    latest: 1
store: {{kind: directory, path: store}}
build: {{jobs: 1, timeout: 600}}
"""


def test_demo_ends_with_a_find_command_that_works(tmp_path: Path) -> None:
    (tmp_path / "probes.yaml").write_text(CONFIG)
    load_config(tmp_path / "probes.yaml")
    falco_probes = Path(sys.executable).parent / "falco-probes"
    done = subprocess.run(
        [str(falco_probes), "demo", "--out", str(tmp_path / "demo"), "--config",
         str(tmp_path / "probes.yaml"), "--mkdocs", str(ROOT / "mkdocs.yml"), "--cache",
         str(shared_cache()), "--no-serve", "--no-loadtest"],  # tests/e2e/test_loadtest_boot.py
        capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert any("DRIVERS_REPO=http://127.0.0.1:8000/store" in line for line in lines)
    assert any("FALCOCTL_DRIVER_REPOS=http://127.0.0.1:8000/store" in line for line in lines)
    command = next(line.strip() for line in lines if " find " in line)
    # pasted as is, from where the user ran the demo
    found = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                           timeout=120, cwd=ROOT)
    assert found.returncode == 0, found.stdout + found.stderr
    answer = dict(line.split(":", 1) for line in found.stdout.splitlines())
    assert answer["status"].strip() == "available"
    path = answer["request path"].split()[0]
    served = make_server(tmp_path / "demo" / "site", tmp_path / "demo" / "store", 0)
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{served.server_address[1]}/store/{path}"
        with urllib.request.urlopen(url, timeout=30) as response:
            data = response.read()
        with urllib.request.urlopen(url.rsplit("/store/", 1)[0] + "/", timeout=30) as page:
            assert b"Falco" in page.read()
    finally:
        served.shutdown()
        thread.join()
    assert hashlib.sha256(data).hexdigest() == answer["sha256"].strip()
    assert shlex.split(command)[0].endswith("falco-probes")
