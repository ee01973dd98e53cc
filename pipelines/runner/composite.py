"""`steps` and `dag` templates: fan-out, `when`, `depends`, continueOn, failFast, aggregated outputs.

Node names follow Argo (`wf[0].hello1`, `wf.A`, `wf.A(0:1)`), so readers of `argo get -o json`
see the same tree.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pipelines.runner.errors import RunnerError
from pipelines.runner.expressions import evaluate_expr, evaluate_govaluate, to_text
from pipelines.runner.status import Node
from pipelines.runner.templating import nested, param_text, substitute, substitute_all

if TYPE_CHECKING:
    from pipelines.runner.engine import Engine, Owner

FAILED = ("Failed", "Error")


def expand(step: dict[str, Any], scope: dict[str, str], where: str) -> list[tuple[str, dict[str, str]]] | None:
    """[(display suffix, item scope)] for a fanned-out step, or None when it does not fan out."""
    if "withItems" in step:
        items = substitute_all(step["withItems"], scope, where)
    elif "withParam" in step:
        text = substitute(str(step["withParam"]), scope, where)
        try:
            items = json.loads(text)
        except ValueError:
            raise RunnerError(f"{where}: withParam value is not a JSON list: {text[:80]!r}") from None
        if not isinstance(items, list):
            raise RunnerError(f"{where}: withParam value is not a JSON list: {text[:80]!r}")
    elif "withSequence" in step:
        seq = {k: substitute(param_text(v), scope, where) for k, v in step["withSequence"].items()}
        start = int(seq.get("start", 0) or 0)
        end = start + int(seq["count"]) - 1 if "count" in seq else int(seq.get("end", 0) or 0)
        numbers = range(start, end + 1) if end >= start else range(start, end - 1, -1)
        fmt = seq.get("format")
        items = [fmt % n if fmt else str(n) for n in numbers]
    else:
        return None
    out = []
    for index, item in enumerate(items):
        item_scope = {"item": param_text(item)}
        if isinstance(item, dict):
            for key, value in item.items():
                item_scope[f"item.{key}"] = param_text(value)
            label = ",".join(f"{k}:{param_text(v)}" for k, v in sorted(item.items()))
        else:
            label = param_text(item)
        out.append((f"({index}:{label})", item_scope))
    return out


def when_true(step: dict[str, Any], scope: dict[str, str], where: str) -> tuple[bool, str]:
    if not step.get("when"):
        return True, ""
    text = substitute(str(step["when"]), scope, where)
    return evaluate_govaluate(text), text


def arguments(step: dict[str, Any], scope: dict[str, str], where: str) -> dict[str, str]:
    out = {}
    for param in (step.get("arguments") or {}).get("parameters") or []:
        if "valueFrom" in param:
            raise RunnerError(f"{where}: arguments.parameters.valueFrom is not supported locally")
        out[param["name"]] = substitute(param_text(param.get("value", "")), scope, where)
    return out


def record(scope: dict[str, str], prefix: str, node: Node, children: list[Node] | None) -> None:
    """Publish a finished step's outputs under `steps.<name>` / `tasks.<name>`."""
    scope[f"{prefix}.status"] = node.phase
    scope[f"{prefix}.id"] = node.id
    scope[f"{prefix}.startedAt"] = node.started_at or ""
    scope[f"{prefix}.finishedAt"] = node.finished_at or ""
    if children is not None:  # Argo's processAggregateNodeOutputs
        results, params = [], []
        for child in children:
            out = child.outputs or {}
            if out.get("parameters"):
                params.append({p["name"]: p["value"] for p in out["parameters"]})
            if "result" in out:
                try:
                    results.append(json.loads(out["result"]))
                except ValueError:
                    results.append(out["result"])
        scope[f"{prefix}.outputs.result"] = json.dumps(results, separators=(",", ":"))
        scope[f"{prefix}.outputs.parameters"] = json.dumps(params, separators=(",", ":"))
        for name in {k for p in params for k in p}:
            values = [p[name] for p in params if name in p]
            scope[f"{prefix}.outputs.parameters.{name}"] = json.dumps(values, separators=(",", ":"))
        return
    out = node.outputs or {}
    if "result" in out:
        scope[f"{prefix}.outputs.result"] = out["result"]
    if "exitCode" in out:
        scope[f"{prefix}.exitCode"] = out["exitCode"]
    for param in out.get("parameters") or []:
        scope[f"{prefix}.outputs.parameters.{param['name']}"] = param["value"]


def template_outputs(engine: Engine, template: dict[str, Any], scope: dict[str, str], node: Node) -> None:
    """Outputs of a steps/dag template: `valueFrom.parameter` or `valueFrom.expression`."""
    params = []
    for param in (template.get("outputs") or {}).get("parameters") or []:
        value_from = param.get("valueFrom") or {}
        where = f"template {template['name']!r} output {param['name']!r}"
        try:
            if "parameter" in value_from:
                value = substitute(str(value_from["parameter"]), scope, where)
            elif "expression" in value_from:
                value = to_text(evaluate_expr(value_from["expression"], nested(scope)))
            elif "value" in param:
                value = substitute(param_text(param["value"]), scope, where)
            else:
                raise RunnerError(f"{where}: steps/dag outputs need valueFrom.parameter or valueFrom.expression")
        except RunnerError:
            if "default" not in value_from:
                raise
            value = param_text(value_from["default"])
        params.append({"name": param["name"], "value": value})
        engine.publish_global(param, value)
    if params:
        node.outputs = {"parameters": params}


def _exit_hook(engine: Engine, step: dict, owner: Owner, node: Node, parent: Node, boundary: str) -> None:
    if step.get("onExit"):
        engine.execute(
            {"template": step["onExit"]},
            owner,
            f"{node.name}.onExit",
            f"{node.display_name}.onExit",
            parent,
            {},
            boundary,
        )


def _run_one(
    engine: Engine,
    step: dict,
    owner: Owner,
    scope: dict[str, str],
    name: str,
    display: str,
    parent: Node,
    boundary: str,
) -> Node:
    """A step/task instance: `when`, then the template (Skipped nodes keep Argo's message)."""
    where = f"step {name!r}"
    try:
        run, text = when_true(step, scope, where)
        args = arguments(step, scope, where)
    except RunnerError as error:
        node = engine.status.create(name, display, "Skipped", str(step.get("template", "")), parent, boundary)
        return engine.status.finish(node, "Error", str(error))
    if not run:
        node = engine.status.create(name, display, "Skipped", str(step.get("template", "")), parent, boundary)
        return engine.status.finish(node, "Skipped", f"when '{text}' evaluated false")
    node = engine.execute(step, owner, name, display, parent, args, boundary)
    _exit_hook(engine, step, owner, node, parent, boundary)
    return node


def _continues(step: dict, phase: str) -> bool:
    cont = step.get("continueOn") or {}
    return (phase == "Failed" and bool(cont.get("failed"))) or (phase == "Error" and bool(cont.get("error")))


def _unexpanded(engine: Engine, step: dict, group: Node, steps: Node, phase: str, message: str) -> Node:
    """The node of a step whose loop could not expand (Error) or expanded to nothing (Skipped)."""
    node = engine.status.create(
        f"{group.name}.{step['name']}", step["name"], "Skipped", str(step.get("template", "")), group, steps.id
    )
    return engine.status.finish(node, phase, message)


def run_steps(
    engine: Engine,
    template: dict,
    owner: Owner,
    scope: dict[str, str],
    name: str,
    display: str,
    parent: Node | None,
    boundary: str,
) -> Node:
    node = engine.status.create(name, display, "Steps", template["name"], parent, boundary)
    engine.status.start(node)
    scope = dict(scope)
    limit = int(template.get("parallelism") or 0) or None
    fail_fast = template.get("failFast", True)
    phase, message = "Succeeded", ""
    for index, group in enumerate(template["steps"]):
        group = group if isinstance(group, list) else [group]
        group_node = engine.status.create(
            f"{name}[{index}]", f"[{index}]", "StepGroup", template["name"], node, node.id
        )
        engine.status.start(group_node)
        jobs, failed = [], threading.Event()
        for step in group:
            where = f"step {step['name']!r} of template {template['name']!r}"
            try:
                fan = expand(step, scope, where)
            except RunnerError as error:
                jobs.append((step, None, [_unexpanded(engine, step, group_node, node, "Error", str(error))]))
                continue
            if fan is None:
                jobs.append((step, None, [(f"{group_node.name}.{step['name']}", step["name"], scope)]))
            elif not fan:
                jobs.append(
                    (step, None, [_unexpanded(engine, step, group_node, node, "Skipped", "Skipped, empty params")])
                )
            else:
                jobs.append(
                    (
                        step,
                        fan,
                        [
                            (f"{group_node.name}.{step['name']}{sfx}", f"{step['name']}{sfx}", dict(scope, **item))
                            for sfx, item in fan
                        ],
                    )
                )

        def launch(
            step: dict,
            item_name: str,
            item_display: str,
            item_scope: dict,
            failed: threading.Event = failed,
            group_node: Node = group_node,
        ) -> Node | None:
            if fail_fast and failed.is_set():
                return None
            child = _run_one(engine, step, owner, item_scope, item_name, item_display, group_node, node.id)
            if child.phase in FAILED and not _continues(step, child.phase):
                failed.set()
            return child

        flat = [(s, i) for s, _, items in jobs for i in items if isinstance(i, tuple)]
        with ThreadPoolExecutor(max_workers=max(1, min(limit or len(flat) or 1, 256))) as pool:
            futures = {id(i): pool.submit(launch, s, *i) for s, i in flat}
        group_phase = "Succeeded"
        for step, fan, items in jobs:
            children = [futures[id(i)].result() if isinstance(i, tuple) else i for i in items]
            children = [c for c in children if c is not None]
            prefix = f"steps.{step['name']}"
            if fan is None and children:
                record(scope, prefix, children[0], None)
            else:
                record(scope, prefix, children[0] if children else group_node, children)
            for child in children:
                if child.phase in FAILED and not _continues(step, child.phase):
                    group_phase = "Failed"
                    message = message or f"child '{child.id}' failed"
        engine.status.finish(group_node, group_phase)
        if group_phase != "Succeeded":
            phase = "Failed"
            break
    if phase == "Succeeded":
        try:
            template_outputs(engine, template, scope, node)
        except RunnerError as error:
            phase, message = "Error", str(error)
    return engine.status.finish(node, phase, message)
