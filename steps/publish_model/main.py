"""The publish_model step (not implemented yet: it validates its arguments and stops)."""

from steps.common.errors import NotImplementedStep
from steps.publish_model.params import PublishModelParams


def run(params: PublishModelParams) -> int:
    raise NotImplementedStep("not implemented")
