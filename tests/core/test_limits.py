"""core/limits.py: every size, depth and count limit, its environment override and its
documentation."""

from __future__ import annotations

import pytest
from testpaths import ROOT

from builder.core import limits
from builder.core.errors import InputError
from builder.core.limits import human


def _documented(limit: limits.Limit) -> str:
    """A limit's default as docs/limits.md writes it: 64 KiB, 100,000, 300 s."""
    if limit.unit == "bytes":
        amount = human(limit.default)
        return f"{amount[:-1]} {amount[-1]}iB"
    return f"{limit.default:,}" if limit.unit == "count" else f"{limit.default} s"


def test_every_limit_is_documented_with_its_default() -> None:
    text = (ROOT / "docs" / "limits.md").read_text()
    rows = {line.split("|")[3].strip(" `"): line.split("|")[2].strip()
            for line in text.splitlines() if line.startswith("| ") and "_LIMIT_" in line}
    assert rows == {limit.env: _documented(limit) for limit in limits.ALL}


@pytest.mark.parametrize(("raw", "value"), [("", 64 * 1024), ("100", 100), ("2k", 2048),
                                           (" 8M ", 8 << 20), ("1G", 1 << 30)])
def test_the_environment_overrides_a_limit(monkeypatch: pytest.MonkeyPatch, raw: str,
                                           value: int) -> None:
    monkeypatch.setenv(limits.OS_RELEASE.env, raw)
    assert limits.OS_RELEASE.env == "FALCO_PROBES_LIMIT_OS_RELEASE"
    assert limits.OS_RELEASE.get() == value


@pytest.mark.parametrize("raw", ["0", "-1", "1T", "lots", "1.5M", "9" * 16])
def test_a_bad_override_is_refused_with_an_example(monkeypatch: pytest.MonkeyPatch,
                                                   raw: str) -> None:
    monkeypatch.setenv(limits.YAML_NODES.env, raw)
    with pytest.raises(InputError, match="is not a positive number") as refused:
        limits.YAML_NODES.get()
    assert refused.value.hint == "for example FALCO_PROBES_LIMIT_YAML_NODES=10"


def test_an_exceeded_limit_says_how_to_raise_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(limits.CONFIG.env, "2K")
    error = limits.CONFIG.exceeded("probes.yaml", 4096)
    assert error.message == "probes.yaml: is 4096 bytes; probes.yaml may be at most 2KB"
    assert error.hint == ("nothing was read; if it is genuine, raise the limit with "
                          "FALCO_PROBES_LIMIT_CONFIG (see docs/limits.md)")
    assert [human(n) for n in (1 << 30, 3 << 20, 2048, 1000)] == ["1G", "3M", "2K", "1000"]
