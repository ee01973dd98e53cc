"""`python -m steps.infer`: parse the params model, then import and run the step."""

from steps.common.cli import main
from steps.infer.params import InferParams

if __name__ == "__main__":
    from steps.infer.main import run

    main(InferParams, run)
