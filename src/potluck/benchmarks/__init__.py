"""Benchmarks (``potluck bench …``); figures and how to rerun them in docs/benchmarks.md."""
