"""`python -m steps.publish_model`: parse the params model, then import and run the step."""

from steps.common.cli import main
from steps.publish_model.params import PublishModelParams

if __name__ == "__main__":
    from steps.publish_model.main import run

    main(PublishModelParams, run)
