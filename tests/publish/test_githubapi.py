"""publish/stores/githubapi.py: the GitHub settings (token, repository, API URL) and what
GitHub's errors say, without the token. The retry loop is exercised through the store in
test_store_github.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from buildreports import specs, write_report
from fakegithub import FakeGitHub
from github import GithubException
from githubstore import TOKEN, publish_cli

from builder.core.errors import InputError
from builder.publish.stores.githubapi import (
    describe,
    github_settings,
    is_file_count,
    read_token,
)


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


def test_settings_come_from_flags_then_probes_yaml_then_the_environment() -> None:
    env = {"GITHUB_REPOSITORY": "env/repo", "GITHUB_API_URL": "https://ghe.example/api/v3/",
           "GITHUB_TOKEN": " ghp_x \n"}
    settings = github_settings(env, api_url=None, repository=None)
    assert (settings.api_url, settings.repository, settings.token) == (
        "https://ghe.example/api/v3", "env/repo", "ghp_x")
    settings = github_settings(env, api_url="http://127.0.0.1:9/api/v3", repository="flag/repo",
                               config_repository="yaml/repo")
    assert (settings.api_url, settings.repository) == ("http://127.0.0.1:9/api/v3", "flag/repo")
    assert github_settings(env, api_url=None, repository=None,
                           config_repository="yaml/repo").repository == "yaml/repo"
    assert github_settings({"GITHUB_TOKEN": "t"}, api_url=None,
                           repository="a/b").api_url == "https://api.github.com"


@pytest.mark.parametrize(("env", "repository", "message"), [
    ({"GITHUB_TOKEN": "t"}, "not-a-repo", "GitHub repository 'not-a-repo' is not owner/name"),
    ({"GITHUB_TOKEN": "t", "GITHUB_API_URL": "https://ghe.example/\u202e"}, "a/b",
     "is not an http(s) URL in printable ASCII"),
    ({"GITHUB_TOKEN": "two words"}, "a/b",
     "GITHUB_TOKEN: the token holds spaces, control or non-ASCII characters"),
    ({"GITHUB_TOKEN": "  "}, "a/b", "no GitHub token: GITHUB_TOKEN is not set"),
])
def test_bad_settings_are_refused_without_showing_the_token(env: dict[str, str],
                                                           repository: str,
                                                           message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)) as refused:
        github_settings(env, api_url=None, repository=repository)
    assert "two words" not in refused.value.message


def test_the_token_file_wins_over_the_environment(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("ghp_fromfile\n")
    assert read_token({"GITHUB_TOKEN": "ghp_env"}, token_file) == "ghp_fromfile"
    token_file.write_text("\n")
    with pytest.raises(InputError, match=f"{token_file}: the token file is empty"):
        read_token({"GITHUB_TOKEN": "ghp_env"}, token_file)


def test_what_github_says_is_one_line_without_the_token() -> None:
    error = GithubException(422, {"message": "Validation Failed", "errors": [
        {"resource": "ReleaseAsset", "code": "custom", "field": "file_count",
         "message": "file_count limited to 1000 assets"}]}, None)
    assert describe(error) == ("HTTP 422 Validation Failed; file_count limited to 1000 "
                               "assets")
    assert is_file_count(error) and not is_file_count(GithubException(422, {}, None))
    echoed = GithubException(400, {"message": "bad\nAuthorization: token ghp_secret"}, None)
    assert describe(echoed, "ghp_secret") == "HTTP 400 bad Authorization: token ***"
