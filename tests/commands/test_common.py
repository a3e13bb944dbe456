"""commands/common.py: option types refuse out-of-range values, never clamp them."""

from __future__ import annotations

import pytest

from builder.cli import main

# --- options: out of range is refused, never clamped or ignored -------------------------------

OPTION_CASES = [
    (["publish", "REPORT", "--fragment", "f", "--max-assets-per-release", "0"],
     "argument --max-assets-per-release: '0' is not an integer from 1 to 1000"),
    (["publish", "REPORT", "--fragment", "f", "--path", ""],
     "argument --path: an empty path is not a folder"),
    (["publish", "REPORT", "--fragment", "f", "--write-interval", "nan"],
     "argument --write-interval: 'nan' is not a number of seconds"),
    (["publish", "REPORT", "--fragment", "f", "--max-uploads", "-1"],
     "argument --max-uploads: '-1' is not an integer from 0 to"),
    (["mirror", ""], "argument DEST: an empty path is not a folder"),
    (["mirror", "dest", "--jobs", "0"], "argument --jobs: '0' is not an integer from 1 to 256"),
    (["build", "--out", "o", "--jobs", "100000"], "'100000' is not an integer from 1 to 256"),
    (["build", "--out", "o", "--timeout", "inf"], "'inf' is not a number of seconds"),
    (["plan", "--shards", "0"], "argument --shards: '0' is not an integer from 1 to 256"),
]


@pytest.mark.parametrize(("argv", "message"), OPTION_CASES,
                         ids=[" ".join(c[0][:1] + c[0][-2:]) for c in OPTION_CASES])
def test_out_of_range_options_are_refused(argv: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    assert excinfo.value.code == 2
    assert message in capsys.readouterr().err
