"""cli.py: exit codes, `--debug`, and whole commands' memory on hostile input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from catalogfiles import HEAD, good_probe, write_catalog
from commandline import MAX_RSS_MB, NODE, measured
from configs import TWO_DRIVERS
from hostileinputs import alias_bomb

from builder.cli import main
from builder.core.catalog import CatalogFile, fragment_line, render


def test_debug_prints_the_traceback_and_keeps_the_exit_code(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--debug", "find", "--catalog", str(tmp_path), "--os-release", "/dev/zero",
                 *NODE])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback (most recent call last)" in err
    assert err.rstrip().splitlines()[-2:] == [
        "error: os-release: /dev/zero: is a device, not a regular file",
        "hint: give the path of a regular file"]


# --- memory: whole commands on hostile files --------------------------------------------------

def test_memory_stays_bounded_on_hostile_files(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    write_catalog(catalog, alias_bomb())
    deep = tmp_path / "deep"
    write_catalog(deep, (HEAD + "probes: " + "[" * 990 + "]" * 990).encode())
    config = tmp_path / "probes.yaml"
    config.write_text(TWO_DRIVERS + alias_bomb())
    os_release = tmp_path / "os-release"
    os_release.write_text("ID=debian\n")
    stream = tmp_path / "nodes.jsonl"  # one 50 MB line between two good ones
    good = json.dumps({"driver_version": "5.0.1+driver", "uname_r": "6.1.0-1-amd64",
                       "uname_v": "#1", "uname_m": "x86_64", "os_release": "ID=debian"})
    with stream.open("w") as handle:
        handle.write(good + "\n" + '{"os_release": "' + "A" * 50_000_000 + '"}\n' + good + "\n")
    full = tmp_path / "full"  # a genuine file of full probe lines, at the YAML node limit
    write_catalog(full, render(CatalogFile("5.0.1+driver", "x86_64", "debian", tuple(
        replace(good_probe(f"6.1.0-{i}-amd64", f"{i:064x}"), release="probes-5.0.1-001",
                built="2026-11-25T08:00:00Z", commit="a" * 40, source="debian source 1.0")
        for i in range(7100)))).encode())
    ones = tmp_path / "ones"  # two million nodes in 4 MB
    write_catalog(ones, (HEAD + "probes: [" + "1," * 1_999_000 + "1]\n").encode())
    fragment = tmp_path / "fragment.jsonl"  # just under 8 MiB of minimal probe lines, over
    with fragment.open("w") as handle:     # two arches (a catalog file holds at most 4 MiB)
        for i in range(23_000):
            probe = good_probe(f"6.1.0-{i}-amd64", f"{i:064x}")
            handle.write(json.dumps(fragment_line(
                replace(probe, arch="aarch64") if i % 2 else probe)) + "\n")
    assert 7.5 < fragment.stat().st_size / 2 ** 20 < 8
    (tmp_path / "none").mkdir()  # an empty catalog: find refuses a missing folder
    cases = [
        (["catalog", "merge", "--catalog", str(tmp_path / "merged"), str(fragment)], 0),
        (["catalog", "check", str(ones)], 1),
        (["find", "--catalog", str(ones), "--os-release", str(os_release), *NODE], 2),
        (["catalog", "check", str(full)], 0),
        (["verify", "--catalog", str(full), "/dev/null"], 1),
        (["catalog", "check", str(catalog)], 1),
        (["find", "--catalog", str(catalog), "--os-release", str(os_release), *NODE], 2),
        (["find", "--catalog", str(deep), "--os-release", str(os_release), *NODE], 2),
        (["find", "--config", str(config), "--catalog", str(tmp_path / "none"),
          "--os-release", str(os_release), *NODE], 2),
        (["find", "--catalog", str(tmp_path / "none"), "--os-release", "/dev/zero", *NODE], 2),
        (["find", "--catalog", str(tmp_path / "none"), "--batch", str(stream)], 2),
    ]
    for argv, expected in cases:
        code, out, err, mb = measured(argv)
        assert code == expected, (argv, err[-500:])
        assert mb < MAX_RSS_MB, (argv, mb)
    answers = [json.loads(line) for line in out.splitlines()]  # the batch: 3 answers, in order
    assert [a["line"] for a in answers] == [1, 2, 3] and "error" in answers[1]
