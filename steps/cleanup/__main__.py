from steps.common.cli import main
from steps.cleanup.params import CleanupParams

if __name__ == "__main__":
    from steps.cleanup.main import run

    main(CleanupParams, run)
