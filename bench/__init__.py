"""Benchmarks: measured against a ceiling and a baseline in the same run, never as timed tests."""
