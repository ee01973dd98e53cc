"""The synth step (not implemented yet: it validates its arguments and stops)."""

from steps.common.errors import NotImplementedStep
from steps.synth.params import SynthParams


def run(params: SynthParams) -> int:
    raise NotImplementedStep("not implemented")
