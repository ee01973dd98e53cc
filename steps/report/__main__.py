from steps.common.cli import main
from steps.report.params import ReportParams

if __name__ == "__main__":
    from steps.report.main import run

    main(ReportParams, run)
