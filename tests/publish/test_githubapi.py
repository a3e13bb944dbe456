"""publish/stores/githubapi.py: the GitHub settings (token, repository, API URL), as the
publish command reads them."""

from __future__ import annotations

from pathlib import Path

import pytest
from buildreports import specs, write_report
from fakegithub import FakeGitHub
from githubstore import TOKEN, publish_cli


@pytest.mark.parametrize(("env", "extra", "code", "message"), [
    ({"GITHUB_REPOSITORY": "acme/probes"}, (), 2, "no GitHub token"),
    ({"GITHUB_TOKEN": TOKEN}, (), 2, "no GitHub repository given"),
    ({"GITHUB_TOKEN": TOKEN}, ("--repository", "acme/missing"), 4, "HTTP 404"),
    ({"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": "acme/probes"},
     ("--api-url", "ftp://x"), 2, "is not an http(s) URL"),
    ({"GITHUB_REPOSITORY": "acme/probes"}, ("--token-file", "/nonexistent/token"), 2,
     "cannot read the token file"),
])
def test_settings_errors(fake: FakeGitHub, tmp_path: Path, env: dict[str, str],
                         extra: tuple[str, ...], code: int, message: str) -> None:
    write_report(tmp_path / "build", specs(1))
    result = publish_cli(fake, tmp_path, {"GITHUB_API_URL": fake.api_url, **env}, *extra)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
