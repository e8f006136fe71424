"""Benchmarks (scripts, not tests): ``python -m benchmark --help``."""
