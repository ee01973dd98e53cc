"""The cleanup step (not implemented yet: it validates its arguments and stops)."""

from steps.common.errors import NotImplementedStep
from steps.cleanup.params import CleanupParams


def run(params: CleanupParams) -> int:
    raise NotImplementedStep("not implemented")
