"""Benchmarks: each prints a table (figure beside its baseline/target) and can emit JSON."""
