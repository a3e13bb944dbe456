"""probes.yaml texts the tests start from."""

from __future__ import annotations

# Two driver versions built from libs archives, for Debian kernels from apt.
TWO_DRIVERS = """\
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
