"""What a step of a `steps` template and a task of a `dag` share: loops, `when`, arguments,
continueOn, outputs under `steps.<name>`/`tasks.<name>`, and running one instance with its onExit.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.runner.errors import RunnerError
from pipelines.runner.executor import Executor, Owner
from pipelines.runner.expressions import evaluate_expr, evaluate_govaluate, to_text
from pipelines.runner.phase import NodeType, Phase
from pipelines.runner.status import Node, Placement
from pipelines.runner.templating import nested, param_text, substitute, substitute_all


def _loop_items(step: dict[str, Any], scope: dict[str, str], where: str) -> list[Any] | None:
    if "withItems" in step:
        return substitute_all(step["withItems"], scope, where)
    if "withParam" in step:
        text = substitute(str(step["withParam"]), scope, where)
        try:
            items = json.loads(text)
        except ValueError:
            raise RunnerError(f"{where}: withParam value is not a JSON list: {text[:80]!r}") from None
        if not isinstance(items, list):
            raise RunnerError(f"{where}: withParam value is not a JSON list: {text[:80]!r}")
        return items
    if "withSequence" in step:
        seq = {k: substitute(param_text(v), scope, where) for k, v in step["withSequence"].items()}
        start = int(seq.get("start", 0) or 0)
        end = start + int(seq["count"]) - 1 if "count" in seq else int(seq.get("end", 0) or 0)
        numbers = range(start, end + 1) if end >= start else range(start, end - 1, -1)
        fmt = seq.get("format")
        return [fmt % n if fmt else str(n) for n in numbers]
    return None


def expand(step: dict[str, Any], scope: dict[str, str], where: str) -> list[tuple[str, dict[str, str]]] | None:
    """[(display suffix, item scope)] for a fanned-out step, or None when it does not fan out."""
    items = _loop_items(step, scope, where)
    if items is None:
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


def continues(step: dict[str, Any], phase: Phase) -> bool:
    """Whether the step's `continueOn` lets its parent go on after `phase`."""
    cont = step.get("continueOn") or {}
    return (phase is Phase.FAILED and bool(cont.get("failed"))) or (phase is Phase.ERROR and bool(cont.get("error")))


def fails_parent(step: dict[str, Any], phase: Phase) -> bool:
    return phase.failed and not continues(step, phase)


def _record_aggregate(scope: dict[str, str], prefix: str, children: list[Node]) -> None:
    # Argo's processAggregateNodeOutputs
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


def record(scope: dict[str, str], prefix: str, node: Node, children: list[Node] | None) -> None:
    """Publish a finished step's outputs under `steps.<name>` / `tasks.<name>`."""
    scope[f"{prefix}.status"] = node.phase
    scope[f"{prefix}.id"] = node.id
    scope[f"{prefix}.startedAt"] = node.started_at or ""
    scope[f"{prefix}.finishedAt"] = node.finished_at or ""
    if children is not None:
        _record_aggregate(scope, prefix, children)
        return
    out = node.outputs or {}
    if "result" in out:
        scope[f"{prefix}.outputs.result"] = out["result"]
    if "exitCode" in out:
        scope[f"{prefix}.exitCode"] = out["exitCode"]
    for param in out.get("parameters") or []:
        scope[f"{prefix}.outputs.parameters.{param['name']}"] = param["value"]


def _template_output(template: dict[str, Any], param: dict[str, Any], scope: dict[str, str]) -> str:
    value_from = param.get("valueFrom") or {}
    where = f"template {template['name']!r} output {param['name']!r}"
    try:
        if "parameter" in value_from:
            return substitute(str(value_from["parameter"]), scope, where)
        if "expression" in value_from:
            return to_text(evaluate_expr(value_from["expression"], nested(scope)))
        if "value" in param:
            return substitute(param_text(param["value"]), scope, where)
        raise RunnerError(f"{where}: steps/dag outputs need valueFrom.parameter or valueFrom.expression")
    except RunnerError:
        if "default" not in value_from:
            raise
        return param_text(value_from["default"])


def template_outputs(executor: Executor, template: dict[str, Any], scope: dict[str, str], node: Node) -> None:
    """Outputs of a steps/dag template: `valueFrom.parameter` or `valueFrom.expression`."""
    params = []
    for param in (template.get("outputs") or {}).get("parameters") or []:
        value = _template_output(template, param, scope)
        params.append({"name": param["name"], "value": value})
        if "dag" in template:
            node.dag_globals.append((param, value))
        else:
            executor.publish_global(param, value)
    if params:
        node.outputs = {"parameters": params}


def finish_with_outputs(
    executor: Executor, template: dict[str, Any], scope: dict[str, str], node: Node, phase: Phase, message: str
) -> Node:
    """Finish a steps/dag node; a Succeeded one first computes its outputs (an Error if they fail)."""
    if phase is Phase.SUCCEEDED:
        try:
            template_outputs(executor, template, scope, node)
        except RunnerError as error:
            phase, message = Phase.ERROR, str(error)
    return executor.status.finish(node, phase, message)


def skipped(executor: Executor, step: dict[str, Any], at: Placement, phase: Phase, message: str) -> Node:
    """A node for a step that does not run its template (loop error, empty loop, false `when`)."""
    node = executor.status.create(at, NodeType.SKIPPED, str(step.get("template", "")))
    return executor.status.finish(node, phase, message)


def run_one(executor: Executor, step: dict[str, Any], owner: Owner, scope: dict[str, str], at: Placement) -> Node:
    """A step/task instance: `when`, then the template (Skipped nodes keep Argo's message)."""
    where = f"step {at.name!r}"
    try:
        run, text = when_true(step, scope, where)
        args = arguments(step, scope, where)
    except RunnerError as error:
        return skipped(executor, step, at, Phase.ERROR, str(error))
    if not run:
        return skipped(executor, step, at, Phase.SKIPPED, f"when '{text}' evaluated false")
    node = executor.execute(step, owner, at, args)
    if step.get("onExit"):
        hook = Placement(f"{node.name}.onExit", f"{node.display_name}.onExit", at.parent, at.boundary)
        executor.execute({"template": step["onExit"]}, owner, hook, {})
    return node
