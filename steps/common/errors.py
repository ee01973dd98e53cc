"""The one error type a step raises for bad input: it becomes a one-line message and exit code 2."""

from __future__ import annotations


class StepError(Exception):
    """Bad input (params, image, model, storage, config). The message names the input and the problem."""

    exit_code = 2


class NotImplementedStep(StepError):
    """A step that exists in a template but does no work yet: it says so and never fakes output."""

    exit_code = 3
