"""What `steps` and `dag` execution need from a workflow run: a protocol, so neither imports workflow_run.py.

workflow_run.py implements it and imports composite.py and dag.py; they depend only on this module, so
the modules form no import circle (tests/test_import_graph.py checks it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

from pipelines.runner.status import Node, Placement, Status


@dataclass(frozen=True)
class Owner:
    """The template set a template reference resolves in (the Workflow, or a WorkflowTemplate)."""

    name: str
    templates: dict[str, dict[str, Any]]


class Executor(Protocol):
    """Runs one node of a workflow; implemented by `pipelines.runner.workflow_run.WorkflowRun`."""

    status: Status
    cancelled: threading.Event
    cancel_message: str

    def execute(self, step: dict[str, Any], owner: Owner, at: Placement, arguments: dict[str, str]) -> Node:
        """Run the template `step` names at `at`; never raises for a workflow-level failure."""
        ...

    def publish_global(self, param: dict[str, Any], value: str) -> None:
        """Record an output parameter's `globalName`, if it has one."""
        ...
