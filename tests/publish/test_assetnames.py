"""publish/stores/assetnames.py: asset names GitHub keeps as we ask, release tags."""

from __future__ import annotations

import hashlib

import pytest
from fakegithub import github_asset_name
from githubstore import FAMILY

from builder.core.records import check_tag
from builder.publish.stores.assetnames import (
    asset_name,
    family_tag_pattern,
    github_renamed,
    marker_family,
    marker_line,
    release_tag,
)

# --- names and tags --------------------------------------------------------------------------

@pytest.mark.parametrize(("file", "expected"), [
    ("falco_debian_6.1.0-13-amd64_1.o", "falco_debian_6.1.0-13-amd64_1.o"),
    ("falco_amazonlinux2_5.10.178-162.673.amzn2.x86_64_1.o",
     "falco_amazonlinux2_5.10.178-162.673.amzn2.x86_64_1.o"),
    ("falco_ubuntu-aws_5.15.0-1034-aws_38~20.04.1.o",
     "falco_ubuntu-aws_5.15.0-1034-aws_38.20.04.1-"
     + hashlib.sha256(b"falco_ubuntu-aws_5.15.0-1034-aws_38~20.04.1.o").hexdigest()[:8] + ".o"),
    ("falco_cos_5.15.107+_1.o",
     "falco_cos_5.15.107._1-"
     + hashlib.sha256(b"falco_cos_5.15.107+_1.o").hexdigest()[:8] + ".o"),
    ("falco_debian_6.12.48+deb12-amd64_1.o",
     "falco_debian_6.12.48.deb12-amd64_1-"
     + hashlib.sha256(b"falco_debian_6.12.48+deb12-amd64_1.o").hexdigest()[:8] + ".o"),
])
def test_asset_names(file: str, expected: str) -> None:
    name = asset_name(file)
    assert name == expected
    assert github_asset_name(name) == name  # GitHub keeps it as we ask


@pytest.mark.parametrize("name", ["a~b.o", "5.15.65+", "a b", ".x.", "a+~b", "café.o", "日本.o",
                                  "app.prod-v1.3.0-(15-5)-6064eac-release.apk",
                                  "falco_cos_5.15.107+_1.o", "x+.o"])
def test_renaming_rule_matches_the_fake(name: str) -> None:
    assert github_renamed(name) == github_asset_name(name)
    assert github_asset_name(asset_name(name if name.endswith(".o") else name + ".o")) \
        == asset_name(name if name.endswith(".o") else name + ".o")


def test_similar_names_stay_distinct() -> None:
    names = ["falco_cos_5.15.107+_1.o", "falco_cos_5.15.107~_1.o", "falco_cos_5.15.107._1.o"]
    assert len({asset_name(n) for n in names}) == 3


@pytest.mark.parametrize(("family", "number", "tag"), [
    (FAMILY, 1, "probes-6.0.1-driver-x86_64-ubuntu-generic-001"),
    (("0.1.1dev+git20220316.e5c53d64", "aarch64", "debian", ""), 12,
     "probes-0.1.1dev-git20220316.e5c53d64-aarch64-debian-012"),
    (("2aa88dcf6243982697811df4c1b484bcbe9488a2", "x86_64", "cos", ""), 1000,
     "probes-2aa88dcf6243982697811df4c1b484bcbe9488a2-x86_64-cos-1000"),
    (("1.0.0~rc1", "x86_64", "amazonlinux2", ""), 2, "probes-1.0.0-rc1-x86_64-amazonlinux2-002"),
    (("9.1.0+driver", "x86_64", "debian", "debian-12"), 1,
     "probes-9.1.0-driver-x86_64-debian-twins-debian-12-001"),
], ids=["default", "snapshot", "commit", "tilde", "twin root"])
def test_release_tags(family: tuple[str, str, str, str], number: int, tag: str) -> None:
    assert release_tag(family, number) == tag
    assert check_tag(tag) is None


def test_a_twin_roots_releases_are_a_family_of_their_own() -> None:
    default = ("9.1.0+driver", "x86_64", "debian", "")
    twin = ("9.1.0+driver", "x86_64", "debian", "debian-12")
    assert marker_family(marker_line(default)) == default
    assert marker_family(marker_line(twin)) == twin
    assert '"root"' not in marker_line(default)  # markers written before twins stay valid
    assert family_tag_pattern(default).fullmatch(release_tag(twin, 1)) is None
    assert family_tag_pattern(twin).fullmatch(release_tag(twin, 7)) is not None
