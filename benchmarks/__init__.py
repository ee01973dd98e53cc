"""Benchmarks: each `benchmarks/<name>.py --json` measures a ratio against a baseline in one run."""
