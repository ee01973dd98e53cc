"""Registers the synth/benchmark fixtures (they live in bench_fixtures.py: a unique module name,
because every directory's conftest is imported as the same module `conftest`).
"""

from tests.benchmark.bench_fixtures import prom_stack, sweep  # noqa: F401
from tests.fixtures.s3 import s3_bucket, s3_server  # noqa: F401 - the S3 emulator (moto), for s3:// runs
