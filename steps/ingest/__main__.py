"""`python -m steps.ingest`: parse the params model, then import and run the step."""

from steps.common.cli import main
from steps.ingest.params import IngestParams

if __name__ == "__main__":
    from steps.ingest.main import run

    main(IngestParams, run)
