"""commands/publish.py: `--deadline`, `--json` and the exit code of a conflict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from buildreports import COMMIT, Spec, specs, write_report
from commandline import cli
from publishing import fragment_records

from builder.cli import main
from builder.commands.publish import parse_deadline
from builder.core.errors import InputError


@pytest.mark.parametrize("deadline", ["nan", "inf", "-1", "0", "1e300"])
def test_a_deadline_is_never_silently_ignored(tmp_path: Path, deadline: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    write_report(tmp_path / "build", [Spec("6.1.0-1-amd64", target="debian")])
    code, _, err = cli(["publish", str(tmp_path / "build"), "--fragment",
                        str(tmp_path / "f.jsonl"), "--path", str(tmp_path / "store"),
                        "--deadline", deadline], capsys)
    assert code == 2
    assert f"error: --deadline {deadline}: must be a number of minutes from 0 to 10080" in err
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(("text", "expected"), [
    (None, None),
    ("30", 1_000_000.0 + 1800),
    ("0.5", 1_000_000.0 + 30),
    ("2025-01-31T04:00:00Z", 1738296000.0),
    ("2025-01-31T05:00:00+01:00", 1738296000.0),
    ("2025-01-31T04:00:00", 1738296000.0),
])
def test_parse_deadline(text: str | None, expected: float | None) -> None:
    assert parse_deadline(text, 1_000_000.0) == expected


@pytest.mark.parametrize("text", ["soon", "-5", "0"])
def test_parse_deadline_refuses(text: str) -> None:
    with pytest.raises(InputError):
        parse_deadline(text, 0.0)


# --- the command -----------------------------------------------------------------------------

def test_cli_publish_json_and_conflict_exit(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    write_report(tmp_path / "build", specs(3), failures=[Spec("4.4.0-1-generic")])
    store = tmp_path / "store"
    argv = ["publish", str(tmp_path / "build"), "--fragment", str(tmp_path / "f.jsonl"),
            "--store", "directory", "--path", str(store), "--base-url",
            "https://probes.example", "--json", "--commit", COMMIT]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["uploaded"] == 3 and summary["failures"] == 1 and summary["complete"]
    assert err.count("published  ") == 3 and "https://probes.example/6.0.1%2Bdriver/" in err

    # another build of the first probe with other bytes: exit 3, the others still recorded
    write_report(tmp_path / "build2", [*specs(1, payload="rebuilt"), *specs(2, start=10)])
    argv[1] = str(tmp_path / "build2")
    assert main(argv[:-3]) == 3
    err = capsys.readouterr().err
    assert "error: 1 conflict(s)" in err and "records sha256" in err  # the fragment knows it
    assert len(fragment_records(tmp_path / "f.jsonl")[0]) == 5
    argv[3] = str(tmp_path / "g.jsonl")  # a lost fragment: the store itself refuses
    assert main(argv[:-3]) == 3
    err = capsys.readouterr().err
    assert "already holds other bytes" in err
    assert len(fragment_records(tmp_path / "g.jsonl")[0]) == 2
