"""Tests of the fake GitHub server, driven by real PyGithub over HTTP on loopback."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import github
import pytest
import requests
from fakegithub import Call, FakeGitHub, Fault, github_asset_name, validate_tag_name
from github import Auth, Github, GithubException, GithubRetry

TOKEN = "secret-token"


class Clock:
    """A controllable clock for rate-limit tests."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN, owner="acme", repo="probes") as server:
        yield server


def client(fake: FakeGitHub, token: str | None = TOKEN, **kwargs: Any) -> Github:
    """A PyGithub client; no retries and no client-side throttling unless asked for."""
    kwargs.setdefault("retry", None)
    kwargs.setdefault("seconds_between_requests", None)
    kwargs.setdefault("seconds_between_writes", None)
    auth = Auth.Token(token) if token is not None else None
    return Github(base_url=fake.api_url, auth=auth, **kwargs)


def raw(
    url: str,
    method: str = "GET",
    token: str | None = TOKEN,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Plain urllib request (follows redirects); returns status, headers, body."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if token is not None:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def upload(release: Any, name: str, data: bytes, content_type: str = "application/x-elf") -> Any:
    return release.upload_asset_from_memory(io.BytesIO(data), len(data), name, content_type)


# --------------------------------------------------------------------------------------
# Releases
# --------------------------------------------------------------------------------------


def test_lifecycle_and_url_layout(fake: FakeGitHub) -> None:
    assert fake.api_url == f"http://{fake.host}/api/v3"
    gh = client(fake)
    repo = gh.get_repo("acme/probes")
    assert repo.full_name == "acme/probes"
    assert repo.url == f"{fake.api_url}/repos/acme/probes"

    release = repo.create_git_release(
        "5.15.0-1-amd64", "kernel 5.15", "probes", target_commitish="abc"
    )
    assert release.tag_name == "5.15.0-1-amd64"
    assert release.name == "kernel 5.15"
    assert release.body == "probes"
    assert release.target_commitish == "abc"
    assert release.draft is False and release.prerelease is False
    assert release.immutable is False
    assert release.published_at is not None
    assert release.author.login == "acme"
    assert release.url == f"{fake.api_url}/repos/acme/probes/releases/{release.id}"
    assert release.upload_url == (
        f"http://{fake.host}/api/uploads/repos/acme/probes/releases/{release.id}"
        "/assets{?name,label}"
    )
    assert release.html_url == f"http://{fake.host}/acme/probes/releases/tag/5.15.0-1-amd64"

    # lazily-built objects (url only) complete from the fake
    same = repo.get_release(release.id)
    assert same.tag_name == release.tag_name
    assert repo.get_latest_release().id == release.id
    assert fake.releases()[0]["id"] == release.id
    assert gh.get_user().login == "acme"
    assert fake.count("POST", r"/releases$") == 1
    assert isinstance(fake.calls[0], Call)


def test_list_releases_paginates_like_github(fake: FakeGitHub) -> None:
    repo = client(fake).get_repo("acme/probes")
    for i in range(250):
        repo.create_git_release(f"v{i}", f"v{i}", "")
    fake.clear_calls()

    releases = list(client(fake, per_page=100).get_repo("acme/probes").get_releases())
    assert [r.tag_name for r in releases] == [f"v{i}" for i in reversed(range(250))]
    pages = [c for c in fake.calls if c.path.endswith("/releases")]
    assert [c.query.get("page") for c in pages] == [None, "2", "3"]
    assert all(c.query["per_page"] == "100" for c in pages)

    status, headers, body = raw(f"{fake.api_url}/repos/acme/probes/releases?per_page=100&page=2")
    assert status == 200 and len(json.loads(body)) == 100
    base = f"http://{fake.host}/api/v3/repos/acme/probes/releases"
    assert headers["Link"] == (
        f'<{base}?per_page=100&page=1>; rel="prev", '
        f'<{base}?per_page=100&page=3>; rel="next", '
        f'<{base}?per_page=100&page=3>; rel="last", '
        f'<{base}?per_page=100&page=1>; rel="first"'
    )
    _, headers, body = raw(f"{fake.api_url}/repos/acme/probes/releases")
    assert len(json.loads(body)) == 30  # default per_page
    assert headers["Link"] == f'<{base}?page=2>; rel="next", <{base}?page=9>; rel="last"'
    _, headers, body = raw(f"{fake.api_url}/repos/acme/probes/releases?per_page=500&page=3")
    assert len(json.loads(body)) == 50  # per_page capped at 100
    assert 'rel="next"' not in headers["Link"]

    assert client(fake).get_repo("acme/probes").get_releases().totalCount == 250


def test_drafts_hidden_from_anonymous_and_not_found_by_tag(fake: FakeGitHub) -> None:
    repo = client(fake).get_repo("acme/probes")
    draft = repo.create_git_release("v1", "v1", "", draft=True)
    published = repo.create_git_release("v2", "v2", "")
    assert draft.draft is True and draft.published_at is None

    assert {r.id for r in repo.get_releases()} == {draft.id, published.id}
    anonymous = client(fake, token=None).get_repo("acme/probes")
    assert [r.id for r in anonymous.get_releases()] == [published.id]
    with pytest.raises(github.UnknownObjectException):
        anonymous.get_release(draft.id).tag_name  # noqa: B018 - triggers the lazy GET

    assert repo.get_release("v2").id == published.id
    with pytest.raises(github.UnknownObjectException) as excinfo:
        repo.get_release("v1")
    assert excinfo.value.status == 404
    assert repo.get_release(draft.id).draft is True


def test_tag_already_exists_and_drafts_may_share_tags(fake: FakeGitHub) -> None:
    repo = client(fake).get_repo("acme/probes")
    repo.create_git_release("v1", "v1", "")
    with pytest.raises(GithubException) as excinfo:
        repo.create_git_release("v1", "again", "")
    assert excinfo.value.status == 422
    assert excinfo.value.data["message"] == "Validation Failed"
    assert excinfo.value.data["errors"] == [
        {"resource": "Release", "code": "already_exists", "field": "tag_name"}
    ]
    # GitHub lets several drafts point at one tag, but only one of them can be published
    first = repo.create_git_release("v2", "v2", "", draft=True)
    second = repo.create_git_release("v2", "v2", "", draft=True)
    first.update_release("v2", "", draft=False)
    with pytest.raises(GithubException) as excinfo:
        second.update_release("v2", "", draft=False)
    assert excinfo.value.data["errors"][0]["code"] == "already_exists"


def test_forty_hex_tag_rejected(fake: FakeGitHub) -> None:
    repo = client(fake).get_repo("acme/probes")
    with pytest.raises(GithubException) as excinfo:
        repo.create_git_release("0123456789abcdef0123456789abcdef01234567", "sha", "")
    assert excinfo.value.status == 422
    error = excinfo.value.data["errors"][0]
    assert (error["resource"], error["code"], error["field"]) == ("Release", "invalid", "tag_name")
    repo.create_git_release("0123456789abcdef0123456789abcdef0123456", "39 hex is fine", "")


@pytest.mark.parametrize(
    "tag",
    ["a b", "a..b", "a~1", "a^", "a:b", "a?", "a*", "a[b", "a\\b", "-v1", "v1.", "v1.lock", "a@{b"],
)
def test_invalid_git_ref_tags_rejected(fake: FakeGitHub, tag: str) -> None:
    assert validate_tag_name(tag) is not None
    with pytest.raises(GithubException) as excinfo:
        client(fake).get_repo("acme/probes").create_git_release(tag, "x", "")
    assert excinfo.value.status == 422
    assert excinfo.value.data["errors"][0]["field"] == "tag_name"


@pytest.mark.parametrize("tag", ["v1", "5.15.0-1-amd64", "a/b", "v1+build", "x_y-z.1"])
def test_valid_tags(tag: str) -> None:
    assert validate_tag_name(tag) is None


def test_update_release_without_draft_argument_publishes(fake: FakeGitHub) -> None:
    """PyGithub's update_release() always sends draft (default False): it publishes drafts."""
    repo = client(fake).get_repo("acme/probes")
    draft = repo.create_git_release("v1", "v1", "", draft=True, prerelease=True)
    updated = draft.update_release("new name", "new body")
    assert updated.draft is False and updated.prerelease is False
    assert updated.name == "new name" and updated.body == "new body"
    assert updated.published_at is not None
    renamed = updated.update_release("n", "b", tag_name="v2")
    assert renamed.tag_name == "v2"
    assert repo.get_release("v2").id == draft.id


def test_delete_release(fake: FakeGitHub) -> None:
    repo = client(fake).get_repo("acme/probes")
    release = repo.create_git_release("v1", "v1", "")
    asset = upload(release, "a.o", b"data")
    release.delete_release()
    assert fake.releases() == []
    assert raw(asset.browser_download_url, token=None)[0] == 404
    with pytest.raises(github.UnknownObjectException):
        repo.get_release(release.id).tag_name  # noqa: B018
    repo.create_git_release("v1", "v1 again", "")  # the tag is free again


# --------------------------------------------------------------------------------------
# Assets
# --------------------------------------------------------------------------------------


def test_upload_and_download(fake: FakeGitHub, tmp_path: Any) -> None:
    release = client(fake).get_repo("acme/probes").create_git_release("v1", "v1", "")
    data = bytes(range(256)) * 1000
    path = tmp_path / "falco_ubuntu_5.15.0-1-amd64.o"
    path.write_bytes(data)
    asset = release.upload_asset(str(path), label="probe", content_type="application/x-elf")

    assert asset.name == "falco_ubuntu_5.15.0-1-amd64.o"
    assert asset.label == "probe"
    assert asset.state == "uploaded"
    assert asset.size == len(data)
    assert asset.content_type == "application/x-elf"
    assert asset.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert asset.uploader.login == "acme"
    assert asset.url == f"{fake.api_url}/repos/acme/probes/releases/assets/{asset.id}"
    assert asset.browser_download_url == (
        f"http://{fake.host}/acme/probes/releases/download/v1/falco_ubuntu_5.15.0-1-amd64.o"
    )
    assert fake.asset_bytes("acme/probes", release.id, asset.name) == data

    # browser download: anonymous, 302 to /_objects/<id>, followed by urllib
    status, headers, body = raw(asset.browser_download_url, token=None)
    assert (status, body) == (200, data)
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Length"] == str(len(data))
    assert fake.calls[-2].status == 302
    assert fake.calls[-1].path == f"/_objects/{asset.id}"

    # HEAD gives the length without a body
    conn = http.client.HTTPConnection(fake.host, timeout=10)
    conn.request("HEAD", f"/_objects/{asset.id}")
    head = conn.getresponse()
    assert head.status == 200 and head.getheader("Content-Length") == str(len(data))
    assert head.read() == b""
    conn.close()

    # API download (Accept: application/octet-stream) through PyGithub
    _, _, chunks = asset.download_asset(chunk_size=65536)
    assert b"".join(chunks) == data
    assert release.get_assets()[0].download_count == 2

    listed = client(fake, token=None).get_repo("acme/probes").get_release(release.id).assets
    assert [a.id for a in listed] == [asset.id]


def test_range_download_and_truncated_transfer(fake: FakeGitHub) -> None:
    release = client(fake).get_repo("acme/probes").create_git_release("v1", "v1", "")
    data = b"0123456789" * 100
    asset = upload(release, "probe.o", data)

    status, headers, body = raw(asset.browser_download_url, headers={"Range": "bytes=990-"})
    assert (status, body) == (206, data[990:])
    assert headers["Content-Range"] == "bytes 990-999/1000"
    assert headers["Content-Length"] == "10"
    status, _, body = raw(asset.browser_download_url, headers={"Range": "bytes=10-19"})
    assert (status, body) == (206, data[10:20])
    status, _, body = raw(asset.browser_download_url, headers={"Range": "bytes=-5"})
    assert (status, body) == (206, data[-5:])
    status, headers, _ = raw(asset.browser_download_url, headers={"Range": "bytes=1000-"})
    assert status == 416 and headers["Content-Range"] == "bytes */1000"

    # a connection cut mid-body, then a resume from where it stopped
    fake.inject(Fault("GET", r"^/_objects/", truncate_body_at=300))
    request = urllib.request.Request(asset.browser_download_url)
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Length"] == "1000"
        with pytest.raises(http.client.IncompleteRead) as excinfo:
            response.read()
    got = excinfo.value.partial
    assert got == data[:300]
    status, _, rest = raw(asset.browser_download_url, headers={"Range": f"bytes={len(got)}-"})
    assert status == 206 and got + rest == data


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("a~b.o", "a.b.o"),
        ("5.15.65+", "5.15.65"),
        ("a b", "a.b"),
        (".x.", "x"),
        ("a+~b", "a.b"),
        ("falco_5.15.0-1-amd64_1.o", "falco_5.15.0-1-amd64_1.o"),
        ("a/b\\c", "a.b.c"),
        ("café.o", "cafe.o"),
        ("日本.o", "o"),
        # observed on github.com (actions/upload-release-asset#57)
        (
            "app.prod-v1.3.0-(15-5)-6064eac-release.apk",
            "app.prod-v1.3.0-.15-5.-6064eac-release.apk",
        ),
    ],
)
def test_github_asset_name(given: str, stored: str) -> None:
    assert github_asset_name(given) == stored


def test_upload_renames_like_github(fake: FakeGitHub) -> None:
    release = client(fake).get_repo("acme/probes").create_git_release("v1", "v1", "")
    asset = upload(release, "falco_5.15.65+ x~y.o", b"x")
    assert asset.name == "falco_5.15.65.x.y.o"
    assert asset.browser_download_url.endswith("/releases/download/v1/falco_5.15.65.x.y.o")
    with pytest.raises(GithubException) as excinfo:
        upload(release, "falco_5.15.65  x+y.o", b"x")  # same name after renaming
    assert excinfo.value.data["errors"] == [
        {"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}
    ]


def test_duplicate_asset_rejected(fake: FakeGitHub) -> None:
    release = client(fake).get_repo("acme/probes").create_git_release("v1", "v1", "")
    upload(release, "probe.o", b"one")
    with pytest.raises(GithubException) as excinfo:
        upload(release, "probe.o", b"two")
    assert excinfo.value.status == 422
    assert excinfo.value.data["message"] == "Validation Failed"
    assert excinfo.value.data["errors"][0]["code"] == "already_exists"
    assert fake.asset_bytes(None, release.id, "probe.o") == b"one"
    # the same name is fine in another release
    other = client(fake).get_repo("acme/probes").create_git_release("v2", "v2", "")
    upload(other, "probe.o", b"two")


def test_asset_cap_lowered_counts_starters() -> None:
    with FakeGitHub(token=TOKEN, max_assets_per_release=3) as fake:
        release = client(fake).get_repo("acme/probes").create_git_release("v1", "v1", "")
        upload(release, "a.o", b"a")
        upload(release, "b.o", b"b")
        fake.inject(Fault("POST", r"/assets$", leave_starter=True))
        with pytest.raises(GithubException):
            upload(release, "c.o", b"c")
        with pytest.raises(GithubException) as excinfo:
            upload(release, "d.o", b"d")
        assert excinfo.value.status == 422
        assert excinfo.value.data["errors"] == [{
            "resource": "ReleaseAsset", "code": "custom", "field": "file_count",
            "message": "file_count limited to 3 assets"}]


def test_asset_cap_at_real_thousand(fake: FakeGitHub) -> None:
    release = client(fake).get_repo("acme/probes").create_git_release("v1", "v1", "")
    started = time.monotonic()
    for i in range(1000):
        upload(release, f"probe_{i}.o", b"%d" % i)
    assert time.monotonic() - started < 60
    with pytest.raises(GithubException) as excinfo:
        upload(release, "probe_1000.o", b"x")
    assert excinfo.value.status == 422
    assert excinfo.value.data["errors"] == [{  # GitHub's answer, word for word
        "resource": "ReleaseAsset", "code": "custom", "field": "file_count",
        "message": "file_count limited to 1000 assets"}]
    assets = list(
        client(fake, per_page=100).get_repo("acme/probes").get_release(release.id).get_assets()
    )
    assert len(assets) == 1000
    assert [a.name for a in assets[:2]] == ["probe_0.o", "probe_1.o"]  # oldest first
    # deleting one makes room again
    assets[0].delete_asset()
    upload(release, "probe_1000.o", b"x")


def test_starter_asset_left_by_failed_upload(fake: FakeGitHub) -> None:
    release = client(fake).get_repo("acme/probes").create_git_release("v1", "v1", "")
    fake.inject(Fault("POST", r"/releases/\d+/assets$", leave_starter=True))
    with pytest.raises(GithubException) as excinfo:
        upload(release, "probe.o", b"payload")
    assert excinfo.value.status == 502

    (starter,) = release.get_assets()
    assert starter.state == "starter"
    assert starter.size == 0 and starter.digest is None
    assert raw(starter.browser_download_url, token=None)[0] == 404
    with pytest.raises(GithubException) as excinfo:
        upload(release, "probe.o", b"payload")
    assert excinfo.value.data["errors"][0]["code"] == "already_exists"

    assert starter.delete_asset() is True
    asset = upload(release, "probe.o", b"payload")
    assert asset.state == "uploaded"
    status, _, body = raw(asset.browser_download_url, token=None)
    assert (status, body) == (200, b"payload")


def test_update_and_delete_asset(fake: FakeGitHub) -> None:
    release = client(fake).get_repo("acme/probes").create_git_release("v1", "v1", "")
    first = upload(release, "a.o", b"a")
    upload(release, "b.o", b"b")
    renamed = first.update_asset("c~d.o", label="lbl")
    assert (renamed.name, renamed.label) == ("c.d.o", "lbl")
    with pytest.raises(GithubException) as excinfo:
        renamed.update_asset("b.o")
    assert excinfo.value.data["errors"][0]["code"] == "already_exists"
    assert renamed.delete_asset()
    assert [a.name for a in release.get_assets()] == ["b.o"]
    with pytest.raises(github.UnknownObjectException):
        renamed.delete_asset()


def test_asset_pagination(fake: FakeGitHub) -> None:
    release = client(fake).get_repo("acme/probes").create_git_release("v1", "v1", "")
    for i in range(35):
        upload(release, f"{i}.o", b"x")
    fake.clear_calls()
    assert len(list(release.get_assets())) == 35
    assert fake.count("GET", r"/releases/\d+/assets$") == 2


def test_oversized_upload_rejected_without_reading_body() -> None:
    with FakeGitHub(token=TOKEN, max_asset_bytes=1000) as fake:
        release = client(fake).get_repo("acme/probes").create_git_release("v1", "v1", "")
        upload(release, "small.o", b"x" * 999)
        with pytest.raises(GithubException) as excinfo:
            upload(release, "big.o", b"x" * 100_000)
        assert excinfo.value.status == 422
        assert excinfo.value.data["errors"][0]["field"] == "size"

    # the real limit: announce 3 GiB but never send it
    with FakeGitHub(token=TOKEN) as fake:
        release = client(fake).get_repo("acme/probes").create_git_release("v1", "v1", "")
        conn = http.client.HTTPConnection(fake.host, timeout=10)
        conn.putrequest(
            "POST", f"/api/uploads/repos/acme/probes/releases/{release.id}/assets?name=x"
        )
        conn.putheader("Authorization", f"token {TOKEN}")
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Length", str(3 * 1024**3))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 422
        assert json.loads(response.read())["errors"][0]["field"] == "size"
        conn.close()


def test_upload_requires_content_length(fake: FakeGitHub) -> None:
    release = client(fake).get_repo("acme/probes").create_git_release("v1", "v1", "")
    conn = http.client.HTTPConnection(fake.host, timeout=10)
    url = f"/api/uploads/repos/acme/probes/releases/{release.id}/assets?name=x.o"
    headers = {"Authorization": f"token {TOKEN}", "Content-Type": "application/octet-stream"}
    conn.request("POST", url, body=iter([b"abc"]), headers=headers, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 411
    response.read()
    conn.close()


# --------------------------------------------------------------------------------------
# Drafts, publishing, immutable releases
# --------------------------------------------------------------------------------------


def test_publishing_changes_download_urls(fake: FakeGitHub) -> None:
    repo = client(fake).get_repo("acme/probes")
    draft = repo.create_git_release("v1", "v1", "", draft=True)
    asset = upload(draft, "probe.o", b"bytes")
    draft_url = asset.browser_download_url
    assert draft_url.startswith(f"http://{fake.host}/acme/probes/releases/download/untagged-")
    assert draft.html_url.startswith(f"http://{fake.host}/acme/probes/releases/tag/untagged-")

    assert raw(draft_url, token=None)[0] == 404  # drafts are private
    assert raw(draft_url)[:3:2] == (200, b"bytes")

    published = draft.update_release("v1", "", draft=False)
    assert published.draft is False and published.published_at is not None
    new_url = published.assets[0].browser_download_url
    assert new_url == f"http://{fake.host}/acme/probes/releases/download/v1/probe.o"
    assert raw(draft_url)[0] == 404  # the untagged URL is gone
    assert raw(new_url, token=None)[:3:2] == (200, b"bytes")

    back = published.update_release("v1", "", draft=True)
    assert back.draft is True
    assert "untagged-" in back.assets[0].browser_download_url
    assert back.assets[0].browser_download_url != draft_url
    assert raw(new_url, token=None)[0] == 404


def test_immutable_release(fake: FakeGitHub) -> None:
    fake.add_repo("acme/locked", immutable_releases=True)
    repo = client(fake).get_repo("acme/locked")
    draft = repo.create_git_release("v1", "v1", "", draft=True)
    assert draft.immutable is False
    kept = upload(draft, "probe.o", b"bytes")  # uploads are fine while a draft
    published = draft.update_release("v1", "", draft=False)
    assert published.immutable is True

    with pytest.raises(GithubException) as excinfo:
        upload(published, "late.o", b"x")
    assert excinfo.value.status == 422
    assert excinfo.value.data["message"] == "Cannot upload assets to an immutable release."
    with pytest.raises(GithubException) as excinfo:
        repo.get_release(published.id).assets[0].delete_asset()
    assert excinfo.value.status == 422
    assert "immutable" in excinfo.value.data["message"]
    with pytest.raises(GithubException):
        published.update_release("v1", "", draft=True)
    assert fake.asset_bytes("acme/locked", published.id, kept.name) == b"bytes"

    # the tag of a deleted immutable release cannot be used again
    published.delete_release()
    with pytest.raises(GithubException) as excinfo:
        repo.create_git_release("v1", "v1", "")
    assert excinfo.value.data["errors"][0]["message"] == "tag_name was used by an immutable release"

    # the main repo is unaffected
    mutable = client(fake).get_repo("acme/probes").create_git_release("v1", "v1", "")
    assert mutable.immutable is False
    upload(mutable, "late.o", b"x")


# --------------------------------------------------------------------------------------
# Auth and rate limits
# --------------------------------------------------------------------------------------


def test_bad_token_and_anonymous_access(fake: FakeGitHub) -> None:
    with pytest.raises(github.BadCredentialsException) as excinfo:
        client(fake, token="wrong").get_repo("acme/probes")
    assert excinfo.value.status == 401
    assert excinfo.value.data["message"] == "Bad credentials"

    anonymous = client(fake, token=None).get_repo("acme/probes")
    assert anonymous.full_name == "acme/probes"
    with pytest.raises(GithubException) as write_error:
        anonymous.create_git_release("v1", "v1", "")
    assert write_error.value.status == 401
    assert fake.releases() == []

    for header in (f"token {TOKEN}", f"Bearer {TOKEN}"):
        status, _, body = raw(f"{fake.api_url}/user", token=None, headers={"Authorization": header})
        assert status == 200 and json.loads(body)["login"] == "acme"
    assert raw(f"{fake.api_url}/repos/acme/nope")[0] == 404


def test_primary_rate_limit() -> None:
    clock = Clock()
    with FakeGitHub(token=TOKEN, rate_limit=3, clock=clock) as fake:
        gh = client(fake)
        status, headers, _ = raw(f"{fake.api_url}/repos/acme/probes")
        assert status == 200
        assert headers["X-RateLimit-Limit"] == "3"
        assert headers["X-RateLimit-Remaining"] == "2"
        assert headers["X-RateLimit-Used"] == "1"
        assert headers["X-RateLimit-Resource"] == "core"
        assert headers["X-RateLimit-Reset"] == str(int(clock.now) + 3600)

        repo = gh.get_repo("acme/probes")
        assert gh.rate_limiting == (1, 3)
        assert gh.get_rate_limit().resources.core.remaining == 1  # /rate_limit is free
        repo.get_releases().totalCount  # noqa: B018 - third request
        with pytest.raises(github.RateLimitExceededException) as excinfo:
            gh.get_repo("acme/probes")
        assert excinfo.value.status == 403
        assert excinfo.value.data["message"].startswith("API rate limit exceeded")
        assert excinfo.value.headers is not None
        assert excinfo.value.headers["x-ratelimit-remaining"] == "0"

        clock.now += 3600
        assert gh.get_repo("acme/probes").full_name == "acme/probes"


def test_secondary_write_limit() -> None:
    clock = Clock()
    with FakeGitHub(token=TOKEN, write_limit_per_minute=2, clock=clock) as fake:
        repo = client(fake).get_repo("acme/probes")
        repo.create_git_release("v1", "v1", "")
        clock.now += 20
        repo.create_git_release("v2", "v2", "")
        with pytest.raises(github.RateLimitExceededException) as excinfo:
            repo.create_git_release("v3", "v3", "")
        assert excinfo.value.status == 403
        assert excinfo.value.headers is not None
        assert excinfo.value.headers["retry-after"] == "40"
        assert "secondary rate limit" in excinfo.value.data["message"]
        repo.get_releases().totalCount  # noqa: B018 - reads are not limited
        clock.now += 41
        repo.create_git_release("v3", "v3", "")
        assert [r["tag_name"] for r in fake.releases()] == ["v3", "v2", "v1"]


# --------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------


def test_server_error_then_success(fake: FakeGitHub) -> None:
    repo = client(fake).get_repo("acme/probes")
    fake.inject(Fault("POST", r"/repos/acme/probes/releases$", status=502))
    with pytest.raises(GithubException) as excinfo:
        repo.create_git_release("v1", "v1", "")
    assert excinfo.value.status == 502
    assert "message" in excinfo.value.data
    assert fake.releases() == []
    repo.create_git_release("v1", "v1", "")
    assert [c.status for c in fake.calls if c.method == "POST"] == [502, 201]
    assert fake.pending_faults() == 0


def test_github_retry_absorbs_server_errors(fake: FakeGitHub) -> None:
    retrying = client(fake, retry=GithubRetry(total=3, backoff_factor=0))
    release = retrying.get_repo("acme/probes").create_git_release("v1", "v1", "")
    fake.inject(Fault("*", r"/assets$", status=503, times=2))
    asset = upload(release, "probe.o", b"body")  # the retried POST re-sends the body
    assert fake.asset_bytes(None, release.id, asset.name) == b"body"
    assert [c.status for c in fake.calls if c.path.endswith("/assets")] == [503, 503, 201]

    # once retries run out, requests raises RetryError, not a GithubException
    fake.inject(Fault("GET", r"/releases/\d+$", status=500, times=10))
    with pytest.raises(requests.exceptions.RetryError):
        retrying.get_repo("acme/probes").get_release(release.id).tag_name  # noqa: B018
    fake.clear_faults()


def test_secondary_rate_limit_fault_with_retry_after(fake: FakeGitHub) -> None:
    repo = client(fake).get_repo("acme/probes")
    fake.inject(Fault("POST", r"/releases$", status=403, retry_after=1))
    with pytest.raises(github.RateLimitExceededException) as excinfo:
        repo.create_git_release("v1", "v1", "")
    assert excinfo.value.headers is not None
    assert excinfo.value.headers["retry-after"] == "1"
    assert "x-ratelimit-remaining" in excinfo.value.headers

    # the default GithubRetry sleeps Retry-After seconds, then repeats the request
    default_retry = client(fake, retry=GithubRetry()).get_repo("acme/probes")
    fake.inject(Fault("POST", r"/releases$", status=403, retry_after=1))
    started = time.monotonic()
    default_retry.create_git_release("v1", "v1", "")
    assert time.monotonic() - started >= 1
    assert [c.status for c in fake.calls if c.method == "POST"] == [403, 403, 201]

    # 429 is not a RateLimitExceededException for PyGithub, but urllib3 retries it
    fake.inject(Fault("GET", r"/releases/tags/", status=429, retry_after=1))
    with pytest.raises(GithubException) as too_many:
        repo.get_release("v1")
    assert too_many.value.status == 429
    assert not isinstance(too_many.value, github.RateLimitExceededException)
    fake.inject(Fault("GET", r"/releases/tags/", status=429, retry_after=1))
    assert default_retry.get_release("v1").tag_name == "v1"


def test_primary_rate_limit_fault(fake: FakeGitHub) -> None:
    repo = client(fake).get_repo("acme/probes")
    fake.inject(Fault("GET", r"/releases$", status=403, rate_limit_reset_in=30))
    before = int(time.time())
    with pytest.raises(github.RateLimitExceededException) as excinfo:
        repo.get_releases().totalCount  # noqa: B018
    headers = excinfo.value.headers
    assert headers is not None
    assert headers["x-ratelimit-remaining"] == "0"
    assert before + 30 <= int(headers["x-ratelimit-reset"]) <= int(time.time()) + 30
    assert excinfo.value.data["message"].startswith("API rate limit exceeded")

    capped = client(fake, retry=GithubRetry(max_rate_limit_wait=5)).get_repo("acme/probes")
    fake.inject(Fault("GET", r"/releases$", status=403, rate_limit_reset_in=30))
    with pytest.raises(github.RateLimitExceededExceedsMaxWait):
        capped.get_releases().totalCount  # noqa: B018


def test_dropped_connection(fake: FakeGitHub) -> None:
    release = client(fake).get_repo("acme/probes").create_git_release("v1", "v1", "")
    fake.inject(Fault("POST", r"/assets$", drop_connection=True))
    with pytest.raises(requests.exceptions.ConnectionError):
        upload(release, "probe.o", b"body")
    assert fake.calls[-1].status == 0
    assert release.get_assets().totalCount == 0
    upload(release, "probe.o", b"body")

    # a starter asset left behind by an upload whose connection died
    fake.inject(Fault("POST", r"/assets$", drop_connection=True, leave_starter=True))
    with pytest.raises(requests.exceptions.ConnectionError):
        upload(release, "other.o", b"body")
    assert {a.name: a.state for a in release.get_assets()} == {
        "probe.o": "uploaded",
        "other.o": "starter",
    }


def test_fault_body_and_times(fake: FakeGitHub) -> None:
    fake.inject(Fault("GET", r"^/api/v3/user$", status=500, times=2, body={"message": "boom"}))
    gh = client(fake)
    for _ in range(2):
        with pytest.raises(GithubException) as excinfo:
            gh.get_user().login  # noqa: B018
        assert excinfo.value.status == 500 and excinfo.value.data == {"message": "boom"}
    assert gh.get_user().login == "acme"
    assert fake.count("GET", r"/user$") == 3


# --------------------------------------------------------------------------------------
# Every URL points back at the fake
# --------------------------------------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_every_url_uses_the_fake_host(fake: FakeGitHub) -> None:
    repo = client(fake).get_repo("acme/probes")
    draft = repo.create_git_release("draft", "d", "", draft=True)
    upload(draft, "d.o", b"d")
    for i in range(3):
        upload(repo.create_git_release(f"v{i}", f"v{i}", ""), "p.o", b"p")
    published = repo.get_release("v0")

    api = f"{fake.api_url}/repos/acme/probes"
    urls = [
        f"{fake.api_url}/repos/acme/probes",
        f"{api}/releases?per_page=1",
        f"{api}/releases?per_page=1&page=2",
        f"{api}/releases/{draft.id}",
        f"{api}/releases/{draft.id}/assets",
        f"{api}/releases/tags/v0",
        f"{api}/releases/latest",
        f"{api}/releases/assets/{published.assets[0].id}",
        f"{fake.api_url}/user",
        f"{fake.api_url}/users/acme",
        f"{fake.api_url}/rate_limit",
    ]
    seen_urls = 0
    for url in urls:
        status, headers, body = raw(url)
        assert status == 200, url
        for text in _strings(json.loads(body)):
            if "://" in text:
                assert text.startswith(f"http://{fake.host}/"), (url, text)
                seen_urls += 1
        for part in headers.get("Link", "").split(","):
            if part:
                assert part.strip().startswith(f"<http://{fake.host}/"), part

    status, _, body = raw(
        f"{fake.uploads_url}/repos/acme/probes/releases/{draft.id}/assets?name=e.o",
        method="POST",
        data=b"e",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert status == 201
    assert all(
        t.startswith(f"http://{fake.host}/") for t in _strings(json.loads(body)) if "://" in t
    )

    conn = http.client.HTTPConnection(fake.host, timeout=10)
    conn.request("GET", "/acme/probes/releases/download/v0/p.o")
    redirect = conn.getresponse()
    redirect.read()
    assert redirect.status == 302
    assert redirect.getheader("Location", "").startswith(f"http://{fake.host}/_objects/")
    conn.request(
        "GET",
        f"/api/v3/repos/acme/probes/releases/assets/{published.assets[0].id}",
        headers={"Accept": "application/octet-stream"},
    )
    redirect = conn.getresponse()
    redirect.read()
    assert redirect.status == 302
    assert redirect.getheader("Location", "").startswith(f"http://{fake.host}/api/")
    conn.close()
    assert seen_urls > 50


# --------------------------------------------------------------------------------------
# Inspection helpers, seeding, concurrency, lifecycle
# --------------------------------------------------------------------------------------


def test_seeding_and_inspection_helpers(fake: FakeGitHub) -> None:
    seeded = fake.add_release("v9", assets={"a+.o": b"A"}, draft=True)
    # the brief's rule: a run of other characters becomes one "."; existing dots stay
    assert seeded["draft"] is True and seeded["assets"][0]["name"] == "a..o"
    assert fake.asset_bytes(None, seeded["id"], "a..o") == b"A"
    with pytest.raises(KeyError):
        fake.asset_bytes(None, seeded["id"], "missing.o")
    release = client(fake).get_repo("acme/probes").get_release(seeded["id"])
    assert release.assets[0].digest == "sha256:" + hashlib.sha256(b"A").hexdigest()
    fake.add_repo("other/repo")
    assert fake.releases("other/repo") == []
    fake.add_token("second-token", "robot")
    assert client(fake, token="second-token").get_user().login == "robot"


def test_concurrent_uploads(fake: FakeGitHub) -> None:
    release_id = client(fake).get_repo("acme/probes").create_git_release("v1", "v1", "").id
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            release = client(fake).get_repo("acme/probes").get_release(release_id)
            for i in range(25):
                upload(release, f"w{n}_{i}.o", b"%d-%d" % (n, i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(fake.releases()[0]["assets"]) == 200
    assert fake.count("POST", r"/assets$") == 200
    assert fake.asset_bytes(None, release_id, "w7_24.o") == b"7-24"


def test_stop_closes_keepalive_connections() -> None:
    fake = FakeGitHub(token=TOKEN).start()
    gh = client(fake, timeout=5)
    assert gh.get_repo("acme/probes").full_name == "acme/probes"
    fake.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        gh.get_repo("acme/probes")
    fake.stop()  # idempotent
    with pytest.raises(RuntimeError):
        FakeGitHub().api_url  # noqa: B018 - never started


def test_downloads_are_not_api_calls() -> None:
    with FakeGitHub(token=TOKEN, rate_limit=3) as fake:
        fake.add_release("v1", assets={"p.o": b"probe"})
        url = f"{fake.web_url}/acme/probes/releases/download/v1/p.o"
        for _ in range(5):
            status, headers, body = raw(url, token=None)
            assert (status, body) == (200, b"probe")
            assert "X-RateLimit-Remaining" not in headers
            assert headers["ETag"] == f'"{hashlib.sha256(b"probe").hexdigest()}"'
        status, headers, _ = raw(f"{fake.api_url}/repos/acme/probes", token=None, method="HEAD")
        assert status == 200 and headers["X-RateLimit-Remaining"] == "2"
        assert fake.calls[-1].method == "HEAD"
        assert fake.releases()[0]["assets"][0]["download_count"] == 5
