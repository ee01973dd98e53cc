"""The infer step (not implemented yet: it validates its arguments and stops)."""

from steps.common.errors import NotImplementedStep
from steps.infer.params import InferParams


def run(params: InferParams) -> int:
    raise NotImplementedStep("not implemented")
