"""`steps` templates: groups run in order, the steps of a group in parallel, with fan-out, `when`,
continueOn, failFast and aggregated outputs.

Node names follow Argo (`wf[0].hello1`, `wf.A`, `wf.A(0:1)`), so readers of `argo get -o json`
see the same tree.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pipelines.runner.errors import RunnerError
from pipelines.runner.executor import Executor, Owner
from pipelines.runner.phase import NodeType, Phase
from pipelines.runner.status import Node, Placement
from pipelines.runner.tasks import expand, fails_parent, finish_with_outputs, record, run_one, skipped

#: Threads per step group at most: they only wait on processes, `max_pods` bounds the processes.
MAX_THREADS = 256


@dataclass
class _Job:
    """One step of a group: its instances to run (a placement and scope each), or its finished node."""

    step: dict[str, Any]
    fans_out: bool
    todo: list[tuple[Placement, dict[str, str]]] = field(default_factory=list)
    done: Node | None = None
    futures: list[Future[Node | None]] = field(default_factory=list)


def _plan(
    executor: Executor,
    template: dict[str, Any],
    group: Node,
    steps: Node,
    scope: dict[str, str],
    raw: list[dict[str, Any]],
) -> list[_Job]:
    jobs = []
    for step in raw:
        where = f"step {step['name']!r} of template {template['name']!r}"
        at = Placement(f"{group.name}.{step['name']}", step["name"], group, steps.id)
        try:
            fan = expand(step, scope, where)
        except RunnerError as error:
            jobs.append(_Job(step, False, done=skipped(executor, step, at, Phase.ERROR, str(error))))
            continue
        if fan is None:
            jobs.append(_Job(step, False, [(at, scope)]))
        elif not fan:
            jobs.append(_Job(step, True, done=skipped(executor, step, at, Phase.SKIPPED, "Skipped, empty params")))
        else:
            jobs.append(_Job(step, True, [(at.child(sfx, group), dict(scope, **item)) for sfx, item in fan]))
    return jobs


class _Group:
    """One step group running: its instances in a thread pool, failFast across them."""

    def __init__(self, executor: Executor, owner: Owner, node: Node, fail_fast: bool) -> None:
        self.executor, self.owner, self.node, self.fail_fast = executor, owner, node, fail_fast
        self.failed = threading.Event()

    def launch(self, step: dict[str, Any], at: Placement, scope: dict[str, str]) -> Node | None:
        if self.fail_fast and self.failed.is_set():
            return None
        child = run_one(self.executor, step, self.owner, scope, at)
        if fails_parent(step, child.phase):
            self.failed.set()
        return child

    def run(self, jobs: list[_Job], limit: int | None) -> None:
        count = sum(len(job.todo) for job in jobs)
        with ThreadPoolExecutor(max_workers=max(1, min(limit or count or 1, MAX_THREADS))) as pool:
            for job in jobs:
                job.futures = [pool.submit(self.launch, job.step, at, scope) for at, scope in job.todo]


def _assess(jobs: list[_Job], group: Node, scope: dict[str, str]) -> tuple[Phase, str]:
    """Record each step's outputs in `scope`; the group's phase and the first failed child."""
    phase, message = Phase.SUCCEEDED, ""
    for job in jobs:
        ran = [f.result() for f in job.futures]
        children = [job.done] if job.done is not None else [c for c in ran if c is not None]
        prefix = f"steps.{job.step['name']}"
        if not job.fans_out and children:
            record(scope, prefix, children[0], None)
        else:
            record(scope, prefix, children[0] if children else group, children)
        for child in children:
            if fails_parent(job.step, child.phase):
                phase = Phase.FAILED
                message = message or f"child '{child.id}' failed"
    return phase, message


def run_steps(executor: Executor, template: dict[str, Any], owner: Owner, scope: dict[str, str], at: Placement) -> Node:
    node = executor.status.create(at, NodeType.STEPS, template["name"])
    executor.status.start(node)
    scope = dict(scope)
    limit = int(template.get("parallelism") or 0) or None
    fail_fast = template.get("failFast", True)
    phase, message = Phase.SUCCEEDED, ""
    for index, raw in enumerate(template["steps"]):
        raw = raw if isinstance(raw, list) else [raw]
        group_at = Placement(f"{at.name}[{index}]", f"[{index}]", node, node.id)
        group = executor.status.create(group_at, NodeType.STEP_GROUP, template["name"])
        executor.status.start(group)
        jobs = _plan(executor, template, group, node, scope, raw)
        _Group(executor, owner, group, fail_fast).run(jobs, limit)
        group_phase, group_message = _assess(jobs, group, scope)
        message = message or group_message
        executor.status.finish(group, group_phase)
        if group_phase is not Phase.SUCCEEDED:
            phase = Phase.FAILED
            break
    return finish_with_outputs(executor, template, scope, node, phase, message)
