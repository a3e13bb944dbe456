"""Catalog files written by hand: the header of one file, a probe record, the
file itself (hostile content included)."""

from __future__ import annotations

from pathlib import Path

from builder.core.records import ProbeRecord

SHA = "a" * 64
HEAD = "schema_version: 1\ndriver_version: 5.0.1+driver\narch: x86_64\ntarget: debian\n"


def write_catalog(root: Path, body: str | bytes) -> Path:
    """5.0.1+driver/x86_64/debian.yaml under `root`: HEAD then `body`, or exactly `body`'s
    bytes."""
    path = root / "5.0.1+driver" / "x86_64" / "debian.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body if isinstance(body, bytes) else (HEAD + body).encode())
    return path


def good_probe(release: str = "6.1.0-1-amd64", sha: str = SHA) -> ProbeRecord:
    """A valid probe record of that file."""
    return ProbeRecord("5.0.1+driver", "x86_64", "debian", release, "1", sha, 100,
                       f"https://example.org/falco_debian_{release}_1.o")
