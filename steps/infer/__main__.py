from steps.common.cli import main
from steps.infer.params import InferParams

if __name__ == "__main__":
    from steps.infer.main import run

    main(InferParams, run)
