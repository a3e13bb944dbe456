"""core/secrets.py: a registered secret, in every form it travels in, never reaches an
output; what is too short to be a secret is left alone."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

from builder.core import secrets


@pytest.fixture(autouse=True)
def _no_secret_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with none registered; the suite's own come back after it."""
    monkeypatch.setattr(secrets, "_secrets", ())


def test_a_secret_and_its_quoted_and_base64_forms_are_masked() -> None:
    token = "ghp_abc/def+ghi=jkl"
    secrets.register(f"  {token}\n")
    basic = base64.b64encode(token.encode()).decode().rstrip("=")
    text = (f"token {token}; url ?t={urllib.parse.quote(token, safe='')}; "
            f"Authorization: Basic {basic}==")
    assert secrets.redact(text) == "token ***; url ?t=***; Authorization: Basic ***=="


def test_short_values_are_not_masked_and_longer_forms_win() -> None:
    secrets.register("abc")                       # too common to mask: "abc" is everywhere
    assert secrets.redact("abcabc") == "abcabc"
    secrets.register("s3cret-token")
    secrets.register("s3cret-token-plus")         # contains the first: masked whole
    assert secrets.redact("s3cret-token-plus and s3cret-token") == "*** and ***"
    secrets.forget_all()
    assert secrets.redact("s3cret-token") == "s3cret-token"
