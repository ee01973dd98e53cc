"""Registers the synth/benchmark fixtures (they live in bench_fixtures.py: a unique module name,
because every directory's conftest is imported as the same module `conftest`)."""

from bench_fixtures import prom_stack, sweep  # noqa: F401
