"""`python -m steps.benchmark`: parse the params model, then import and run the step."""

from steps.benchmark.params import BenchmarkParams
from steps.common.cli import main

if __name__ == "__main__":
    from steps.benchmark.main import run

    main(BenchmarkParams, run)
