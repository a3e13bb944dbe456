"""core/yamlio.py: safe YAML reading (a key given twice, unsafe tags, alias bombs and
values too long to convert refused with their line) and YAML writing that reads back as
written."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hostileinputs import alias_bomb
from hypothesis import given
from hypothesis import strategies as st

from builder.core.yamlio import YamlSyntaxError, block, compose_with_lines, load_text, scalar


def test_aliases_are_counted_wherever_the_bomb_sits() -> None:
    """A bomb behind many plain nodes is still a bomb; a few aliases are fine."""
    padding = "pad: [" + ", ".join(map(str, range(140_000))) + "]\n"
    with pytest.raises(YamlSyntaxError, match="aliases expand to more than 100000"):
        load_text(padding + alias_bomb(5), "bomb.yaml")  # walked first: counted first
    assert load_text("a: &a [1, 2]\nb: *a\nc: *a\n", "ok.yaml") == {
        "a": [1, 2], "b": [1, 2], "c": [1, 2]}


@pytest.mark.parametrize(("text", "message"), [
    ("a: 1\nb: [1, 2\nc: 3\n", "x.yaml:3: invalid YAML: did not find expected ',' or ']' "
                             "(while parsing a flow sequence)"),
    ("a: 1\nb: 2\na: 3\n", "x.yaml:3: invalid YAML: duplicate key 'a'"),
    ("a: !!python/name:os.system\n", "x.yaml:1: invalid YAML: could not determine a "
                                      "constructor for the tag"),
    ("a: &x [*x]\n", "x.yaml:1: recursive alias: a node contains itself"),
    ("n: " + "9" * 5000 + "\n", "x.yaml: a value cannot be read: Exceeds the limit (4300 "
                               "digits)"),
])
def test_what_load_text_refuses_is_located(text: str, message: str) -> None:
    with pytest.raises(YamlSyntaxError) as refused:
        load_text(text, "x.yaml")
    assert str(refused.value.problem).startswith(message), str(refused.value.problem)
    assert refused.value.hint == "fix the YAML syntax at that line"


def test_compose_with_lines_knows_where_every_key_is() -> None:
    data, key_lines, node_lines = compose_with_lines("top: 1\nitems:\n  - {a: 1,\n     b: 2}\n",
                                                     "x.yaml")
    assert data == {"top": 1, "items": [{"a": 1, "b": 2}]}
    assert key_lines[id(data)] == {"top": 1, "items": 2}
    assert key_lines[id(data["items"][0])] == {"a": 3, "b": 4}
    assert node_lines[id(data["items"])] == 3
    with pytest.raises(YamlSyntaxError, match="x.yaml:2: .*duplicate key 'a'"):
        compose_with_lines("a: 1\na: 2\n", "x.yaml")


@given(st.text(max_size=40))
def test_scalars_round_trip_through_safe_yaml(value: str) -> None:
    doc = f"k: {scalar(value)}\n"
    assert yaml.safe_load(doc) == {"k": value}


@pytest.mark.parametrize("value", ["1", "5.10", "1_1", "yes", "null", "~", "0x1f", "1e3",
                                   "2026-11-25", "12:30", "-", "a: b", "#x", "'q'", "@x",
                                   "<script>", "6.12.48+deb12-amd64", "37~20.04.1"])
def test_tricky_scalars_round_trip(value: str) -> None:
    assert yaml.safe_load(f"- {{k: {scalar(value)}}}\n") == [{"k": value}]


def test_a_block_document_reads_back_as_written() -> None:
    rows: list[dict[str, Any]] = [
        {"kernel_release": "6.1.0-1-amd64", "kernel_version": "1", "size": 10,
         "aliases": ["falco_x_1.o"]},
        {"kernel_release": "5.10", "kernel_version": "2~x"}]
    text = block("generated\nby a test", {"schema_version": 1, "arch": "x86_64"},
                 {"probes": rows, "failures": []})
    assert text.splitlines()[:4] == ["# generated", "# by a test", "schema_version: 1",
                                     "arch: x86_64"]
    assert "failures: []" in text and len(text.splitlines()) == 8   # a line per record
    assert load_text(text, "x.yaml") == {"schema_version": 1, "arch": "x86_64",
                                         "probes": rows, "failures": []}
