"""falco-probes: build, publish, catalog and find pre-compiled Falco eBPF probes."""

__version__ = "0.1.0"
