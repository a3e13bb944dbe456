"""The README's two commands, as the Makefile and .ci/run carry them out.

The venv must come from the distro's interpreter (a fresh Debian 12 has 3.11.2 as
/usr/bin/python3; our machines also have a newer python3 earlier on PATH, which once
hid a crash), the demo must install only what it needs, and CI must run `make test`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from testpaths import ROOT

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make_value(name: str, *args: str) -> str:
    """A variable's value as make expands it (`make -s print-VAR` without a target)."""
    out = subprocess.run(["make", "-s", "-f", "Makefile", "-f", "-", f"print-{name}", *args],
                         input="print-%:\n\t@echo $($*)\n", capture_output=True, text=True,
                         cwd=ROOT, check=True)
    return out.stdout.strip()


@needs_make
def test_the_venv_comes_from_the_distros_python() -> None:
    expected = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else "python3"
    assert make_value("PYTHON") == expected
    assert make_value("PYTHON", "PYTHON=/opt/other/python3") == "/opt/other/python3"


def test_this_suite_runs_on_the_floor_it_promises() -> None:
    floor = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert floor == ">=3.11.2"
    if Path("/usr/bin/python3").exists() and (ROOT / ".venv").exists():
        # the venv the Makefile made is the distro's interpreter, not a newer one on PATH
        venv_python = (ROOT / ".venv" / "bin" / "python").resolve()
        distro = Path("/usr/bin/python3").resolve()
        if Path(sys.prefix) == (ROOT / ".venv").resolve():
            assert venv_python == distro


@needs_make
def test_the_demo_installs_only_its_toolchain() -> None:
    demo = set(make_value("DEMO_PACKAGES").split())
    test = set(make_value("TEST_PACKAGES").split())
    assert {"clang", "llvm", "make", "libelf-dev", "python3-venv"} <= demo < test
    assert not {"chromium", "rpm"} & demo
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: demo-deps venv\b", makefile, re.MULTILINE)
    assert re.search(r"^\t\$\(BIN\)/falco-probes demo .*\$\(ARGS\)$", makefile, re.MULTILINE)


@needs_make
def test_optional_packages_are_virtiofsd_only_where_offered() -> None:
    demo, test = make_value("DEMO_PACKAGES").split(), make_value("TEST_PACKAGES").split()
    optional = make_value("DEMO_OPTIONAL_PACKAGES").split()
    assert optional == ["virtiofsd"] and "virtiofsd" not in demo + test
    assert set(optional) <= set(make_value("TEST_OPTIONAL_PACKAGES").split())


FAKE_APT = {
    # installed: $INSTALLED; known to apt-cache: $OFFERED, plus $OFFERED_AFTER_UPDATE once
    # apt-get update ran; apt-get and sudo log what they were asked
    "dpkg-query": 'case " $INSTALLED " in *" $3 "*) echo "install ok installed";; '
                  '*) exit 1;; esac',
    "apt-cache": 'known="$OFFERED"; [ -e "$LOG.updated" ] && known="$known $OFFERED_AFTER_UPDATE"\n'
                 'case " $known " in *" $2 "*) exit 0;; *) exit 100;; esac',
    "apt-get": 'echo "apt-get $*" >> "$LOG"; [ "$1" = update ] && : > "$LOG.updated"; exit 0',
    "sudo": 'exec "$@"',
}


@needs_make
@pytest.mark.parametrize(("installed", "offered", "after_update", "asked"), [
    # Debian 12 with everything: no virtiofsd package, nothing to do, no apt-get update
    ("ALL", "", "", []),
    # Debian 13 with everything but virtiofsd
    ("ALL", "virtiofsd", "", ["apt-get update -q", "apt-get install -y -q virtiofsd"]),
    # a fresh Debian 12: the toolchain, no virtiofsd
    ("", "", "", ["apt-get update -q", "apt-get install -y -q DEMO"]),
    # a fresh Debian 13 whose lists know virtiofsd only after the update
    ("", "", "virtiofsd", ["apt-get update -q", "apt-get install -y -q DEMO virtiofsd"]),
    # virtiofsd already installed
    ("ALL virtiofsd", "virtiofsd", "", []),
])
def test_demo_deps_install_optional_packages_only_where_offered(
        tmp_path: Path, installed: str, offered: str, after_update: str,
        asked: list[str]) -> None:
    demo = make_value("DEMO_PACKAGES")
    fakes = tmp_path / "bin"
    fakes.mkdir()
    for name, body in FAKE_APT.items():
        (fakes / name).write_text(f"#!/bin/sh\n{body}\n")
        (fakes / name).chmod(0o755)
    log = tmp_path / "apt.log"
    env = {"PATH": f"{fakes}:/usr/bin:/bin", "LOG": str(log),
           "INSTALLED": installed.replace("ALL", demo), "OFFERED": offered,
           "OFFERED_AFTER_UPDATE": after_update}
    done = subprocess.run(["make", "-s", "demo-deps"], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True)
    calls = log.read_text().splitlines() if log.exists() else []
    assert [" ".join(c.split()) for c in calls] == [a.replace("DEMO", demo) for a in asked]
    assert ("all installed" in done.stderr) == (not asked)


def test_ci_runs_the_readmes_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == [
        "make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.rstrip().endswith("make test")
    assert "apt-get update" in ci and "PRETTY_NAME" in ci
