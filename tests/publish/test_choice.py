"""publish/stores/choice.py: which store a run talks to, from the command line and
probes.yaml."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from buildreports import specs, write_report
from publishing import fragment_records

from builder.cli import main


def test_cli_reads_store_settings_from_probes_yaml(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "probes.yaml"
    config.write_text("schema_version: 1\ndriver_versions: []\ntargets: []\n"
                      f"store: {{kind: directory, path: {tmp_path / 'configured'}}}\n")
    write_report(tmp_path / "build", specs(1))
    assert main(["publish", str(tmp_path / "build"), "--fragment", str(tmp_path / "f.jsonl"),
                 "--config", str(config)]) == 0
    assert len(list((tmp_path / "configured").rglob("*.o"))) >= 1
    assert "published  " in capsys.readouterr().out


def test_cli_environment_is_not_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    for name in ("GITHUB_SHA", "GITHUB_RUN_ID", "GITHUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    write_report(tmp_path / "build", specs(1))
    assert main(["publish", "build", "--fragment", "f.jsonl", "--path", "store"]) == 0
    (probe,), _ = fragment_records(tmp_path / "f.jsonl")
    assert probe.log == "" and probe.commit == ""
    assert os.path.isfile(tmp_path / "store" / "6.0.1+driver" / "x86_64" / probe.file)
