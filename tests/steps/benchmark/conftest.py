"""The benchmark tests' own fixture: one real measured sweep per session (helpers in bench_fixtures.py,
a unique module name, because every directory's conftest is imported as `conftest`).
"""

from __future__ import annotations

import pytest

from tests.steps.benchmark.bench_fixtures import Sweep, make_sweep


@pytest.fixture(scope="session")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """Three configurations of a real (CPU) PP-OCRv4 detection run over synth images."""
    return make_sweep(tmp_path_factory.mktemp("sweep"))
