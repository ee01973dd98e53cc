from steps.common.cli import main
from steps.publish_model.params import PublishModelParams

if __name__ == "__main__":
    from steps.publish_model.main import run

    main(PublishModelParams, run)
