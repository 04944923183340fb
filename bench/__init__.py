"""Measurements of optimist, written to docs/benchmarks.md; never pass/fail."""
