"""core/yamlio.py: safe YAML reading with located errors, node and alias budgets."""

from __future__ import annotations

import pytest
from hostileinputs import alias_bomb

from builder.core.yamlio import YamlSyntaxError, load_text


def test_aliases_are_counted_wherever_the_bomb_sits() -> None:
    """A bomb behind many plain nodes is still a bomb; a few aliases are fine."""
    padding = "pad: [" + ", ".join(map(str, range(140_000))) + "]\n"
    with pytest.raises(YamlSyntaxError, match="aliases expand to more than 100000"):
        load_text(padding + alias_bomb(5), "bomb.yaml")  # walked first: counted first
    assert load_text("a: &a [1, 2]\nb: *a\nc: *a\n", "ok.yaml") == {
        "a": [1, 2], "b": [1, 2], "c": [1, 2]}
