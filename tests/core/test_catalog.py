"""core/catalog.py, the YAML catalog: format, check, merge, and every kind of bad input,
hostile catalogs and fragments included (each refused with its file and line, the same
way by every reader, nothing half written)."""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from catalogfiles import HEAD, SHA, good_probe, write_catalog
from commandline import NODE, cli, os_release
from hostileinputs import alias_bomb
from testpaths import DATA

from builder.cli import main
from builder.core.catalog import (
    CatalogFile,
    check_catalog,
    fragment_line,
    load_catalog,
    merge_into,
    render,
)
from builder.core.errors import ConflictError, InputError, ProblemsError
from builder.core.records import FailureRecord, LoadTest, ProbeRecord
from builder.core.versions import BUILTIN_RELEASES
from builder.site.load import load_and_write

H1 = "a" * 64
H2 = "b" * 64


def probe(release: str = "6.1.0-1-amd64", sha: str = H1, **kw: object) -> ProbeRecord:
    base = dict(driver_version="5.0.1+driver", arch="x86_64", target="debian",
                kernel_release=release, kernel_version="1", sha256=sha, size=100,
                url=f"https://example.org/r/falco_debian_{release}_1.o",
                release="probes-5.0.1-driver-x86_64-debian-1", built="2026-11-25T08:00:00Z",
                commit="abcdef1", driver_ref="5.0.1+driver")
    base.update(kw)
    return ProbeRecord(**base)  # type: ignore[arg-type]


def failure(release: str = "6.12.1+deb12-amd64", attempts: int = 1) -> FailureRecord:
    return FailureRecord("5.0.1+driver", "x86_64", "debian", release, "1", "compile",
                         "error: <b>bad</b>", attempts=attempts,
                         last_attempt=f"2026-11-2{attempts}T08:00:00Z")


def write_fragment(path: Path, records: list[ProbeRecord | FailureRecord]) -> Path:
    path.write_text("".join(json.dumps(fragment_line(r)) + "\n" for r in records))
    return path


# --- the hand-broken catalog: every problem, with its line ---------------------------

BROKEN_EXPECTED = [
    ("5.0.1+driver/aarch64/debian.yaml:3", "says arch 'x86_64' but its path says 'aarch64'"),
    ("5.0.1+driver/aarch64/ubuntu-generic.yaml:7", "invalid YAML: did not find expected ','"),
    ("5.0.1+driver/x86_64/debian.yaml:8", "unknown key 'sizee' in probe record; did you mean "
                                          "'size'?"),
    ("5.0.1+driver/x86_64/debian.yaml:9", "field 'size': must be an integer, got a string"),
    ("5.0.1+driver/x86_64/debian.yaml:10", "'../../etc/passwd' is not allowed"),
    ("5.0.1+driver/x86_64/debian.yaml:11", "'6.1.0-5 amd64' is not allowed"),
    ("5.0.1+driver/x86_64/debian.yaml:12", "'6.1.0-6<script>' is not allowed"),
    ("5.0.1+driver/x86_64/debian.yaml:13", "'6.1.0-7\\x00' is not allowed"),
    ("5.0.1+driver/x86_64/debian.yaml:14", "GitHub rejects 40-hex tags"),
    ("5.0.1+driver/x86_64/debian.yaml:16", "file 'falco_ubuntu_6.1.0-10-amd64_1.o' does not "
                                           "match its name parts"),
    ("5.0.1+driver/x86_64/debian.yaml:17", "field 'sha256': 'ABC' is not allowed"),
    ("5.0.1+driver/x86_64/debian.yaml:17", "field 'url': 'javascript:alert(1)' is not allowed"),
    ("5.0.1+driver/x86_64/debian.yaml:19", "target belongs in the file header"),
    ("5.0.1+driver/x86_64/debian.yaml:19", "missing required key 'sha256'"),
    ("5.0.1+driver/x86_64/debian.yaml:21", "'cooking' is not allowed; use one of: download"),
    ("5.0.1+driver/x86_64/debian.yaml:15", "duplicate probe for falco_debian_6.1.0-1-amd64_1.o "
                                           "(already a probe at line 7)"),
    ("5.0.1+driver/x86_64/debian.yaml:18", "file name 'falco_debian_6.1.0-1-amd64_1.o' is also "
                                           "answered by 6.1.0-1-amd64 #1"),
    ("bad<dv>/x86_64/debian.yaml", "folder or file name is not a valid driver_version"),
    ("bad<dv>/x86_64/debian.yaml:2", "'bad<dv>' is not allowed"),
]


def test_check_lists_every_problem_with_its_line() -> None:
    root = DATA / "broken-catalog"
    got = [str(p).replace(f"{root}/", "") for p in check_catalog(root)]
    assert len(got) == len(BROKEN_EXPECTED), "\n".join(got)
    for line, (where, what) in zip(got, BROKEN_EXPECTED, strict=True):
        assert line.startswith(where + ":"), line
        assert what in line, line


def test_check_cli_prints_path_line_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["catalog", "check", str(DATA / "broken-catalog")])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert len(out) == len(BROKEN_EXPECTED)
    assert all(":" in line and "broken-catalog/" in line for line in out)


def test_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "check", "--json", str(DATA / "broken-catalog")]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    assert {"path", "line", "record", "field", "message"} <= set(doc["problems"][0])


def test_loading_a_broken_catalog_raises_with_locations(tmp_path: Path) -> None:
    with pytest.raises(ProblemsError) as info:
        load_catalog(DATA / "broken-catalog")
    assert len(info.value.problems) == len(BROKEN_EXPECTED)


def test_missing_catalog_is_empty(tmp_path: Path) -> None:
    assert list(load_catalog(tmp_path / "nope").probes()) == []
    assert check_catalog(tmp_path / "nope") == []


# --- format ------------------------------------------------------------------------

def test_render_is_one_probe_per_line_sorted_and_greppable(tmp_path: Path) -> None:
    releases = ["6.1.0-10-amd64", "6.1.0-9-amd64", "6.1.0-47-cloud-amd64"]
    cat = CatalogFile("5.0.1+driver", "x86_64", "debian",
                      tuple(probe(r) for r in releases), (failure(),))
    text = render(cat)
    lines = text.splitlines()
    probe_lines = lines[lines.index("probes:") + 1: lines.index("failures:")]
    assert [line.split(",")[0] for line in probe_lines] == [
        "- {kernel_release: 6.1.0-9-amd64", "- {kernel_release: 6.1.0-10-amd64",
        "- {kernel_release: 6.1.0-47-cloud-amd64"]
    for line in probe_lines:  # grep shows file, digest and URL on the same line
        assert "file: falco_debian_" in line and f"sha256: {H1}" in line and "url: " in line
    assert render(cat) == text  # deterministic
    shuffled = replace(cat, probes=tuple(reversed(cat.probes)))
    assert render(shuffled) == text
    assert yaml.safe_load(text)["probes"][0]["kernel_version"] == "1"  # quoted, stays a string


def test_new_fields_round_trip_through_catalog_and_fragment(tmp_path: Path) -> None:
    tested = probe(source="debian falcosecurity-scap-dkms 0.23.2-6 (libs 0.23.2, Debian patches)",
                   job="https://github.com/o/r/actions/runs/1/job/2",
                   attestation="https://github.com/o/r/attestations/3",
                   loadtest=LoadTest("passed", "6.1.0-1-amd64", 170, 170, 12,
                                     "2026-11-25T08:05:00Z"))
    failed = replace(failure(), category="unsupported-kernel",
                     aliases=("falco_debian_6.12.1-1-amd64_1.o",), source="libs 9.1.0+driver")
    frag = write_fragment(tmp_path / "f.jsonl", [tested, failed])
    assert main(["catalog", "merge", "--catalog", str(tmp_path / "c"), str(frag)]) == 0
    text = (tmp_path / "c" / "5.0.1+driver" / "x86_64" / "debian.yaml").read_text()
    assert "loadtest: {status: passed, kernel: 6.1.0-1-amd64, accepted: 170" in text
    assert "reason:" not in text.split("loadtest:")[1].split("}")[0]  # empty fields left out
    loaded = load_catalog(tmp_path / "c")
    assert list(loaded.probes()) == [tested]
    assert list(loaded.failures()) == [failed]
    assert loaded.failures().__next__().all_files()[1] == "falco_debian_6.12.1-1-amd64_1.o"


# --- merge -------------------------------------------------------------------------

def test_merge_adds_and_is_idempotent(tmp_path: Path) -> None:
    frag = write_fragment(tmp_path / "f.jsonl", [probe("6.1.0-1-amd64"), probe("6.1.0-2-amd64"),
                                                 failure()])
    root = tmp_path / "catalog"
    first = merge_into(root, [frag])
    assert (first.added, first.failures_recorded, len(first.files_written)) == (2, 1, 1)
    path = root / "5.0.1+driver/x86_64/debian.yaml"
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    second = merge_into(root, [frag, frag])
    assert (second.added, second.files_written) == (0, [])
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    assert len(list(load_catalog(root).probes())) == 2


def test_merge_same_record_twice_in_one_run_is_a_noop(tmp_path: Path) -> None:
    frag = write_fragment(tmp_path / "f.jsonl", [probe(), probe()])
    report = merge_into(tmp_path / "c", [frag])
    assert (report.added, report.unchanged) == (1, 1)


def test_conflicting_digest_fails_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    merge_into(root, [write_fragment(tmp_path / "a.jsonl", [probe()])])
    path = root / "5.0.1+driver/x86_64/debian.yaml"
    before = path.read_bytes()
    bad = write_fragment(tmp_path / "b.jsonl", [probe("6.1.0-9-amd64"), probe(sha=H2)])
    with pytest.raises(ConflictError, match="catalog has sha256 a+, fragment has sha256|"
                                            "catalog has sha256"):
        merge_into(root, [bad])
    assert path.read_bytes() == before
    assert main(["catalog", "merge", "--catalog", str(root), str(bad)]) == 3


def test_conflict_inside_fragments_fails(tmp_path: Path) -> None:
    frag = write_fragment(tmp_path / "f.jsonl", [probe(), probe(sha=H2)])
    with pytest.raises(ConflictError):
        merge_into(tmp_path / "c", [frag])
    assert not (tmp_path / "c").exists()


def test_ambiguous_aliases_are_dropped_and_own_names_win(tmp_path: Path) -> None:
    a = probe("6.1.0-1-amd64", aliases=("falco_debian_shared_1.o", "falco_debian_only-a_1.o"))
    b = probe("6.1.0-2-amd64", sha=H2, aliases=("falco_debian_shared_1.o",))
    # Falco 0.35.0 asks a cloud kernel for the plain -amd64 name: another probe's own name.
    cloud = probe("6.1.0-2-cloud-amd64", sha="c" * 64,
                  aliases=("falco_debian_6.1.0-2-amd64_1.o",))
    report = merge_into(tmp_path / "c", [write_fragment(tmp_path / "f.jsonl", [a, b, cloud])])
    assert sorted(report.aliases_dropped) == [
        "5.0.1+driver/x86_64/falco_debian_6.1.0-2-amd64_1.o (alias of "
        "falco_debian_6.1.0-2-cloud-amd64_1.o)",
        "5.0.1+driver/x86_64/falco_debian_shared_1.o (alias of falco_debian_6.1.0-1-amd64_1.o)",
        "5.0.1+driver/x86_64/falco_debian_shared_1.o (alias of falco_debian_6.1.0-2-amd64_1.o)"]
    catalog = load_catalog(tmp_path / "c")
    assert catalog.lookup("5.0.1+driver", "x86_64", "falco_debian_shared_1.o") is None
    only_a = catalog.lookup("5.0.1+driver", "x86_64", "falco_debian_only-a_1.o")
    assert only_a is not None and only_a.sha256 == H1
    own_name = catalog.lookup("5.0.1+driver", "x86_64", "falco_debian_6.1.0-2-amd64_1.o")
    assert own_name is not None and own_name.sha256 == H2
    assert check_catalog(tmp_path / "c") == []
    again = merge_into(tmp_path / "c", [write_fragment(tmp_path / "f.jsonl", [a, b, cloud])])
    assert again.files_written == []  # dropping is stable: the same input changes nothing


def test_probe_clears_failure_and_failure_never_hides_probe(tmp_path: Path) -> None:
    root = tmp_path / "c"
    merge_into(root, [write_fragment(tmp_path / "1.jsonl", [failure("6.1.0-5-amd64")])])
    fixed = probe("6.1.0-5-amd64")
    report = merge_into(root, [write_fragment(tmp_path / "2.jsonl", [fixed])])
    assert report.failures_cleared == 1
    stale = merge_into(root, [write_fragment(tmp_path / "3.jsonl", [failure("6.1.0-5-amd64")])])
    assert stale.failures_ignored == 1
    catalog = load_catalog(root)
    assert list(catalog.failures()) == [] and len(list(catalog.probes())) == 1


def test_newer_failure_attempt_replaces_older(tmp_path: Path) -> None:
    root = tmp_path / "c"
    merge_into(root, [write_fragment(tmp_path / "1.jsonl", [failure(attempts=2)])])
    merge_into(root, [write_fragment(tmp_path / "2.jsonl", [failure(attempts=1)])])
    assert [f.attempts for f in load_catalog(root).failures()] == [2]
    merge_into(root, [write_fragment(tmp_path / "3.jsonl", [failure(attempts=3)])])
    assert [f.attempts for f in load_catalog(root).failures()] == [3]


def test_merge_unions_aliases(tmp_path: Path) -> None:
    root = tmp_path / "c"
    merge_into(root, [write_fragment(tmp_path / "1.jsonl", [probe(aliases=("falco_x_1.o",))])])
    report = merge_into(root, [write_fragment(tmp_path / "2.jsonl",
                                              [probe(aliases=("falco_y_1.o",))])])
    assert report.updated == 1
    (record,) = load_catalog(root).probes()
    assert record.aliases == ("falco_x_1.o", "falco_y_1.o")
    assert load_catalog(root).lookup("5.0.1+driver", "x86_64", "falco_y_1.o") == record


BAD_FRAGMENT_LINES = [
    ('{"kind": "probe"', "invalid JSON"),
    ('["not", "an", "object"]', "\"kind\": \"probe\" or \"failure\""),
    ('{"kind": "probe", "driver_version": "5.0.1+driver"}', "missing required key 'arch'"),
    (json.dumps({**fragment_line(probe()), "kernel_release": "a/b"}), "'a/b' is not allowed"),
    (json.dumps({**fragment_line(probe()), "kernel_release": ".."}), "'..' is not allowed"),
    (json.dumps({**fragment_line(probe()), "target": "<img src=x>"}), "is not allowed"),
    (json.dumps({**fragment_line(probe()), "kernel_version": "1\u0000"}), "is not allowed"),
    (json.dumps({**fragment_line(probe()), "release": "f" * 40}), "40-hex"),
    (json.dumps({**fragment_line(probe()), "size": "big"}), "must be an integer"),
    (json.dumps({**fragment_line(probe()), "sha265": H1}), "did you mean 'sha256'"),
    (json.dumps({**fragment_line(probe()), "source": "a\u001b]52;c;x\u0007"}),
     "field 'source': contains the non-printable character U+001B"),
    (json.dumps({**fragment_line(probe()), "loadtest": {"status": "great"}}),
     "field 'loadtest.status': 'great' is not allowed"),
    (json.dumps({**fragment_line(probe()), "loadtest": {"status": "passed", "accepted": 9,
                                                       "total": 3}}),
     "field 'loadtest.accepted': loadtest: 9 programs accepted of 3"),
    (json.dumps({**fragment_line(probe()), "loadtest": {"status": "passed", "totl": 3}}),
     "field 'loadtest.totl': unknown key 'totl' in loadtest; did you mean 'total'?"),
    (json.dumps({**fragment_line(failure()), "category": "bad-luck"}),
     "field 'category': 'bad-luck' is not allowed"),
    (json.dumps({**fragment_line(failure()), "reason": "ok\u202eevil"}),
     "U+202E"),
]


@pytest.mark.parametrize(("line", "message"), BAD_FRAGMENT_LINES)
def test_bad_fragment_line_is_refused_and_nothing_written(tmp_path: Path, line: str,
                                                          message: str,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    good = json.dumps(fragment_line(probe("6.1.0-99-amd64")))
    frag = tmp_path / "f.jsonl"
    frag.write_text(good + "\n" + line + "\n")
    code = main(["catalog", "merge", "--catalog", str(tmp_path / "c"), str(frag)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{frag}:2" in err and message in err
    assert not (tmp_path / "c").exists()


def test_merge_into_broken_catalog_refuses(tmp_path: Path) -> None:
    root = tmp_path / "c"
    shutil.copytree(DATA / "broken-catalog", root)
    frag = write_fragment(tmp_path / "f.jsonl", [probe("6.1.0-77-amd64")])
    snapshot = {p: p.read_bytes() for p in root.rglob("*.yaml")}
    with pytest.raises(ProblemsError):
        merge_into(root, [frag])
    assert {p: p.read_bytes() for p in root.rglob("*.yaml")} == snapshot


def test_merge_leaves_no_temp_files(tmp_path: Path) -> None:
    root = tmp_path / "c"
    merge_into(root, [write_fragment(tmp_path / "f.jsonl", [probe()])])
    assert [p.name for p in root.rglob("*") if p.is_file()] == ["debian.yaml"]
    assert not any(name.startswith(".") for _, _, files in os.walk(root) for name in files)


def probe_text(extra: str = "", **raw: str) -> str:
    """One catalog probe line; values are YAML text, `extra` is appended as is."""
    fields = {"kernel_release": "6.1.0-1-amd64", "kernel_version": "'1'", "sha256": SHA,
              "size": "100", "url": "'https://example.org/falco_debian_6.1.0-1-amd64_1.o'",
              **raw}
    return "{" + ", ".join([*(f"{k}: {v}" for k, v in fields.items()), *([extra] if extra
                                                                        else [])]) + "}"


def failure_text(reason: str) -> str:
    return ("{kernel_release: 6.1.0-2-amd64, kernel_version: '1', step: compile, "
            f"reason: {reason}}}")


# --- the catalog: one table, every reader -------------------------------------------------

BIDI_URL = '"https://x.example/\\u202egpj.o"'        # YAML escapes: the real characters
OSC52 = '"\\e]52;c;ZWNobw==\\a"'
CR = '"built\\rFAKE: ok"'
BIDI = '"\\u202eevil"'

CATALOG_CASES = [
    ("deep flow nesting", "probes: " + "[" * 990 + "]" * 990, "nested too deeply to read"),
    ("deep block nesting", "probes:\n" + "".join(" " * i + "-\n" for i in range(1, 1100)),
     "invalid YAML: exceeded maximum nesting depth"),
    ("integer over 4300 digits", f"probes: [{probe_text(size='9' * 5000)}]\n",
     "a value cannot be read: Exceeds the limit (4300 digits)"),
    ("alias bomb", alias_bomb(), "aliases expand to more than 100000 extra nodes"),
    ("too many nodes", "probes: [" + ",".join(["1"] * 150_000) + "]\n",
     "more than 150000 YAML nodes (set FALCO_PROBES_LIMIT_YAML_NODES to allow more)"),
    ("recursive alias", "probes: &loop [*loop]\n", "recursive alias: a node contains itself"),
    ("python tag", "probes: !!python/object/apply:os.system ['true']\n",
     "is not allowed (safe YAML only)"),
    ("duplicate key", f"probes: [{probe_text(extra='url: https://evil.example/x.o')}]\n",
     "duplicate key 'url'"),
    ("size past 2 GiB", f"probes: [{probe_text(size='1' + '0' * 400)}]\n",
     "field 'size': must be from 1 to 2147483647"),
    ("no such date", f"probes: [{probe_text(built=repr('2026-13-45T25:61:61Z'))}]\n",
     "'2026-13-45T25:61:61Z' is not a real date and time"),
    ("year 9999", f"probes: [{probe_text(built=repr('9999-12-31T23:59:59Z'))}]\n",
     "the year must be from 2000 to 2199"),
    ("bidi override in a URL", f"probes: [{probe_text(url=BIDI_URL)}]\n",
     "an http, https or file URL in printable ASCII"),
    ("OSC 52 clipboard write", f"failures: [{failure_text(OSC52)}]\n",
     "field 'reason': contains the non-printable character U+001B"),
    ("carriage return", f"failures: [{failure_text(CR)}]\n",
     "field 'reason': contains the non-printable character U+000D"),
    ("bidi override in a reason", f"failures: [{failure_text(BIDI)}]\n",
     "field 'reason': contains the non-printable character U+202E"),
    ("not UTF-8", (HEAD + "probes: []\n# \xff\n").encode("latin-1"), "not UTF-8"),
    ("NUL byte", (HEAD + "probes: []\n\x00\n").encode(), "contains a NUL byte"),
]


@pytest.mark.parametrize(("body", "message"), [c[1:] for c in CATALOG_CASES],
                         ids=[c[0] for c in CATALOG_CASES])
def test_every_catalog_reader_refuses_the_same_way(tmp_path: Path, body: str | bytes,
                                                   message: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "catalog"
    path = write_catalog(root, body)
    code, out, _ = cli(["catalog", "check", str(root)], capsys)
    assert code == 1
    assert out.startswith(f"{path}") and message in out, out
    code, _, err = cli(["find", "--catalog", str(root), "--os-release",
                        str(os_release(tmp_path)), *NODE], capsys)
    assert code == 2
    assert f"error: {path}" in err and message in err, err
    site = tmp_path / "site"  # the MkDocs plugin's loading call: refused, nothing written
    site.mkdir()
    with pytest.raises(ProblemsError) as excinfo:
        load_and_write(root, site, BUILTIN_RELEASES, workers=1)
    assert message in str(excinfo.value.problems[0])
    assert list(site.iterdir()) == []


def test_check_lists_at_most_a_hundred_problems_per_file(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    path = write_catalog(root, "probes: [" + ", ".join(["{}"] * 5000) + "]\n")
    problems = check_catalog(root)
    assert len(problems) == 101
    assert str(problems[-1]) == (f"{path}: more than 100 problems; the rest of this file was "
                                 "not checked")


def test_a_catalog_file_over_its_limit_is_refused_unread(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALCO_PROBES_LIMIT_CATALOG_FILE", "1K")
    root = tmp_path / "catalog"
    write_catalog(root, "probes: []\n" + "# padding\n" * 200)
    problems = check_catalog(root)
    assert [p.message for p in problems] == [
        "is 2086 bytes; one catalog file (<driver_version>/<arch>/<target>.yaml) may be at "
        "most 1KB"]
    with pytest.raises(ProblemsError):
        load_catalog(root)


def test_special_files_and_links_in_the_catalog_are_problems(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    write_catalog(root, "probes: []\n")
    outside = tmp_path / "outside" / "x86_64"
    outside.mkdir(parents=True)
    (root / "6.0.1+driver").symlink_to(outside.parent, target_is_directory=True)
    os.mkfifo(root / "5.0.1+driver" / "x86_64" / "cos.yaml")
    (root / "5.0.1+driver" / "aarch64").mkdir()
    (root / "5.0.1+driver" / "aarch64" / "debian.yaml").symlink_to("/dev/zero")
    found = {(Path(p.path).relative_to(root).as_posix(), p.message) for p in check_catalog(root)}
    assert found == {
        ("5.0.1+driver/aarch64/debian.yaml", "is a symbolic link; the catalog holds only "
                                             "real folders and regular files"),
        ("5.0.1+driver/x86_64/cos.yaml", "is a FIFO; the catalog holds only real folders and "
                                         "regular files"),
        ("6.0.1+driver", "is a symbolic link to a folder; the catalog holds only real folders "
                         "and files")}


def probe_line(**changes: object) -> str:
    return json.dumps({**fragment_line(good_probe()), **changes})


FRAGMENT_CASES = [
    ("nested JSON", "[" * 100_000, "invalid JSON: nested too deeply to read"),
    ("integer over 4300 digits", probe_line()[:-1] + ', "attempts": ' + "9" * 5000 + "}",
     "invalid JSON: Exceeds the limit (4300 digits)"),
    ("NaN", probe_line().replace('"size": 100', '"size": NaN'),
     "invalid JSON: NaN is not a number JSON allows"),
    ("size past 2 GiB", probe_line(size=10 ** 400), "field 'size': must be from 1 to 2147483647"),
    ("escape sequence in a reason", json.dumps({
        **fragment_line(FailureRecord("5.0.1+driver", "x86_64", "debian", "6.1.0-2-amd64", "1",
                                      "compile", "x")), "reason": "\x1b]0;pwned\x07"}),
     "field 'reason': contains the non-printable character U+001B"),
    ("timestamp of a 13th month", probe_line(built="2026-13-01T00:00:00Z"),
     "is not a real date and time"),
    ("too many values", "[" + ",".join(["{}"] * 300_000) + "]",
     "more than 500000 commas and brackets: too many JSON values to read"),
]


@pytest.mark.parametrize(("line", "message"), [c[1:] for c in FRAGMENT_CASES],
                         ids=[c[0] for c in FRAGMENT_CASES])
def test_a_bad_fragment_line_is_located_and_nothing_is_merged(
        tmp_path: Path, line: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "catalog"
    before = write_catalog(root, "probes: []\n").read_bytes()
    fragment = tmp_path / "f.jsonl"
    fragment.write_text(probe_line(kernel_release="6.1.0-9-amd64",
                                   file="falco_debian_6.1.0-9-amd64_1.o") + "\n" + line + "\n")
    code, _, err = cli(["catalog", "merge", "--catalog", str(root), str(fragment)], capsys)
    assert code == 2
    assert f"error: {fragment}:2:" in err and message in err, err
    assert write_catalog(root, "probes: []\n").read_bytes() == before
    assert sorted(p.name for p in root.rglob("*")) == ["5.0.1+driver", "debian.yaml", "x86_64"]


def test_fragment_bytes_that_are_not_utf8_or_too_long(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALCO_PROBES_LIMIT_JSON_LINE", "1K")
    fragment = tmp_path / "f.jsonl"
    for data, message in ((b'{"kind": "\xff"}\n', f"{fragment}:1: not UTF-8 (byte 10)"),
                          (b"\n" + b" " * 2000 + b"{}\n", f"{fragment}:2: is 2002 bytes; one "
                                                          "line of a fragment")):
        fragment.write_bytes(data)
        with pytest.raises(InputError) as excinfo:
            merge_into(tmp_path / "catalog", [fragment])
        assert excinfo.value.message.startswith(message), excinfo.value.message


def _two_file_merge(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """A catalog with one file and a fragment that changes it and adds a second one."""
    root = tmp_path / "catalog"
    first = write_catalog(root, "probes: []\n")
    fragment = tmp_path / "f.jsonl"
    other = ProbeRecord("5.0.1+driver", "x86_64", "ubuntu-generic", "6.1.0-1-generic", "1",
                        "b" * 64, 100, "https://example.org/u.o")
    fragment.write_text(f"{json.dumps(fragment_line(good_probe()))}\n"
                        f"{json.dumps(fragment_line(other))}\n")
    return first, fragment, first.read_bytes()


def test_merge_refuses_a_target_that_is_not_a_file(tmp_path: Path) -> None:
    first, fragment, before = _two_file_merge(tmp_path)
    (first.parent / "ubuntu-generic.yaml").mkdir()
    with pytest.raises(InputError, match="ubuntu-generic.yaml: is not a regular file; nothing "
                                         "was changed"):
        merge_into(tmp_path / "catalog", [fragment])
    assert first.read_bytes() == before


def test_merge_puts_back_what_it_replaced_when_a_later_file_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills between the two renames: the first file gets its old bytes back."""
    first, fragment, before = _two_file_merge(tmp_path)
    real_replace = os.replace
    calls: list[str] = []

    def replace_then_fail(source: str, target: str) -> None:
        calls.append(str(target))
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace_then_fail)
    with pytest.raises(InputError, match="cannot write: No space left on device; nothing was "
                                         "changed"):
        merge_into(tmp_path / "catalog", [fragment])
    assert calls[0] == str(first) and calls[1].endswith("ubuntu-generic.yaml")
    assert first.read_bytes() == before
    assert sorted(p.name for p in first.parent.iterdir()) == ["debian.yaml"]


def test_merge_refuses_to_grow_a_file_past_what_readers_accept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALCO_PROBES_LIMIT_CATALOG_FILE", "1K")
    fragment = tmp_path / "f.jsonl"
    fragment.write_text("".join(json.dumps(fragment_line(good_probe(f"6.1.0-{i}-amd64"))) + "\n"
                                for i in range(10)))
    with pytest.raises(InputError, match="debian.yaml: would be 2[0-9]{3} bytes after the "
                                         "merge; one catalog file") as excinfo:
        merge_into(tmp_path / "catalog", [fragment])
    assert (excinfo.value.hint or "").startswith("nothing was written")
    assert not (tmp_path / "catalog").exists()


def test_merge_never_writes_through_a_symlinked_folder(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "catalog"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "5.0.1+driver").symlink_to(outside, target_is_directory=True)
    fragment = tmp_path / "f.jsonl"
    fragment.write_text(json.dumps(fragment_line(good_probe())) + "\n")
    code, _, err = cli(["catalog", "merge", "--catalog", str(root), str(fragment)], capsys)
    assert code == 2
    assert f"error: {root}/5.0.1+driver: is a symbolic link to a folder" in err
    assert list(outside.iterdir()) == []
