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
from typing import TYPE_CHECKING, Any

from pipelines.runner import depends as dep
from pipelines.runner.composite import FAILED, _continues, _run_one, expand, record, template_outputs
from pipelines.runner.errors import RunnerError
from pipelines.runner.status import Node
from pipelines.runner.templating import substitute

if TYPE_CHECKING:
    from pipelines.runner.engine import Engine, Owner

COMPLETED = ("Succeeded", "Failed", "Error")


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

    def assess(self, states: dict[str, dep.TaskState]) -> str:
        branch: dict[str, str] = {}
        todo = deque((n, "Succeeded") for n in self.needed if not self.deps[n])
        seen = set()
        while todo:
            name, inherited = todo.popleft()
            if (name, inherited) in seen or name not in states:
                continue
            seen.add((name, inherited))
            phase = states[name].phase if states[name].phase in COMPLETED else inherited
            if name in self.targets and branch.get(name) not in FAILED:
                branch[name] = phase
            todo.extend((d, phase) for d in self.dependents[name])
        for name in self.targets:
            phase = branch.get(name)
            if phase in FAILED and not _continues(self.tasks[name], phase):
                return phase
        return "Succeeded"


def _group_phase(children: list[Node], task: dict) -> str:
    if not children or all(c.phase == "Skipped" for c in children):
        return "Skipped"
    failed = [c.phase for c in children if c.phase in FAILED]
    return failed[-1] if failed else "Succeeded"


def run_dag(
    engine: Engine,
    template: dict,
    owner: Owner,
    scope: dict[str, str],
    name: str,
    display: str,
    parent: Node | None,
    boundary: str,
) -> Node:
    node = engine.status.create(name, display, "DAG", template["name"], parent, boundary)
    engine.status.start(node)
    try:
        graph = _Graph(template, scope)
    except RunnerError as error:
        return engine.status.finish(node, "Error", str(error))
    scope = dict(scope)
    limit = int(template.get("parallelism") or 0)
    slots = threading.BoundedSemaphore(limit) if limit else None
    fail_fast = template["dag"].get("failFast", True)
    states: dict[str, dep.TaskState] = {}
    nodes: dict[str, Node] = {}
    done: queue.Queue = queue.Queue()

    def leaf(step: dict, task_scope: dict, leaf_name: str, leaf_display: str, leaf_parent: Node | None) -> Node:
        if slots is None:
            return _run_one(engine, step, owner, task_scope, leaf_name, leaf_display, leaf_parent, node.id)
        with slots:
            return _run_one(engine, step, owner, task_scope, leaf_name, leaf_display, leaf_parent, node.id)

    def run_task(task_name: str, task_scope: dict[str, str]) -> None:
        task = graph.tasks[task_name]
        task_parent = node if not graph.deps[task_name] else None
        full = f"{name}.{task_name}"
        try:
            try:
                fan = expand(task, task_scope, f"task {task_name!r} of template {template['name']!r}")
            except RunnerError as error:
                bad = engine.status.create(
                    full, task_name, "Skipped", str(task.get("template", "")), task_parent, node.id
                )
                done.put((task_name, engine.status.finish(bad, "Error", str(error)), None))
                return
            if fan is None:
                done.put((task_name, leaf(task, task_scope, full, task_name, task_parent), None))
                return
            group = engine.status.create(
                full, task_name, "TaskGroup", str(task.get("template", "")), task_parent, node.id
            )
            engine.status.start(group)
            with ThreadPoolExecutor(max_workers=max(1, min(len(fan), 256))) as pool:
                futures = [
                    pool.submit(leaf, task, dict(task_scope, **item), f"{full}{sfx}", f"{task_name}{sfx}", group)
                    for sfx, item in fan
                ]
            children = [f.result() for f in futures]
            phase = _group_phase(children, task)
            engine.status.finish(group, phase, "Skipped, empty params" if not children else "")
            done.put((task_name, group, children))
        except BaseException as error:
            crash = engine.status.create(f"{full}.crash", task_name, "Skipped", "", node, node.id)
            done.put((task_name, engine.status.finish(crash, "Error", f"runner error: {error!r}"), None))

    pending = list(graph.needed)
    running, stop = 0, False
    with ThreadPoolExecutor(max_workers=max(1, min(len(pending), 256))) as pool:
        while True:
            for task_name in list(pending):
                if not all(d in states for d in graph.deps[task_name]):
                    continue
                pending.remove(task_name)
                if stop or engine.cancelled.is_set():
                    continue
                try:
                    go = dep.evaluate(graph.exprs[task_name], states)
                except RunnerError as error:
                    bad = engine.status.create(f"{name}.{task_name}", task_name, "Skipped", "", node, node.id)
                    done.put((task_name, engine.status.finish(bad, "Error", str(error)), None))
                    running += 1
                    continue
                if not go:
                    omitted = engine.status.create(
                        f"{name}.{task_name}",
                        task_name,
                        "Skipped",
                        str(graph.tasks[task_name].get("template", "")),
                        None,
                        node.id,
                    )
                    engine.status.finish(omitted, "Omitted", "omitted: depends condition not met")
                    done.put((task_name, omitted, None))
                    running += 1
                    continue
                pool.submit(run_task, task_name, dict(scope))
                running += 1
            if running == 0:
                break
            task_name, task_node, children = done.get()
            running -= 1
            nodes[task_name] = task_node
            with engine.status.lock:
                for dep_name in graph.deps[task_name]:
                    if dep_name in nodes and task_node.id not in nodes[dep_name].children:
                        nodes[dep_name].children.append(task_node.id)
            record(scope, f"tasks.{task_name}", task_node, children)
            cont = graph.tasks[task_name].get("continueOn") or {}
            states[task_name] = dep.TaskState(
                task_node.phase,
                tuple(c.phase for c in children or []),
                bool(cont.get("failed")),
                bool(cont.get("error")),
            )
            if fail_fast and graph.assess(states) in FAILED:
                stop = True
    phase = graph.assess(states)
    message = ""
    if phase == "Succeeded" and any(t not in states for t in graph.targets):
        phase, message = "Failed", "not every target task ran"
    if phase in FAILED:
        failed = [n for n in nodes.values() if n.phase in FAILED]
        message = message or (f"child '{failed[0].id}' failed" if failed else "")
    if engine.cancelled.is_set() and phase == "Succeeded":
        phase, message = "Failed", engine.cancel_message
    node.outbound = [nodes[t].id for t in graph.targets if t in nodes]
    if phase == "Succeeded":
        try:
            template_outputs(engine, template, scope, node)
        except RunnerError as error:
            phase, message = "Error", str(error)
    return engine.status.finish(node, phase, message)
