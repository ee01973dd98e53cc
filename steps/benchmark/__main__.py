from steps.common.cli import main
from steps.benchmark.params import BenchmarkParams

if __name__ == "__main__":
    from steps.benchmark.main import run

    main(BenchmarkParams, run)
