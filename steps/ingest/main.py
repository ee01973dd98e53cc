"""The ingest step (not implemented yet: it validates its arguments and stops)."""

from steps.common.errors import NotImplementedStep
from steps.ingest.params import IngestParams


def run(params: IngestParams) -> int:
    raise NotImplementedStep("not implemented")
