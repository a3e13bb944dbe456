"""Tools every stage may use, below the stages: they import only `core`.

Takes: URLs, archives, object files, a Debian archive's sources. Gives: checked
downloads, safely extracted trees, ELF verdicts, kernels and packages with their URL,
sha256 and size.

- fetch.py: downloads, cached and checked against a known sha256 and size;
- extract.py: safe extraction of .deb, .rpm and tar archives (no absolute paths, no
  `..`, no link escaping the destination), on every Python from 3.11.2;
- elfcheck.py: is an object what it claims (ELF class, machine, program sections);
- apt.py: a Debian archive read through apt with a private configuration, so the
  signed Release files and the package hashes are verified (AptArchive).
"""
