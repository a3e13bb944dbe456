"""ui.py: what reaches the terminal; external data is shown escaped, never obeyed."""

from __future__ import annotations

from pathlib import Path

import pytest
from catalogfiles import write_catalog
from commandline import NODE, cli

# --- what we print of external data --------------------------------------------------------

def test_terminal_control_in_external_data_is_shown_escaped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evil = tmp_path / "falco_\x1b]52;c;ZWNobw==\x07\x1b[2J\u202e.o"
    evil.write_bytes(b"not a probe")
    root = tmp_path / "catalog"
    write_catalog(root, "probes: []\n")
    code, out, err = cli(["verify", "--catalog", str(root), str(evil)], capsys)
    assert code == 1
    assert "\\x1b]52;c;ZWNobw==\\x07\\x1b[2J\\u202e.o" in out
    code, _, err = cli(["find", "--catalog", str(root), "--os-release",
                        str(tmp_path / "\x1b[2Jgone\r"), *NODE], capsys)
    assert code == 2
    for text in (out, err):
        assert not any(c in text for c in "\x1b\x07\r\u202e"), repr(text)
