"""The commands a workflow's `run:` scripts call, read from their text."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)
SHELL_VARIABLE = re.compile(r"\$(?:\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)")
SHELL_OPERATORS = {"|", "||", "&", "&&", ";", ";;", ">", ">>", "<", "2>", ")", "("}


def cli_invocations(script: str, tool: str = "falco-probes",
                    placeholder: str = "1") -> Iterator[list[str]]:
    """The argument lists of every `falco-probes ...` / `python -m builder ...` (or other
    `tool`) in a script, with `${{ ... }}` expressions and shell variables replaced by
    `placeholder`."""
    text = script.replace("\\\n", " ")
    for line in text.splitlines():
        line = SHELL_VARIABLE.sub(placeholder, EXPRESSION.sub(placeholder, line))
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        for i, token in enumerate(tokens):
            if token == tool or token.endswith("/" + tool):
                start = i + 1
            elif tool == "falco-probes" and token.split("/")[-1].startswith("python") and \
                    tokens[i + 1:i + 3] == ["-m", "builder"]:
                start = i + 3
            else:
                continue
            end = next((j for j in range(start, len(tokens)) if tokens[j] in SHELL_OPERATORS),
                       len(tokens))
            yield tokens[start:end]
