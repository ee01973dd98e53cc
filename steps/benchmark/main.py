"""The benchmark step (not implemented yet: it validates its arguments and stops)."""

from steps.common.errors import NotImplementedStep
from steps.benchmark.params import BenchmarkParams


def run(params: BenchmarkParams) -> int:
    raise NotImplementedStep("not implemented")
