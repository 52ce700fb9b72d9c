"""Benchmark suites (pytest-benchmark) and the report they produce (:mod:`benchmarks.report`)."""
