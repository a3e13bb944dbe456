"""Hostile inputs, class by class (issue 11): each one is refused with an `error:` line naming
its file and line, with the documented exit code, without a traceback, writing nothing
outside the target folder and nothing half. Network inputs: test_hostile_net.py."""

from __future__ import annotations

import errno
import io
import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from test_publish import Spec, directory_store, write_report

from builder.cli import main
from builder.core import limits
from builder.core.catalog import check_catalog, fragment_line, load_catalog, merge_into
from builder.core.errors import ConflictError, InputError, ProblemsError
from builder.core.limits import human
from builder.core.naming import parse_os_release
from builder.core.records import FailureRecord, ProbeRecord
from builder.core.versions import BUILTIN_RELEASES, FalcoVersion
from builder.core.yamlio import YamlSyntaxError, load_text
from builder.kernels.crawler import load_crawler
from builder.publish.stage import Provenance, load_reports
from builder.site.load import load_and_write

SHA = "a" * 64
HEAD = "schema_version: 1\ndriver_version: 5.0.1+driver\narch: x86_64\ntarget: debian\n"
NODE = ["--uname-r", "6.1.0-1-amd64", "--uname-v", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.0-1",
        "--uname-m", "x86_64", "--falco-version", "0.35.0"]


def empty_catalog(tmp: Path) -> Path:
    """A catalog folder with nothing in it (find refuses a folder that is not there)."""
    root = tmp / "empty-catalog"
    root.mkdir(exist_ok=True)
    return root


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


def alias_bomb(levels: int = 9) -> str:
    """The billion laughs: each level is ten aliases of the one before (10^9 leaves)."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def write_catalog(root: Path, body: str | bytes) -> Path:
    path = root / "5.0.1+driver" / "x86_64" / "debian.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body if isinstance(body, bytes) else (HEAD + body).encode())
    return path


def os_release(tmp_path: Path) -> Path:
    path = tmp_path / "os-release"
    path.write_text("ID=debian\nVERSION_ID=12\n")
    return path


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


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


def test_aliases_are_counted_wherever_the_bomb_sits() -> None:
    """A bomb behind many plain nodes is still a bomb; a few aliases are fine."""
    padding = "pad: [" + ", ".join(map(str, range(140_000))) + "]\n"
    with pytest.raises(YamlSyntaxError, match="aliases expand to more than 100000"):
        load_text(padding + alias_bomb(5), "bomb.yaml")  # walked first: counted first
    assert load_text("a: &a [1, 2]\nb: *a\nc: *a\n", "ok.yaml") == {
        "a": [1, 2], "b": [1, 2], "c": [1, 2]}


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


# --- catalog merge: refused fragments change nothing; writes go all or nowhere -----------

def good_probe(release: str = "6.1.0-1-amd64", sha: str = SHA) -> ProbeRecord:
    return ProbeRecord("5.0.1+driver", "x86_64", "debian", release, "1", sha, 100,
                       f"https://example.org/falco_debian_{release}_1.o")


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


# --- probes.yaml ----------------------------------------------------------------------------

CONFIG = """\
schema_version: 1
driver_versions:
  - version: 6.0.1+driver
    falco: [0.36.0, 0.36.2]
    source: {kind: libs-archive}
  - version: 5.0.1+driver
    falco: [0.35.0]
    source: {kind: libs-archive}
targets:
  - {name: debian, kernels: apt}
"""

CONFIG_CASES = [
    ("full-width digits re-pointing a release", CONFIG.replace("[0.35.0]", "[０.３６.２]"),
     "'０.３６.２' is not a Falco version like 0.36.2"),
    ("backoff that overflows a date", CONFIG + "build: {backoff_hours: [1" + "0" * 30 + "]}\n",
     "is not a number of hours from 1 to 87600 (ten years)"),
    ("empty store path", CONFIG + "store: {path: ''}\n",
     "field 'path': must not be empty (it would mean the working directory)"),
    ("bidi override in site_url", 'site_url: "https://probes.example/\\u202e"\n' + CONFIG,
     "an http(s) URL in printable ASCII"),
    ("alias bomb", CONFIG + alias_bomb(), "aliases expand to more than 100000 extra nodes"),
    ("duplicate key", CONFIG + "targets: []\n", "duplicate key 'targets'"),
    ("a million jobs", CONFIG + "build: {jobs: 1000000}\n", "must be from 1 to 256"),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in CONFIG_CASES],
                         ids=[c[0] for c in CONFIG_CASES])
def test_probes_yaml_refused_with_its_line(tmp_path: Path, text: str, message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "probes.yaml"
    config.write_text(text)
    code, _, err = cli(["find", "--config", str(config), "--catalog", str(empty_catalog(tmp_path)),
                        "--os-release", str(os_release(tmp_path)), *NODE], capsys)
    assert code == 2
    assert f"error: {config}" in err and message in err, err


def test_versions_are_ascii() -> None:
    with pytest.raises(InputError, match="is not a version like"):
        FalcoVersion.parse("０.３６.２")


# --- plans and kernel lists -----------------------------------------------------------------

PLAN_CASES = [
    ("nested JSON", "[" * 100_000, "invalid JSON: nested too deeply to read"),
    ("integer over 4300 digits", '{"schema_version": ' + "1" * 5000 + "}", "Exceeds the limit"),
    ("jobs not a list", '{"schema_version": 2, "jobs": 7}', "jobs must be a list"),
    ("shards not lists", '{"schema_version": 2, "jobs": [], "shards": [[true]]}',
     "shards must be at most 256 lists of job numbers"),
    ("too many values", "[" + ",".join(["[]"] * 300_000) + "]", "too many JSON values"),
    ("bidi override in uname -v", json.dumps({"schema_version": 2, "jobs": [{
        "probes": [{"driver_version": "5.0.1+driver", "target": "debian",
                    "kernel_release": "6.1.0-1-amd64", "kernel_version": "1",
                    "arch": "x86_64"}], "kernel": {
            "target": "debian", "host": {"os_id": "debian", "uname_r": "6.1.0-1-amd64",
                                         "uname_v": "#1 \u202eSMP", "uname_m": "x86_64"}}}]}),
     "field 'uname_v': contains the non-printable character U+202E"),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in PLAN_CASES],
                         ids=[c[0] for c in PLAN_CASES])
def test_a_bad_plan_is_refused_before_anything_is_built(
        tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "probes.yaml"
    config.write_text(CONFIG)
    plan = tmp_path / "plan.json"
    plan.write_text(text)
    code, _, err = cli(["build", "--config", str(config), "--plan", str(plan), "--out",
                        str(tmp_path / "out")], capsys)
    assert code == 2
    assert f"error: {plan}" in err and message in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("data", "message"), [
    (b"[" * 100_000, "invalid JSON: nested too deeply to read"),
    (b'{"Debian": [{"kernelversion": ' + b"7" * 5000 + b"}]}", "Exceeds the limit"),
    (b'{"Debian": "\xff"}', "list.json:1: not UTF-8"),
], ids=["nested", "long integer", "not UTF-8"])
def test_kernel_lists_refused_with_their_location(tmp_path: Path, data: bytes,
                                                  message: str) -> None:
    path = tmp_path / "list.json"
    path.write_bytes(data)
    with pytest.raises(InputError) as excinfo:
        load_crawler(str(path))
    assert message in excinfo.value.message


def test_kernel_list_over_its_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALCO_PROBES_LIMIT_KERNEL_LIST", "1K")
    path = tmp_path / "list.json"
    path.write_text("{}" + " " * 2000)
    with pytest.raises(InputError, match="is 2002 bytes; a kernel-crawler list"):
        load_crawler(str(path))
    with pytest.raises(InputError, match="is a device, not a regular file"):
        load_crawler("/dev/zero")


# --- find: the node's files, and a fleet's batch ------------------------------------------------

def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def _zero_root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "etc").mkdir(parents=True)
    (tmp_path / "root" / "etc" / "os-release").symlink_to("/dev/zero")
    return tmp_path / "root"


def _big(tmp_path: Path) -> Path:
    path = tmp_path / "big"
    path.write_text("ID=debian\n" + "#" * 70_000 + "\n")
    return path


NODE_CASES: list[tuple[str, list[str], Callable[[Path], Path], str]] = [
    ("/dev/zero as os-release", ["--os-release"], lambda _: Path("/dev/zero"),
     "is a device, not a regular file"),
    ("a FIFO as os-release", ["--os-release"], _fifo, "is a FIFO, not a regular file"),
    ("HOST_ROOT whose os-release links to /dev/zero", ["--host-root"], _zero_root,
     "is a device, not a regular file"),
    ("os-release over 64 KiB", ["--os-release"], _big,
     "is 70011 bytes; an os-release or /etc/VERSION file (find) may be at most 64KB"),
    ("a FIFO as /etc/VERSION", ["--etc-version"], _fifo, "is a FIFO, not a regular file"),
]


@pytest.mark.parametrize(("flag", "make", "message"), [c[1:] for c in NODE_CASES],
                         ids=[c[0] for c in NODE_CASES])
def test_node_files_are_bounded_and_regular(tmp_path: Path, flag: list[str],
                                            make: Callable[[Path], Path], message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["find", "--catalog", str(empty_catalog(tmp_path)), *flag, str(make(tmp_path)), *NODE]
    if flag != ["--os-release"] and flag != ["--host-root"]:
        argv += ["--os-release", str(os_release(tmp_path))]
    code, _, err = cli(argv, capsys)
    assert code == 2
    assert err.startswith("error: ") and message in err, err


def test_parse_os_release_is_shells_reading_in_linear_time() -> None:
    """Same words as shlex (which test_naming's cases use), on inputs shlex takes minutes for."""
    assert parse_os_release('ID="ub"untu # comment\nVERSION_ID=\'22.04\' x\nNAME="a \\"b\\""'
                            ) == {"ID": "ubuntu", "VERSION_ID": "22.04", "NAME": 'a "b"'}
    assert parse_os_release("ID='unclosed\n") == {"ID": "unclosed"}
    huge = parse_os_release("ID=" + "a" * 4_000_000 + "\nVERSION_ID=" + "b " * 1_000_000)
    assert len(huge["ID"]) == 4_000_000 and huge["VERSION_ID"] == "b"


def test_batch_answers_every_line_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FALCO_PROBES_LIMIT_JSON_LINE", "8K")
    good = json.dumps({"id": "good", "falco_version": "0.35.0", "uname_r": "6.1.0-1-amd64",
                       "uname_v": "#1 SMP Debian 6.1.0-1", "uname_m": "x86_64",
                       "os_release": "ID=debian\n"}).encode()
    lines = [good, b'{"id": "\xff\xfe"}', b"{not json", b"[" * 3_000,
             b'{"uname_r": ' + b"1" * 5000 + b"}", b'{"x": "' + b"y" * 100_000 + b'"}',
             json.dumps({**json.loads(good), "id": "huge os-release",
                         "os_release": "ID=x\n" + "#" * 70_000}).encode()[:3000] + b"}",
             good.replace(b'"good"', b'"last"')]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\n".join(lines) + b"\n")))
    code, out, _ = cli(["find", "--catalog", str(empty_catalog(tmp_path)), "--batch", "-"], capsys)
    results = [json.loads(line) for line in out.splitlines()]
    assert code == 2
    assert [r["line"] for r in results] == list(range(1, 9))
    errors = [r.get("error", "") for r in results]
    assert results[0]["id"] == "good" and results[0]["status"] == "not_built"
    assert errors[1] == "-:2: not UTF-8 (byte 8)"
    assert errors[2].startswith("-:3: invalid JSON: Expecting property name")
    assert errors[3] == "-:4: invalid JSON: nested too deeply to read"
    assert errors[4].startswith("-:5: invalid JSON: Exceeds the limit (4300 digits)")
    assert errors[5].startswith("-:6: is larger; one line of a fragment, a build report or "
                                "`find --batch` input may be at most 8KB")
    assert errors[6].startswith("-:7: invalid JSON")
    assert results[7]["id"] == "last" and results[7]["status"] == "not_built"


def test_batch_os_release_is_bounded_like_the_file(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    batch = tmp_path / "nodes.jsonl"
    batch.write_text(json.dumps({"falco_version": "0.35.0", "uname_r": "6.1.0-1-amd64",
                                 "uname_v": "#1", "uname_m": "x86_64",
                                 "os_release": "ID=x\n" + "#" * 70_000}) + "\n")
    code, out, _ = cli(["find", "--catalog", str(empty_catalog(tmp_path)), "--batch", str(batch)],
                       capsys)
    assert code == 2
    assert json.loads(out)["error"] == (f"{batch}:1: 'os_release' is 70005 characters; at most "
                                        "65536 allowed (FALCO_PROBES_LIMIT_OS_RELEASE)")
    code, _, err = cli(["find", "--catalog", str(empty_catalog(tmp_path)), "--batch", "/dev/zero"],
                       capsys)
    assert code == 2 and "error: /dev/zero: is a device, not a file of JSON lines" in err


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


def test_debug_prints_the_traceback_and_keeps_the_exit_code(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--debug", "find", "--catalog", str(tmp_path), "--os-release", "/dev/zero",
                 *NODE])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback (most recent call last)" in err
    assert err.rstrip().splitlines()[-2:] == [
        "error: os-release: /dev/zero: is a device, not a regular file",
        "hint: give the path of a regular file"]


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


# --- the directory store: nothing outside, nothing half ---------------------------------------

def test_a_conflict_on_one_spelling_writes_nothing_for_that_probe(tmp_path: Path) -> None:
    build = tmp_path / "build"
    write_report(build, [Spec("6.1.0-1-amd64", target="debian", driver_version="5.0.1+driver")])
    (artifact,), _ = load_reports([build], Provenance())
    store = directory_store(tmp_path / "store")
    encoded = store.root / "5.0.1%2Bdriver" / "x86_64" / artifact.file
    encoded.parent.mkdir(parents=True)
    encoded.write_bytes(b"someone else's bytes")
    with pytest.raises(ConflictError, match="already holds other bytes"):
        store.place(artifact.path, artifact.probe)
    files = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*")
                   if p.is_file())
    assert files == [f"5.0.1%2Bdriver/x86_64/{artifact.file}"]


@pytest.mark.parametrize("command", ["publish", "mirror"])
def test_no_write_through_a_symlinked_folder_of_the_store(tmp_path: Path, command: str,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    build = tmp_path / "build"
    write_report(build, [Spec("6.1.0-1-amd64", target="debian", driver_version="5.0.1+driver")])
    (artifact,), _ = load_reports([build], Provenance())
    store, outside = tmp_path / "store", tmp_path / "outside"
    store.mkdir()
    outside.mkdir()
    (store / "5.0.1+driver").symlink_to(outside, target_is_directory=True)
    if command == "publish":
        argv = ["publish", str(build), "--fragment", str(tmp_path / "f.jsonl"), "--path",
                str(store)]
    else:
        root = tmp_path / "catalog"
        probe = replace(artifact.probe, url=artifact.path.as_uri())
        merge_into(root, [_fragment(tmp_path, probe)])
        argv = ["mirror", str(store), "--catalog", str(root)]
    code, _, err = cli(argv, capsys)
    assert code == 2
    assert f"error: {store}/5.0.1+driver: is a symbolic link inside {store}" in err
    assert list(outside.iterdir()) == []


def _fragment(tmp_path: Path, probe: ProbeRecord) -> Path:
    path = tmp_path / "probe.jsonl"
    path.write_text(json.dumps(fragment_line(probe)) + "\n")
    return path


def test_audit_lists_a_fifo_in_the_store_without_reading_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store" / "5.0.1+driver" / "x86_64"
    store.mkdir(parents=True)
    os.mkfifo(store / "falco_debian_6.1.0-1-amd64_1.o")
    (store / "link.o").symlink_to("/dev/zero")
    code, out, _ = cli(["audit", "--path", str(tmp_path / "store"), "--catalog",
                        str(tmp_path / "c")], capsys)
    assert code == 1
    assert out.splitlines() == [
        "not_in_catalog: 5.0.1+driver/x86_64/falco_debian_6.1.0-1-amd64_1.o: a symbolic link "
        "or special file (FIFO, device) in the store; not read",
        "not_in_catalog: 5.0.1+driver/x86_64/link.o: a symbolic link or special file (FIFO, "
        "device) in the store; not read"]


def test_verify_does_not_read_a_fifo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "catalog"
    write_catalog(root, "probes: []\n")
    code, out, _ = cli(["verify", "--catalog", str(root), str(_fifo(tmp_path)), "/dev/zero"],
                       capsys)
    assert code == 1
    assert out.splitlines() == [f"UNREADABLE  {tmp_path}/fifo: is a FIFO, not a regular file",
                                "UNREADABLE  /dev/zero: is a device, not a regular file"]


def _documented(limit: limits.Limit) -> str:
    """A limit's default as docs/limits.md writes it: 64 KiB, 100,000, 300 s."""
    if limit.unit == "bytes":
        amount = human(limit.default)
        return f"{amount[:-1]} {amount[-1]}iB"
    return f"{limit.default:,}" if limit.unit == "count" else f"{limit.default} s"


def test_every_limit_is_documented_with_its_default() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "limits.md").read_text()
    rows = {line.split("|")[3].strip(" `"): line.split("|")[2].strip()
            for line in text.splitlines() if line.startswith("| ") and "_LIMIT_" in line}
    assert rows == {limit.env: _documented(limit) for limit in limits.ALL}


def test_a_fragment_that_is_a_folder_is_bad_input(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    write_report(tmp_path / "build", [Spec("6.1.0-1-amd64", target="debian")])
    code, _, err = cli(["publish", str(tmp_path / "build"), "--fragment", str(tmp_path),
                        "--path", str(tmp_path / "store")], capsys)
    assert code == 2
    assert f"error: {tmp_path}: cannot open the fragment: Is a directory" in err
