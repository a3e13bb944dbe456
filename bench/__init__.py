"""Benchmarks: ratios measured in one run, printed as tables. See docs/benchmarks.md."""
