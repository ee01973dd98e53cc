"""`dag` templates: scheduling by `depends`, Omitted tasks, `target`, failFast and Argo's phase rule.

The DAG phase follows workflow/controller/dag.go `assessDAGPhase`: each target task (the leaves,
or `dag.target`) takes the phase of its branch, an Omitted or Skipped task inheriting the phase of
the branch that led to it; a failed branch fails the DAG unless the task continues on it. So a
failure that a later task handles (`C.Failed`) does not fail the DAG.
"""

from __future__ import annotations

import queue
import re
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pipelines.runner import depends as dep
from pipelines.runner.errors import RunnerError
from pipelines.runner.executor import Executor, Owner
from pipelines.runner.phase import NodeType, Phase
from pipelines.runner.status import Node, Placement
from pipelines.runner.tasks import expand, fails_parent, finish_with_outputs, record, run_one, skipped
from pipelines.runner.templating import substitute

#: Threads per DAG (and per fanned-out task) at most: they only wait; `max_pods` bounds processes.
MAX_THREADS = 256


class _Graph:
    def __init__(self, template: dict[str, Any], scope: dict[str, str]) -> None:
        dag = template["dag"]
        self.tasks = {t["name"]: t for t in dag.get("tasks") or []}
        self.exprs = {n: dep.depends_of(t) for n, t in self.tasks.items()}
        for expr in self.exprs.values():
            dep.check_names(expr, list(self.tasks), template["name"])
        self.deps = {n: dep.referenced_tasks(e) for n, e in self.exprs.items()}
        target = substitute(str(dag.get("target") or ""), scope, f"template {template['name']!r} dag.target")
        names = [t for t in re.split(r"[\s,]+", target) if t]
        for name in names:
            if name not in self.tasks:
                raise RunnerError(f"template {template['name']!r}: dag.target names unknown task {name!r}")
        if names:
            needed, todo = set(), list(names)
            while todo:
                name = todo.pop()
                if name not in needed:
                    needed.add(name)
                    todo.extend(self.deps[name])
            self.targets = names
        else:
            needed = set(self.tasks)
            used = {d for ds in self.deps.values() for d in ds}
            self.targets = sorted(n for n in self.tasks if n not in used)
        self.needed = [n for n in self.tasks if n in needed]  # manifest order
        self.dependents = {n: [m for m in self.needed if n in self.deps[m]] for n in self.needed}

    def assess(self, states: dict[str, dep.TaskState]) -> Phase:
        branch: dict[str, Phase] = {}
        todo = deque((n, Phase.SUCCEEDED) for n in self.needed if not self.deps[n])
        seen = set()
        while todo:
            name, inherited = todo.popleft()
            if (name, inherited) in seen or name not in states:
                continue
            seen.add((name, inherited))
            phase = states[name].phase if states[name].phase.completed else inherited
            if name in self.targets and not (name in branch and branch[name].failed):
                branch[name] = phase
            todo.extend((d, phase) for d in self.dependents[name])
        for name in self.targets:
            if name in branch and fails_parent(self.tasks[name], branch[name]):
                return branch[name]
        return Phase.SUCCEEDED


def _group_phase(children: list[Node]) -> Phase:
    if not children or all(c.phase is Phase.SKIPPED for c in children):
        return Phase.SKIPPED
    failed = [c.phase for c in children if c.phase.failed]
    return failed[-1] if failed else Phase.SUCCEEDED


#: What a finished task reports to the scheduler: its name, its node, its children if it fanned out.
_Done = tuple[str, Node, list[Node] | None]


class _DagRun:
    """One run of a dag template: tasks start as their `depends` are met, in a thread pool."""

    def __init__(
        self,
        executor: Executor,
        template: dict[str, Any],
        owner: Owner,
        scope: dict[str, str],
        node: Node,
        graph: _Graph,
    ) -> None:
        self.executor, self.template, self.owner, self.node, self.graph = executor, template, owner, node, graph
        self.scope = dict(scope)
        limit = int(template.get("parallelism") or 0)
        self.slots = threading.BoundedSemaphore(limit) if limit else None
        self.fail_fast = template["dag"].get("failFast", True)
        self.states: dict[str, dep.TaskState] = {}
        self.nodes: dict[str, Node] = {}
        self.done: queue.Queue[_Done] = queue.Queue()
        self.stop = False

    def _at(self, task_name: str, parent: Node | None) -> Placement:
        return Placement(f"{self.node.name}.{task_name}", task_name, parent, self.node.id)

    def _leaf(self, task: dict[str, Any], scope: dict[str, str], at: Placement) -> Node:
        if self.slots is None:
            return run_one(self.executor, task, self.owner, scope, at)
        with self.slots:
            return run_one(self.executor, task, self.owner, scope, at)

    def _fan_out(self, task: dict[str, Any], scope: dict[str, str], at: Placement, fan: list) -> _Done:
        group = self.executor.status.create(at, NodeType.TASK_GROUP, str(task.get("template", "")))
        self.executor.status.start(group)
        with ThreadPoolExecutor(max_workers=max(1, min(len(fan), MAX_THREADS))) as pool:
            futures = [pool.submit(self._leaf, task, dict(scope, **item), at.child(sfx, group)) for sfx, item in fan]
        children = [f.result() for f in futures]
        self.executor.status.finish(group, _group_phase(children), "" if children else "Skipped, empty params")
        return task["name"], group, children

    def _run_task(self, task_name: str, scope: dict[str, str]) -> None:
        task = self.graph.tasks[task_name]
        at = self._at(task_name, self.node if not self.graph.deps[task_name] else None)
        try:
            try:
                fan = expand(task, scope, f"task {task_name!r} of template {self.template['name']!r}")
            except RunnerError as error:
                self.done.put((task_name, skipped(self.executor, task, at, Phase.ERROR, str(error)), None))
                return
            if fan is None:
                self.done.put((task_name, self._leaf(task, scope, at), None))
            else:
                self.done.put(self._fan_out(task, scope, at, fan))
        except BaseException as error:  # a bug must not hang the DAG loop waiting for this task
            crash = Placement(f"{at.name}.crash", task_name, self.node, self.node.id)
            node = self.executor.status.create(crash, NodeType.SKIPPED, "")
            self.done.put((task_name, self.executor.status.finish(node, Phase.ERROR, f"runner error: {error!r}"), None))

    def _start(self, task_name: str, pool: ThreadPoolExecutor) -> bool:
        """Start a task whose dependencies all finished; False when it is not started at all."""
        if self.stop or self.executor.cancelled.is_set():
            return False
        try:
            go = dep.evaluate(self.graph.exprs[task_name], self.states)
        except RunnerError as error:
            bad = skipped(self.executor, {}, self._at(task_name, self.node), Phase.ERROR, str(error))
            self.done.put((task_name, bad, None))
            return True
        if not go:
            task = self.graph.tasks[task_name]
            omitted = skipped(
                self.executor, task, self._at(task_name, None), Phase.OMITTED, "omitted: depends condition not met"
            )
            self.done.put((task_name, omitted, None))
            return True
        pool.submit(self._run_task, task_name, dict(self.scope))
        return True

    def _finished(self, task_name: str, task_node: Node, children: list[Node] | None) -> None:
        self.nodes[task_name] = task_node
        with self.executor.status.lock:
            for dep_name in self.graph.deps[task_name]:
                if dep_name in self.nodes and task_node.id not in self.nodes[dep_name].children:
                    self.nodes[dep_name].children.append(task_node.id)
        record(self.scope, f"tasks.{task_name}", task_node, children)
        cont = self.graph.tasks[task_name].get("continueOn") or {}
        self.states[task_name] = dep.TaskState(
            task_node.phase, tuple(c.phase for c in children or []), bool(cont.get("failed")), bool(cont.get("error"))
        )
        if self.fail_fast and self.graph.assess(self.states).failed:
            self.stop = True

    def schedule(self) -> None:
        pending, running = list(self.graph.needed), 0
        with ThreadPoolExecutor(max_workers=max(1, min(len(pending), MAX_THREADS))) as pool:
            while True:
                for task_name in list(pending):
                    if all(d in self.states for d in self.graph.deps[task_name]):
                        pending.remove(task_name)
                        running += self._start(task_name, pool)
                if running == 0:
                    break
                self._finished(*self.done.get())
                running -= 1

    def outcome(self) -> tuple[Phase, str]:
        phase, message = self.graph.assess(self.states), ""
        if phase is Phase.SUCCEEDED and any(t not in self.states for t in self.graph.targets):
            phase, message = Phase.FAILED, "not every target task ran"
        if phase.failed:
            failed = [n for n in self.nodes.values() if n.phase.failed]
            message = message or (f"child '{failed[0].id}' failed" if failed else "")
        if self.executor.cancelled.is_set() and phase is Phase.SUCCEEDED:
            phase, message = Phase.FAILED, self.executor.cancel_message
        self.node.outbound = [self.nodes[t].id for t in self.graph.targets if t in self.nodes]
        return phase, message


def run_dag(executor: Executor, template: dict[str, Any], owner: Owner, scope: dict[str, str], at: Placement) -> Node:
    node = executor.status.create(at, NodeType.DAG, template["name"])
    executor.status.start(node)
    try:
        graph = _Graph(template, scope)
    except RunnerError as error:
        return executor.status.finish(node, Phase.ERROR, str(error))
    run = _DagRun(executor, template, owner, scope, node, graph)
    run.schedule()
    phase, message = run.outcome()
    if phase is Phase.SUCCEEDED:
        for task_node in run.nodes.values():
            for param, value in task_node.dag_globals:
                executor.publish_global(param, value)
    return finish_with_outputs(executor, template, run.scope, node, phase, message)
