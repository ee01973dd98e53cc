"""Errors the runner raises before or while running a workflow."""

from __future__ import annotations


class RunnerError(Exception):
    """A manifest the runner cannot run as written (bad reference, bad expression, bad input)."""


class UnsupportedFeature(RunnerError):
    """An Argo feature with semantics the local runner does not implement: never silently skipped."""

    def __init__(self, feature: str, template: str, hint: str = "") -> None:
        self.feature = feature
        self.template = template
        extra = f" ({hint})" if hint else ""
        super().__init__(
            f"unsupported Argo feature {feature!r} in template {template!r}: the local runner cannot run it{extra}"
        )
