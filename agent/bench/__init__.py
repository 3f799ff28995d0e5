"""Benchmarks: config, results log, runner, report."""
