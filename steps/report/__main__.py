"""`python -m steps.report`: parse the params model, then import and run the step."""

from steps.common.cli import main
from steps.report.params import ReportParams

if __name__ == "__main__":
    from steps.report.main import run

    main(ReportParams, run)
