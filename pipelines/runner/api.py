"""The runner as a library: what `kiosk run`, `kiosk demo`, tests and benchmarks call."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipelines.project import default_workdir
from pipelines.runner.loading import resolve
from pipelines.runner.status import Node
from pipelines.runner.workflow_run import Options, WorkflowRun

__all__ = ["default_workdir", "prepare"]


def prepare(
    target: str,
    *,
    env: str | None = "local",
    files: Sequence[Path] = (),
    parameters: dict[str, str] | None = None,
    workdir: Path | None = None,
    command_map: dict[str, str] | None = None,
    max_pods: int = 32,
    backoff_scale: float | None = None,
) -> WorkflowRun:
    """Resolve and check a workflow without running it (errors surface before any process starts)."""
    workflow, library = resolve(target, env, files, parameters)
    if backoff_scale is None:
        backoff_scale = float(os.environ.get("KIOSK_BACKOFF_SCALE", "1"))
    options = Options(
        workdir=(workdir or default_workdir()).resolve(),
        command_map=dict(command_map or {}),
        max_pods=max_pods,
        backoff_scale=backoff_scale,
    )
    workflow_run = WorkflowRun(workflow, library, options)
    workflow_run.check()
    return workflow_run


def run(target: str, *, listener: Callable[[Node], None] | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run to completion and return the final Workflow object (Argo's `argo get -o json` shape)."""
    workflow_run = prepare(target, **kwargs)
    if listener:
        workflow_run.status.listeners.append(listener)
    return workflow_run.run()
