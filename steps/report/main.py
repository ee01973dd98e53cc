"""The report step (not implemented yet: it validates its arguments and stops)."""

from steps.common.errors import NotImplementedStep
from steps.report.params import ReportParams


def run(params: ReportParams) -> int:
    raise NotImplementedStep("not implemented")
