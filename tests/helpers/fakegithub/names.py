"""GitHub's rules for the names it is given: the asset names it rewrites, the tag
names it refuses."""

from __future__ import annotations

import re
import unicodedata

_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
_HEX40 = re.compile(r"[0-9a-fA-F]{40}")
_BAD_REF_CHARS = frozenset(" ~^:?*[\\")


def github_asset_name(name: str) -> str:
    """Return the name GitHub stores for an asset uploaded as ``name``.

    Non-ASCII letters are transliterated when they decompose to an ASCII letter plus accents
    (``é`` -> ``e``); every run of characters outside ``[A-Za-z0-9._-]`` becomes one ``.``;
    leading and trailing periods are stripped. ``a~b.o`` -> ``a.b.o``, ``5.15.65+`` ->
    ``5.15.65``, ``a b`` -> ``a.b``, ``.x.`` -> ``x``, ``a+~b`` -> ``a.b``.
    """
    decomposed = unicodedata.normalize("NFKD", name)
    transliterated = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _UNSAFE_RUN.sub(".", transliterated).strip(".")


def validate_tag_name(tag: str) -> str | None:
    """Return why GitHub would refuse ``tag`` as a release tag name, or None if it is fine.

    Rules of ``git check-ref-format`` plus GitHub's refusal of 40-hex names (they look like
    commit SHAs).
    """
    if not tag:
        return "tag_name is missing"
    if _HEX40.fullmatch(tag):
        return "tag_name must not look like a commit SHA (40 hexadecimal characters)"
    if tag.startswith("-"):
        return "tag_name must not start with '-'"
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c in _BAD_REF_CHARS for c in tag):
        return "tag_name contains characters not allowed in a git ref"
    if ".." in tag or "@{" in tag or "//" in tag or tag == "@":
        return "tag_name is not a valid git ref name"
    if tag.startswith("/") or tag.endswith("/") or tag.endswith("."):
        return "tag_name is not a valid git ref name"
    for component in tag.split("/"):
        if component.startswith(".") or component.endswith(".lock"):
            return "tag_name is not a valid git ref name"
    return None
