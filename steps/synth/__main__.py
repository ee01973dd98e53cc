"""`python -m steps.synth`: parse the params model, then import and run the step."""

from steps.common.cli import main
from steps.synth.params import SynthParams

if __name__ == "__main__":
    from steps.synth.main import run

    main(SynthParams, run)
