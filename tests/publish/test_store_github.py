"""The GitHub Releases store against the fake GitHub, through real PyGithub over HTTP:
names, shards, idempotence, retries, immutable releases, tokens, 2,500 probes, compile
logs and bundles in the probes' release, and a release that fills underneath us."""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any

import github
import pytest
from attestations import bundle_for
from buildreports import Spec, build_with_logs, specs, write_report
from fakegithub import FakeGitHub, Fault
from githubstore import FAMILY, TOKEN, Sleeps, assets_by_name, make_store, publish_cli
from loopback import get
from publishing import artifacts, publish_all, run

from builder.consumers.audit import audit
from builder.core.catalog import load_catalog, merge_into
from builder.core.errors import InputError, StoreError
from builder.core.records import check_tag
from builder.publish.stage import FragmentFile
from builder.publish.stores import Budget, Placed
from builder.publish.stores import github as ghstore
from builder.publish.stores.assetnames import asset_name, marker_line, release_tag


def seed_family_release(fake: FakeGitHub, number: int, assets: dict[str, bytes],
                        family: tuple[str, str, str, str] = FAMILY, body: str | None = None,
                        **kwargs: Any) -> dict[str, Any]:
    return fake.add_release(release_tag(family, number), body=body or marker_line(family),
                            assets=assets, **kwargs)


def test_forty_hex_tags_are_refused_before_any_request(fake: FakeGitHub, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    hex40 = "0123456789abcdef0123456789abcdef01234567"
    assert "40-hex" in (check_tag(hex40) or "")
    monkeypatch.setattr(ghstore, "release_tag", lambda family, number: hex40)
    items = artifacts(tmp_path, specs(1))
    with pytest.raises(InputError, match="GitHub rejects 40-hex tags"):
        make_store(fake).publish(items[0], lambda a, p: None)
    assert fake.count("POST") == 0


# --- publishing ------------------------------------------------------------------------------

def test_shards_urls_labels_and_api_calls(fake: FakeGitHub, tmp_path: Path) -> None:
    items = artifacts(tmp_path, specs(25))
    summary = run(make_store(fake, cap=10), items, tmp_path / "f.jsonl")
    assert (summary.uploaded, summary.left) == (25, 0)
    releases = {r["tag_name"]: r for r in fake.releases()}
    assert sorted((t, len(r["assets"])) for t, r in releases.items()) == [
        ("probes-6.0.1-driver-x86_64-ubuntu-generic-001", 10),
        ("probes-6.0.1-driver-x86_64-ubuntu-generic-002", 10),
        ("probes-6.0.1-driver-x86_64-ubuntu-generic-003", 5)]
    first = releases["probes-6.0.1-driver-x86_64-ubuntu-generic-001"]
    assert first["name"] == "Falco drivers 6.0.1+driver ubuntu-generic x86_64 (part 1)"
    assert "Loaded by Falco 0.36.0, 0.36.1, 0.36.2." in first["body"]
    assert "https://site.example/" in first["body"]
    assert marker_line(FAMILY) in first["body"]
    # one request per write, the repository and the release list once
    assert fake.count() == 1 + 1 + 3 + 25
    assert fake.count("POST", r"/assets$") == 25

    with FragmentFile(tmp_path / "f.jsonl") as fragment:
        recorded = fragment.probes
    assert len(recorded) == 25
    labels = {a["label"]: a for same_name in assets_by_name(fake).values() for a in same_name}
    for item in items:
        probe = recorded[item.probe.key]
        asset = labels[item.file]  # the label is the real file name
        assert asset["name"] == asset_name(item.file)
        assert probe.url == asset["browser_download_url"] and probe.release == asset["tag"]
        assert probe.sha256 == asset["digest"].removeprefix("sha256:") == item.probe.sha256

    fake.clear_calls()  # a rerun with the same fragment asks GitHub nothing
    assert run(make_store(fake, cap=10), items, tmp_path / "f.jsonl").skipped == 25
    assert fake.count() == 0
    # a lost fragment: list releases once and each release's assets once, upload nothing
    summary = run(make_store(fake, cap=10), items, tmp_path / "g.jsonl")
    assert (summary.present, summary.uploaded) == (25, 0)
    assert fake.count() == 1 + 1 + 3 and fake.count("POST") == 0


def test_asset_already_there_with_same_digest_is_recorded(fake: FakeGitHub, tmp_path: Path
                                                         ) -> None:
    items = artifacts(tmp_path, specs(2))
    seed_family_release(fake, 1, {asset_name(items[0].file): items[0].path.read_bytes()})
    summary = run(make_store(fake), items, tmp_path / "f.jsonl")
    assert (summary.present, summary.uploaded) == (1, 1)
    assert fake.count("POST", r"/assets$") == 1 and fake.count("POST", r"/releases$") == 0
    assert all(len(v) == 1 for v in assets_by_name(fake).values())


def test_asset_with_other_digest_is_a_conflict(fake: FakeGitHub, tmp_path: Path) -> None:
    items = artifacts(tmp_path, specs(2))
    seed_family_release(fake, 1, {asset_name(items[0].file): b"other bytes"})
    summary = run(make_store(fake), items, tmp_path / "f.jsonl")
    assert summary.uploaded == 1 and len(summary.conflicts) == 1
    assert "already has asset" in summary.conflicts[0]
    assert fake.count("DELETE") == 0


def test_starter_asset_is_deleted_and_the_upload_retried(fake: FakeGitHub, tmp_path: Path
                                                         ) -> None:
    items = artifacts(tmp_path, specs(3))
    fake.inject(Fault("POST", r"/assets$", status=502, leave_starter=True))
    sleeps = Sleeps()
    summary = run(make_store(fake, sleep=sleeps), items, tmp_path / "f.jsonl")
    assert (summary.uploaded, summary.left) == (3, 0)
    assert fake.count("DELETE", r"/assets/\d+$") == 1
    assets = assets_by_name(fake)
    assert len(assets) == 3 and all(a[0]["state"] == "uploaded" for a in assets.values())
    assert sleeps == [0.5]


def test_starter_left_by_an_earlier_run_is_replaced(fake: FakeGitHub, tmp_path: Path) -> None:
    items = artifacts(tmp_path, specs(2))
    release = seed_family_release(fake, 1, {})
    gh = github.Github(base_url=fake.api_url, auth=github.Auth.Token(TOKEN), retry=None,
                       seconds_between_requests=None, seconds_between_writes=None)
    rel = gh.get_repo("acme/probes").get_release(release["id"])
    fake.inject(Fault("POST", r"/assets$", drop_connection=True, leave_starter=True))
    with pytest.raises(Exception, match="Connection|connection"):
        data = items[0].path.read_bytes()
        rel.upload_asset_from_memory(io.BytesIO(data), len(data), asset_name(items[0].file))
    assert fake.releases()[0]["assets"][0]["state"] == "starter"
    summary = run(make_store(fake), items, tmp_path / "f.jsonl")
    assert (summary.uploaded, summary.present) == (2, 0)
    assert [a["state"] for a in fake.releases()[0]["assets"]] == ["uploaded", "uploaded"]


def test_already_exists_is_reconciled_not_ignored(fake: FakeGitHub, tmp_path: Path) -> None:
    items = artifacts(tmp_path, specs(2))
    store = make_store(fake)
    placed: list[Placed] = []
    store.publish(items[0], lambda a, p: placed.append(p))
    # someone else (a parallel run) uploads the second probe behind our back
    gh = github.Github(base_url=fake.api_url, auth=github.Auth.Token(TOKEN), retry=None,
                       seconds_between_requests=None, seconds_between_writes=None)
    release = gh.get_repo("acme/probes").get_release(fake.releases()[0]["id"])
    data = items[1].path.read_bytes()
    release.upload_asset_from_memory(io.BytesIO(data), len(data), asset_name(items[1].file))
    store.publish(items[1], lambda a, p: placed.append(p))
    assert [p.uploaded for p in placed] == [True, False]
    assert [c.status for c in fake.calls if c.path.endswith("/assets")
            and c.method == "POST"] == [201, 201, 422]


@pytest.mark.parametrize(("fault", "waits"), [
    (Fault("POST", r"/assets$", status=502), [0.5]),
    (Fault("POST", r"/assets$", status=503, times=3), [0.5, 1.0, 2.0]),
    (Fault("POST", r"/assets$", drop_connection=True), [0.5]),
    (Fault("GET", r"/releases$", drop_connection=True), [0.5]),
    (Fault("POST", r"/releases$", status=500), [0.5]),
    (Fault("POST", r"/releases$", drop_connection=True), [0.5]),
    (Fault("POST", r"/assets$", status=403, retry_after=7), [7.0]),
    (Fault("POST", r"/assets$", status=429, retry_after=3), [3.0]),
    (Fault("POST", r"/assets$", status=403, body={  # secondary limit without Retry-After
        "message": "You have exceeded a secondary rate limit. Please wait a few minutes."}),
     [60.0]),
    (Fault("GET", r"/releases$", status=403, rate_limit_reset_in=30), [31.0]),
], ids=["502", "503x3", "drop-upload", "drop-list", "500-create", "drop-create",
        "403-retry-after", "429-retry-after", "403-secondary", "primary-reset"])
def test_transient_failures_are_retried(fake: FakeGitHub, tmp_path: Path, fault: Fault,
                                        waits: list[float]) -> None:
    items = artifacts(tmp_path, specs(3))
    fake.inject(fault)
    sleeps = Sleeps()
    summary = run(make_store(fake, sleep=sleeps, clock=fake.clock), items, tmp_path / "f.jsonl")
    assert (summary.uploaded, summary.left) == (3, 0)
    assert sleeps == pytest.approx(waits, abs=1.0)
    assert len(fake.releases()) == 1
    assert sorted(assets_by_name(fake)) == sorted(asset_name(i.file) for i in items)


def test_forbidden_is_not_retried(fake: FakeGitHub, tmp_path: Path) -> None:
    items = artifacts(tmp_path, specs(1))
    fake.inject(Fault("POST", r"/releases$", status=403,
                      body={"message": "Resource not accessible by integration"}))
    with pytest.raises(StoreError, match="HTTP 403 Resource not accessible") as excinfo:
        run(make_store(fake), items, tmp_path / "f.jsonl")
    assert "contents: write" in (excinfo.value.hint or "")
    assert fake.count("POST") == 1


def test_persistent_failure_is_a_store_error_and_keeps_what_was_confirmed(
        fake: FakeGitHub, tmp_path: Path) -> None:
    items = artifacts(tmp_path, specs(3))
    run(make_store(fake), items[:1], tmp_path / "f.jsonl")
    fake.inject(Fault("POST", r"/assets$", status=502, times=100))
    with pytest.raises(StoreError, match="after 6 attempts: HTTP 502"):
        run(make_store(fake), items, tmp_path / "f.jsonl")
    with FragmentFile(tmp_path / "f.jsonl") as fragment:
        assert len(fragment.probes) == 1


def test_deadline_reached_while_rate_limited_stops_cleanly(fake: FakeGitHub, tmp_path: Path
                                                           ) -> None:
    items = artifacts(tmp_path, specs(3))
    run(make_store(fake), items[:1], tmp_path / "f.jsonl")
    fake.inject(Fault("POST", r"/assets$", status=403, retry_after=600))
    budget = Budget(deadline=time.time() + 60)
    summary = run(make_store(fake, budget=budget), items, tmp_path / "f.jsonl")
    assert (summary.stopped, summary.left, summary.skipped) == ("deadline", 2, 1)


def test_upload_budget(fake: FakeGitHub, tmp_path: Path) -> None:
    items = artifacts(tmp_path, specs(5))
    summary = run(make_store(fake, budget=Budget(max_uploads=2)), items, tmp_path / "f.jsonl")
    assert (summary.uploaded, summary.stopped, summary.left) == (2, "budget", 3)
    assert fake.count("POST", r"/assets$") == 2


# --- shards and caps -------------------------------------------------------------------------

def test_release_at_the_cap_opens_the_next_shard(fake: FakeGitHub, tmp_path: Path) -> None:
    full = {f"seed{i}.o": b"%d" % i for i in range(3)}
    seed_family_release(fake, 1, full)
    items = artifacts(tmp_path, specs(4))
    run(make_store(fake, cap=3), items, tmp_path / "f.jsonl")
    counts = {r["tag_name"][-3:]: len(r["assets"]) for r in fake.releases()}
    assert counts == {"001": 3, "002": 3, "003": 1}


def test_lowest_shard_with_room_is_filled_first(fake: FakeGitHub, tmp_path: Path) -> None:
    seed_family_release(fake, 1, {"a.o": b"a"})
    seed_family_release(fake, 2, {"b.o": b"b", "c.o": b"c"})
    items = artifacts(tmp_path, specs(4))
    run(make_store(fake, cap=3), items, tmp_path / "f.jsonl")
    counts = {r["tag_name"][-3:]: len(r["assets"]) for r in fake.releases()}
    assert counts == {"001": 3, "002": 3, "003": 1}


def test_github_cap_below_ours_is_handled(tmp_path: Path) -> None:
    with FakeGitHub(token=TOKEN, max_assets_per_release=4) as fake:
        items = artifacts(tmp_path, specs(10))
        summary = run(make_store(fake, cap=900), items, tmp_path / "f.jsonl")
        assert (summary.uploaded, summary.left) == (10, 0)
        assert sorted(len(r["assets"]) for r in fake.releases()) == [2, 4, 4]


def test_cap_must_be_within_githubs_limit(fake: FakeGitHub) -> None:
    with pytest.raises(InputError, match="between 1 and 1000"):
        make_store(fake, cap=1001)


@pytest.mark.parametrize("body", [
    marker_line(("6.0.1-driver", "x86_64", "ubuntu-generic", "")),  # a colliding slug
    "a release someone made by hand",
])
def test_a_release_marked_for_something_else_is_never_used(fake: FakeGitHub, tmp_path: Path,
                                                           body: str) -> None:
    seed_family_release(fake, 1, {}, body=body)
    items = artifacts(tmp_path, specs(2))
    summary = run(make_store(fake), items, tmp_path / "f.jsonl")
    assert summary.uploaded == 0 and len(summary.conflicts) == 2
    assert "refusing to use it" in summary.conflicts[0]
    assert fake.count("POST") == 0


def test_driver_versions_with_colliding_slugs_get_separate_releases(fake: FakeGitHub,
                                                                   tmp_path: Path) -> None:
    items = artifacts(tmp_path, specs(1, driver_version="6.0.1-driver"))
    run(make_store(fake), items, tmp_path / "f.jsonl")
    others = artifacts(tmp_path, specs(1), name="other")
    summary = run(make_store(fake), others, tmp_path / "g.jsonl")
    assert len(summary.conflicts) == 1  # same tag, other driver version: refused
    assert [r["tag_name"] for r in fake.releases()] == [
        "probes-6.0.1-driver-x86_64-ubuntu-generic-001"]


def test_families_get_their_own_releases(fake: FakeGitHub, tmp_path: Path) -> None:
    items = [*artifacts(tmp_path, specs(2), name="a"),
             *artifacts(tmp_path, specs(2, target="debian"), name="b"),
             *artifacts(tmp_path, specs(2, arch="aarch64"), name="c"),
             *artifacts(tmp_path, specs(2, driver_version="5.0.1+driver"), name="d")]
    run(make_store(fake), items, tmp_path / "f.jsonl")
    assert sorted(r["tag_name"] for r in fake.releases()) == [
        "probes-5.0.1-driver-x86_64-ubuntu-generic-001",
        "probes-6.0.1-driver-aarch64-ubuntu-generic-001",
        "probes-6.0.1-driver-x86_64-debian-001",
        "probes-6.0.1-driver-x86_64-ubuntu-generic-001"]
    assert fake.count("GET", r"/releases$") == 1  # listed once for every family


# --- asset names GitHub would rename ---------------------------------------------------------

def test_names_github_would_rename_are_refused(fake: FakeGitHub, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    items = artifacts(tmp_path, specs(1))
    monkeypatch.setattr(ghstore, "asset_name", lambda file: file)  # the raw name has a ~
    with pytest.raises(StoreError, match="GitHub would rename"):
        make_store(fake).publish(items[0], lambda a, p: None)
    assert fake.count() == 0
    # and if GitHub renamed differently than we predicted, the upload is not recorded
    monkeypatch.setattr(ghstore, "github_renamed", lambda name: name)
    recorded: list[Placed] = []
    with pytest.raises(StoreError, match="GitHub stored the asset as"):
        make_store(fake).publish(items[0], lambda a, p: recorded.append(p))
    assert recorded == []


# --- immutable releases ----------------------------------------------------------------------

def test_immutable_releases_are_drafted_filled_published(fake: FakeGitHub, tmp_path: Path
                                                        ) -> None:
    fake.add_repo("acme/locked", immutable_releases=True)
    items = artifacts(tmp_path, specs(10))
    summary = run(make_store(fake, cap=4, immutable=True, repo="acme/locked"), items,
                  tmp_path / "f.jsonl")
    assert (summary.uploaded, summary.left) == (10, 0)
    releases = fake.releases("acme/locked")
    assert sorted(len(r["assets"]) for r in releases) == [2, 4, 4]
    assert all(not r["draft"] and r["immutable"] for r in releases)
    with FragmentFile(tmp_path / "f.jsonl") as fragment:
        probes = list(fragment.probes.values())
    for probe in probes:  # final URLs, downloadable without a token
        assert "untagged-" not in probe.url and f"/download/{probe.release}/" in probe.url
        assert hashlib.sha256(get(probe.url)).hexdigest() == probe.sha256

    more = artifacts(tmp_path, specs(2, start=100), name="more")
    run(make_store(fake, cap=4, immutable=True, repo="acme/locked"), more, tmp_path / "f.jsonl")
    counts = sorted((r["tag_name"][-3:], len(r["assets"])) for r in fake.releases("acme/locked"))
    assert counts == [("001", 4), ("002", 4), ("003", 2), ("004", 2)]  # 003 is never touched


def test_immutable_run_killed_before_publishing_is_continued(fake: FakeGitHub, tmp_path: Path
                                                             ) -> None:
    fake.add_repo("acme/locked", immutable_releases=True)
    items = artifacts(tmp_path, specs(3))
    crashed = make_store(fake, cap=10, immutable=True, repo="acme/locked")
    confirmed: list[Placed] = []
    for item in items[:2]:
        crashed.publish(item, lambda a, p: confirmed.append(p))
    assert confirmed == []  # nothing is final while the release is a draft
    (draft,) = fake.releases("acme/locked")
    assert draft["draft"] and len(draft["assets"]) == 2

    summary = run(make_store(fake, cap=10, immutable=True, repo="acme/locked"), items,
                  tmp_path / "f.jsonl")
    assert (summary.present, summary.uploaded, summary.left) == (2, 1, 0)
    (release,) = fake.releases("acme/locked")
    assert not release["draft"] and len(release["assets"]) == 3


def test_mutable_mode_in_a_repository_with_immutable_releases(fake: FakeGitHub, tmp_path: Path
                                                              ) -> None:
    fake.add_repo("acme/locked", immutable_releases=True)
    items = artifacts(tmp_path, specs(1))
    with pytest.raises(StoreError, match="immutable") as excinfo:
        run(make_store(fake, repo="acme/locked"), items, tmp_path / "f.jsonl")
    assert "--immutable" in (excinfo.value.hint or "")


def test_token_is_never_shown(fake: FakeGitHub, tmp_path: Path) -> None:
    write_report(tmp_path / "build", specs(3))
    env = {"GITHUB_API_URL": fake.api_url, "GITHUB_REPOSITORY": "acme/probes"}
    wrong = "ghp_wrongTokenXYZ0123456789SECRET"
    for result in (publish_cli(fake, tmp_path, {**env, "GITHUB_TOKEN": wrong}),
                   publish_cli(fake, tmp_path, {**env, "GITHUB_TOKEN": wrong, "FALCO_PROBES_DEBUG":
                                                "1"})):
        assert result.returncode == 4 or "Traceback" in result.stderr
        assert "GitHub rejected the token (HTTP 401 Bad credentials)" in result.stderr
        assert wrong not in result.stdout + result.stderr
    assert fake.releases() == []

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    ok = publish_cli(fake, tmp_path, env, "--token-file", str(token_file), "--json")
    assert ok.returncode == 0, ok.stderr
    assert TOKEN not in ok.stdout + ok.stderr
    ok = publish_cli(fake, tmp_path, {**env, "GITHUB_TOKEN": TOKEN}, fragment="g.jsonl")
    assert ok.returncode == 0 and ok.stdout.count("present  ") == 3
    assert TOKEN not in ok.stdout + ok.stderr


# --- 2,500 probes ----------------------------------------------------------------------------

def test_two_thousand_five_hundred_probes(fake: FakeGitHub, tmp_path: Path) -> None:
    items = [*artifacts(tmp_path, specs(1900), name="generic"),
             *artifacts(tmp_path, specs(600, target="ubuntu-aws"), name="aws")]
    started = time.monotonic()
    summary = run(make_store(fake), items, tmp_path / "f.jsonl")
    elapsed = time.monotonic() - started
    assert (summary.uploaded, summary.left, summary.conflicts) == (2500, 0, [])
    releases = fake.releases()
    assert max(len(r["assets"]) for r in releases) <= 900
    assert sorted(len(r["assets"]) for r in releases) == [100, 600, 900, 900]
    calls = fake.count()
    assert calls == 1 + 1 + 4 + 2500  # repository, release list, 4 creates, 2,500 uploads

    with FragmentFile(tmp_path / "f.jsonl") as fragment:
        recorded = list(fragment.probes.values())
    assert len(recorded) == 2500 and len({p.url for p in recorded}) == 2500
    for probe in recorded:
        assert hashlib.sha256(get(probe.url)).hexdigest() == probe.sha256

    fake.clear_calls()
    rerun = run(make_store(fake), items, tmp_path / "lost.jsonl")
    assert (rerun.present, rerun.uploaded) == (2500, 0)
    relisted = fake.count()
    assert relisted == 1 + 1 + 9 + 9 + 1 + 6  # repo, releases, assets of 900+900+100+600
    print(f"\n2,500 probes: {calls} API calls in {elapsed:.1f}s; rerun without fragment: "
          f"{relisted} calls")


# --- GitHub: the release that fills underneath us, the echoed token, what we list ----------

def test_a_release_fuller_than_counted_opens_the_next_shard(tmp_path: Path) -> None:
    """GitHub answers file_count in its own words; the probe goes to the next release."""
    with FakeGitHub(token=TOKEN, max_assets_per_release=3) as fake:
        fake.add_release(release_tag(FAMILY, 1), body=marker_line(FAMILY),
                         assets={f"other{i}.o": b"%d" % i for i in range(3)})
        write_report(tmp_path / "build", specs(2))
        env = {"GITHUB_API_URL": fake.api_url, "GITHUB_REPOSITORY": "acme/probes",
               "GITHUB_TOKEN": TOKEN}
        done = publish_cli(fake, tmp_path, env, "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["complete"] is True
        assert {r["tag_name"][-3:]: len(r["assets"]) for r in fake.releases()} == {
            "001": 3, "002": 2}


def test_server_text_is_printed_without_the_token(tmp_path: Path) -> None:
    with FakeGitHub(token=TOKEN) as fake:
        write_report(tmp_path / "build", specs(1))
        env = {"GITHUB_API_URL": fake.api_url, "GITHUB_REPOSITORY": "acme/probes",
               "GITHUB_TOKEN": TOKEN}
        for debug in ({}, {"FALCO_PROBES_DEBUG": "1"}):
            fake.inject(Fault("POST", r"/releases$", status=400, echo_authorization=True))
            done = publish_cli(fake, tmp_path, {**env, **debug}, "--json")
            assert done.returncode == 4
            assert "HTTP 400 Bad Request (your request: Authorization: token ***)" in done.stderr
            assert TOKEN not in done.stdout + done.stderr
            summary = json.loads(done.stdout)  # --json still tells what was (not) done
            assert (summary["complete"], summary["left"], summary["uploaded"]) == (False, 1, 0)
            assert "***" in summary["error"] and TOKEN not in summary["error"]


@pytest.mark.parametrize(("fault", "lists"), [
    (Fault("POST", r"/assets$", status=403, retry_after=1), 0),
    (Fault("POST", r"/assets$", status=429, retry_after=1), 0),
    (Fault("POST", r"/assets$", status=502), 1),
    (Fault("POST", r"/assets$", drop_connection=True), 1),
], ids=["403 secondary limit", "429", "502", "lost connection"])
def test_a_release_is_read_again_only_when_a_failure_may_have_left_something(
        tmp_path: Path, fault: Fault, lists: int) -> None:
    """One request (the release, with every asset it holds) per failed upload that may
    have left an asset behind; never a listing of every asset page."""
    with FakeGitHub(token=TOKEN) as fake:
        fake.add_release(release_tag(FAMILY, 1), body=marker_line(FAMILY))
        store = make_store(fake)
        items = artifacts(tmp_path, specs(1))
        store._family(FAMILY)  # the run's one listing
        fake.clear_calls()
        fake.inject(fault)
        summary = run(store, items, tmp_path / "f.jsonl")
        assert summary.uploaded == 1
        assert fake.count("GET", r"/releases/\d+$") == lists
        assert fake.count("GET", r"/releases/\d+/assets$") == 0


def test_a_release_created_meanwhile_is_taken_over_and_said_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeGitHub(token=TOKEN) as fake:
        store = make_store(fake)
        items = artifacts(tmp_path, [Spec("5.15.0-1-generic", "1~20.04.1")])
        store._family(FAMILY)  # listed while the release did not exist yet
        fake.add_release(release_tag(FAMILY, 1), body=marker_line(FAMILY))
        assert run(store, items, tmp_path / "f.jsonl").uploaded == 1
        err = capsys.readouterr().err
        assert (f"GitHub: release {release_tag(FAMILY, 1)} already existed (a lost answer or "
                "a parallel run); taking it over") in err
        assert "created release" not in err


@pytest.mark.parametrize("immutable", [False, True], ids=["mutable", "immutable"])
def test_github_keeps_logs_and_the_bundle_in_the_probes_release(fake: FakeGitHub, tmp_path: Path,
                                                                immutable: bool) -> None:
    repo = "acme/locked" if immutable else "acme/probes"
    if immutable:
        fake.add_repo(repo, immutable_releases=True)
    results = build_with_logs(tmp_path / "build", specs(2), failures=specs(1, start=5))
    bundle = bundle_for(tmp_path / "build", results, tmp_path / "a.json")
    store = make_store(fake, immutable=immutable, repo=repo)
    probes, failures = publish_all(tmp_path / "build", store, tmp_path / "f.jsonl", [bundle])
    assets = assets_by_name(fake, repo)
    names = sorted(assets)
    assert len(names) == 6 and sum(n.endswith(".sigstore.json") for n in names) == 1
    assert len(fake.releases(repo)) == 1     # the failure's log shares the probes' (draft)
    assert all("untagged" not in url for p in probes for url in (p.url, p.log, p.attestation))
    for probe in probes:
        assert probe.log.endswith(f"/{asset_name(probe.file)}.log")
        assert probe.attestation.endswith(".sigstore.json")
        assert get(probe.log).decode() == f"clang log of {probe.file} ok=True\n"
        assert probe.release == probe.log.split("/download/")[1].split("/")[0]
    assert get(failures[0].log).decode().endswith("ok=False\n")
    assert failures[0].log.endswith(f"/{asset_name(failures[0].file)}.attempt-2.log")
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    assert audit(load_catalog(tmp_path / "catalog"), make_store(fake, repo=repo)).drifts == []
    # A rerun finds everything and writes nothing.
    (tmp_path / "f.jsonl").unlink()
    fake.clear_calls()
    publish_all(tmp_path / "build", make_store(fake, immutable=immutable, repo=repo),
                tmp_path / "f.jsonl", [bundle])
    assert fake.count("POST") == 0
