"""`python -m steps.cleanup`: parse the params model, then import and run the step."""

from steps.cleanup.params import CleanupParams
from steps.common.cli import main

if __name__ == "__main__":
    from steps.cleanup.main import run

    main(CleanupParams, run)
