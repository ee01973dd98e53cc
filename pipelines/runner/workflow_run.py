"""Run one resolved Workflow: templates, inputs/outputs, retries, deadlines, onExit.

Nodes run in threads (processes do the work; threads only wait on them). `steps` and `dag`
templates live in composite.py; this module owns everything that is per node.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import string
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.runner import composite, dag, isolation, pods, validation
from pipelines.runner.errors import RunnerError
from pipelines.runner.executor import Owner
from pipelines.runner.expressions import evaluate_expr
from pipelines.runner.loading import Library
from pipelines.runner.phase import NodeType, Phase
from pipelines.runner.retry import RetryStrategy, duration_s
from pipelines.runner.status import Node, Placement, Status, now
from pipelines.runner.templating import nested, param_text, substitute, substitute_all


@dataclass
class Options:
    workdir: Path
    command_map: dict[str, str] = field(default_factory=dict)
    #: Upper bound on processes running at once, below any `spec.parallelism`.
    max_pods: int = 32
    namespace: str = "kiosk-local"
    #: Multiplies retry backoff waits; tests and quick local checks shrink minutes-long cluster backoffs.
    backoff_scale: float = 1.0


class WorkflowRun:
    """Runs one Workflow; implements `executor.Executor` for composite.py and dag.py."""

    def __init__(self, workflow: dict[str, Any], library: Library, options: Options) -> None:
        self.workflow = workflow
        self.spec = workflow["spec"]
        self.library = library
        self.options = options
        meta = workflow["metadata"]
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        self.name = meta.get("name") or f"{meta.get('generateName', 'workflow-')}{suffix}"
        self.status = Status(self.name)
        self.run_dir = options.workdir / "runs" / self.name
        self.table = pods.ProcessTable()
        self.cancelled = threading.Event()
        self.cancel_message = ""
        self.started = time.monotonic()
        self.deadline: float | None = None
        limit = self.spec.get("parallelism")
        self.pod_slots = threading.BoundedSemaphore(min(int(limit), options.max_pods) if limit else options.max_pods)
        self.global_outputs: dict[str, str] = {}
        #: Node id of each steps/DAG node -> its template: the boundary its children's pods run in.
        self.boundaries: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.owner = Owner("", {t["name"]: t for t in self.spec.get("templates") or []})
        self.created = now()
        self.uid = str(uuid.uuid4())
        self.globals = self._globals()
        self.phase = Phase.PENDING
        self.message = ""
        self.finished: str | None = None

    # ---- scope -------------------------------------------------------------------------------
    def _globals(self) -> dict[str, str]:
        meta = self.workflow["metadata"]
        scope = {
            "workflow.name": self.name,
            "workflow.namespace": self.options.namespace,
            "workflow.uid": self.uid,
            "workflow.serviceAccountName": self.spec.get("serviceAccountName", "default"),
            "workflow.creationTimestamp": self.created,
            "workflow.mainEntrypoint": self.spec["entrypoint"],
            "workflow.status": Phase.RUNNING,
        }
        stamp = dt.datetime.strptime(self.created, "%Y-%m-%dT%H:%M:%SZ")
        for code in "aAbBcdHIjmMpSUwWxXyYZ":
            scope[f"workflow.creationTimestamp.{code}"] = stamp.strftime(f"%{code}")
        scope["workflow.creationTimestamp.RFC3339"] = self.created
        scope["workflow.creationTimestamp.s"] = str(int(stamp.replace(tzinfo=dt.UTC).timestamp()))
        for key, value in (meta.get("labels") or {}).items():
            scope[f"workflow.labels.{key}"] = str(value)
        for key, value in (meta.get("annotations") or {}).items():
            scope[f"workflow.annotations.{key}"] = str(value)
        params = []
        for param in (self.spec.get("arguments") or {}).get("parameters") or []:
            if "value" not in param and "default" not in param:
                raise RunnerError(f"workflow parameter {param['name']!r} has no value: pass -p {param['name']}=...")
            value = substitute(param_text(param.get("value", param.get("default"))), scope, "spec.arguments")
            scope[f"workflow.parameters.{param['name']}"] = value
            params.append({"name": param["name"], "value": value})
        scope["workflow.parameters"] = json.dumps(params, separators=(",", ":"))
        return scope

    def global_scope(self) -> dict[str, str]:
        with self.lock:
            scope = dict(self.globals)
            for key, value in self.global_outputs.items():
                scope[f"workflow.outputs.parameters.{key}"] = value
            return scope

    # ---- template lookup -----------------------------------------------------------------------
    def lookup(self, step: dict[str, Any], owner: Owner) -> tuple[dict[str, Any], Owner]:
        ref = step.get("templateRef")
        if ref:
            doc = self.library.get(
                ref["name"], bool(ref.get("clusterScope")), f"templateRef in {owner.name or self.name}"
            )
            templates = {t["name"]: t for t in doc.get("spec", {}).get("templates") or []}
            if ref["template"] not in templates:
                raise RunnerError(
                    f"templateRef: template {ref['template']!r} not found in WorkflowTemplate {ref['name']!r}"
                )
            return templates[ref["template"]], Owner(ref["name"], templates)
        name = step.get("template")
        if name not in owner.templates:
            raise RunnerError(f"template {name!r} not found in {owner.name or 'the workflow'}")
        return owner.templates[name], owner

    def check(self) -> None:
        """Refuse unsupported features in every reachable template before anything runs."""
        validation.check_spec(self.spec, self.name)
        self._check_parameter_paths()
        seen: set[tuple[str, str]] = set()
        todo = [({"template": self.spec["entrypoint"]}, self.owner)]
        if self.spec.get("onExit"):
            todo.append(({"template": self.spec["onExit"]}, self.owner))
        while todo:
            step, owner = todo.pop()
            template, where = self.lookup(step, owner)
            key = (where.name, template["name"])
            if key in seen:
                continue
            seen.add(key)
            validation.check_template(template)
            validation.check_archive_logs(template, self.spec)
            groups = template.get("steps") or []
            children = [s for g in groups for s in (g if isinstance(g, list) else [g])]
            children += (template.get("dag") or {}).get("tasks") or []
            for child in children:
                todo.append((child, where))
                if child.get("onExit"):
                    todo.append(({"template": child["onExit"]}, where))

    def _check_parameter_paths(self) -> None:
        """Refuse a file:// parameter under the private /tmp: the steps would see an empty directory
        of their own, find nothing, and their outputs would vanish with the node.
        """
        kept = pods.kept_paths(self.options.workdir)
        for param in (self.spec.get("arguments") or {}).get("parameters") or []:
            value = self.globals[f"workflow.parameters.{param['name']}"]
            if not value.startswith("file://"):
                continue
            path = value.removeprefix("file://").replace("${KIOSK_WORKDIR}", "$KIOSK_WORKDIR")
            path = os.path.expandvars(path.replace("$KIOSK_WORKDIR", str(self.options.workdir)))
            if path.startswith("/") and isolation.hidden_by_private_tmp(Path(os.path.normpath(path)), kept):
                raise RunnerError(
                    f"parameter {param['name']}={value}: each pod gets a private /tmp, so the steps would not "
                    f"see this path; use one outside /tmp (e.g. under the workdir {self.options.workdir})"
                )

    # ---- running --------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self.check()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "logs").mkdir(exist_ok=True)
        self.phase = Phase.RUNNING
        timer = self._start_deadline()
        arguments = {p["name"]: p.get("value", "") for p in (self.spec.get("arguments") or {}).get("parameters") or []}
        arguments = {k: self.globals[f"workflow.parameters.{k}"] for k in arguments}
        try:
            root = self.execute(
                {"template": self.spec["entrypoint"]}, self.owner, Placement(self.name, self.name), arguments
            )
        finally:
            if timer:
                timer.cancel()
        phase, message = root.phase, root.message
        if self.cancelled.is_set():
            phase, message = Phase.FAILED, self.cancel_message
        if self.spec.get("onExit"):
            phase, message = self._exit_handler(phase, message)
        self.phase = Phase.FAILED if phase is Phase.SKIPPED else phase
        self.message = message
        self.finished = now()
        return self.to_argo()

    def _start_deadline(self) -> threading.Timer | None:
        if self.spec.get("activeDeadlineSeconds") is None:
            return None
        seconds = float(self.spec["activeDeadlineSeconds"])
        self.deadline = time.monotonic() + seconds
        timer = threading.Timer(seconds, self.cancel, ("Step exceeded its deadline",))
        timer.daemon = True
        timer.start()
        return timer

    def _exit_handler(self, phase: Phase, message: str) -> tuple[Phase, str]:
        """Run `spec.onExit` with `workflow.status` set; a failing handler fails a Succeeded workflow."""
        with self.lock:
            self.globals["workflow.status"] = phase
            self.globals["workflow.failures"] = json.dumps(self.status.failures(), separators=(",", ":"))
            self.globals["workflow.duration"] = f"{time.monotonic() - self.started:.6f}"
        self.cancelled.clear()
        at = Placement(f"{self.name}.onExit", f"{self.name}.onExit")
        exit_node = self.execute({"template": self.spec["onExit"]}, self.owner, at, {})
        if exit_node.phase.failed and phase is Phase.SUCCEEDED:
            return exit_node.phase, exit_node.message or "exit handler failed"
        return phase, message

    def cancel(self, message: str) -> None:
        self.cancel_message = message
        self.cancelled.set()
        self.table.terminate_all()

    def to_argo(self) -> dict[str, Any]:
        meta = dict(self.workflow["metadata"])
        meta.update(name=self.name, namespace=self.options.namespace, uid=self.uid, creationTimestamp=self.created)
        nodes = self.status.argo_nodes()
        pods_done = [n for n in nodes.values() if n["type"] == NodeType.POD]
        status: dict[str, Any] = {
            "phase": self.phase.value,
            "startedAt": self.created,
            "finishedAt": self.finished,
            "progress": f"{sum(n['phase'] == Phase.SUCCEEDED for n in pods_done)}/{len(pods_done)}",
            "nodes": nodes,
        }
        if self.message:
            status["message"] = self.message
        if self.global_outputs:
            status["outputs"] = {"parameters": [{"name": k, "value": v} for k, v in self.global_outputs.items()]}
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": meta,
            "spec": self.spec,
            "status": status,
        }

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def execute(self, step: dict[str, Any], owner: Owner, at: Placement, arguments: dict[str, str]) -> Node:
        """Run the template `step` names at `at`; never raises for a workflow-level failure."""
        try:
            template, owner = self.lookup(step, owner)
            scope = self.inputs_scope(template, arguments)
        except RunnerError as error:
            node = self.status.create(at, NodeType.POD, str(step.get("template", "")))
            return self.status.finish(node, Phase.ERROR, str(error))
        retry = template.get("retryStrategy")
        if retry:
            return self._retry(template, owner, scope, at, retry)
        return self._once(template, owner, scope, at)

    def inputs_scope(self, template: dict[str, Any], arguments: dict[str, str]) -> dict[str, str]:
        scope = self.global_scope()
        params = []
        for param in (template.get("inputs") or {}).get("parameters") or []:
            pname = param["name"]
            if pname in arguments:
                value = arguments[pname]
            elif "value" in param:
                value = param_text(param["value"])
            elif "default" in param:
                value = param_text(param["default"])
            else:
                raise RunnerError(f"template {template['name']!r}: inputs.parameters.{pname} was not supplied")
            value = substitute(value, scope, f"template {template['name']!r}")
            if param.get("enum") and value not in [param_text(e) for e in param["enum"]]:
                raise RunnerError(
                    f"template {template['name']!r}: inputs.parameters.{pname}={value!r} is not one of {param['enum']}"
                )
            scope[f"inputs.parameters.{pname}"] = value
            params.append({"name": pname, "value": value})
        scope["inputs.parameters"] = json.dumps(params, separators=(",", ":"))
        return scope

    def _retry(
        self, template: dict[str, Any], owner: Owner, scope: dict[str, str], at: Placement, retry: dict[str, Any]
    ) -> Node:
        node = self.status.create(at, NodeType.RETRY, template["name"])
        self.status.start(node)
        strategy = RetryStrategy.parse(retry, scope, template["name"])
        first, attempt = time.monotonic(), 0
        while True:
            started = time.monotonic()
            child_at = Placement(f"{at.name}({attempt})", f"{at.display}({attempt})", node, at.boundary)
            child = self._once(template, owner, dict(scope, retries=str(attempt)), child_at)
            more = strategy.may_retry(child.phase, attempt) and not self.cancelled.is_set()
            if more and strategy.expression:
                more = self._retry_expression(strategy, template, scope, child, started)
            wait = strategy.wait_s(attempt) * self.options.backoff_scale
            if more and strategy.max_total is not None:
                more = time.monotonic() - first + wait <= strategy.max_total * self.options.backoff_scale
            if not more or self.cancelled.wait(wait):
                node.outputs = child.outputs
                return self.status.finish(node, child.phase, child.message)
            attempt += 1

    def _retry_expression(
        self, strategy: RetryStrategy, template: dict[str, Any], scope: dict[str, str], child: Node, started: float
    ) -> bool:
        last = {
            "exitCode": str(child.exit_code if child.exit_code is not None else -1),
            "status": child.phase,
            "duration": str(int(time.monotonic() - started)),
            "message": child.message,
        }
        env = nested(dict(scope, **{f"lastRetry.{k}": v for k, v in last.items()}))
        expression = substitute(strategy.expression, scope, f"template {template['name']!r} retryStrategy")
        return evaluate_expr(expression, env) is True

    def _once(self, template: dict[str, Any], owner: Owner, scope: dict[str, str], at: Placement) -> Node:
        if "steps" in template or "dag" in template:
            with self.lock:
                self.boundaries[self.status.node_id(at.name)] = template
        if "steps" in template:
            return composite.run_steps(self, template, owner, scope, at)
        if "dag" in template:
            return dag.run_dag(self, template, owner, scope, at)
        return self._pod(template, scope, at)

    def _deadline(self, template: dict[str, Any], scope: dict[str, str]) -> float | None:
        limits = [self.remaining()]
        if template.get("activeDeadlineSeconds") is not None:
            limits.append(float(substitute(param_text(template["activeDeadlineSeconds"]), scope, template["name"])))
        if template.get("timeout"):
            limits.append(duration_s(substitute(param_text(template["timeout"]), scope, template["name"])))
        known = [x for x in limits if x is not None]
        return min(known) if known else None

    def _pod(self, template: dict[str, Any], scope: dict[str, str], at: Placement) -> Node:
        tname = template["name"]
        node = self.status.create(at, NodeType.POD, tname)
        scope = dict(scope, **{"pod.name": node.id, "node.name": at.name})
        params = json.loads(scope.get("inputs.parameters", "[]"))
        node.inputs = {"parameters": params} if params else None
        node_dir = self.run_dir / "nodes" / node.id
        node_dir.mkdir(parents=True, exist_ok=True)
        node.log = str(self.run_dir / "logs" / f"{node.id}.log")
        try:
            # Only what the process sees is substituted: metrics and outputs may name values that only
            # exist after the run (`{{outputs.parameters.x}}`).
            body = {k: v for k, v in template.items() if k in ("name", "container", "script", "volumes")}
            resolved = substitute_all(body, scope, f"template {tname!r}")
            with self.pod_slots:
                if self.cancelled.is_set():
                    return self.status.finish(node, Phase.FAILED, self.cancel_message or "cancelled")
                self.status.start(node)
                result, mounts = pods.run_pod(
                    resolved,
                    node_dir=node_dir,
                    log_path=Path(node.log),
                    workdir=self.options.workdir,
                    spec_volumes=self.spec.get("volumes") or [],
                    command_map=self.options.command_map,
                    deadline_s=self._deadline(template, scope),
                    table=self.table,
                    cancelled=self.cancelled,
                )
        except RunnerError as error:
            return self.status.finish(node, Phase.ERROR, str(error))
        node.exit_code = result.exit_code
        ok = result.exit_code == 0 and not result.timed_out
        phase, message = (Phase.SUCCEEDED, "") if ok else (Phase.FAILED, result.message)
        return self._pod_outputs(template, scope, node, result, mounts, phase, message)

    def _pod_outputs(
        self,
        template: dict[str, Any],
        scope: dict[str, str],
        node: Node,
        result: pods.PodResult,
        mounts: dict[str, Path],
        phase: Phase,
        message: str,
    ) -> Node:
        """Read a finished pod's outputs; an output that cannot be read makes a Succeeded pod an Error."""
        tname = template["name"]
        outputs: dict[str, Any] = {}
        if self._result_referenced(node):
            outputs["result"] = result.stdout
        if result.exit_code is not None:
            outputs["exitCode"] = str(result.exit_code)
        out_params = []
        for param in (template.get("outputs") or {}).get("parameters") or []:
            value_from = param.get("valueFrom") or {}
            value = None
            if value_from.get("path"):
                value = pods.read_output(substitute(value_from["path"], scope, f"template {tname!r}"), mounts)
            if value is None and "default" in value_from:
                value = param_text(value_from["default"])
            if value is None and "value" in param:
                value = substitute(param_text(param["value"]), scope, f"template {tname!r}")
            if value is None:
                if phase is Phase.SUCCEEDED:
                    phase = Phase.ERROR
                    message = f"failed to read output parameter {param['name']!r} from {value_from.get('path')!r}"
                continue
            out_params.append({"name": param["name"], "value": value})
            self.publish_global(param, value)
        if out_params:
            outputs["parameters"] = out_params
        node.outputs = outputs
        return self.status.finish(node, phase, message)

    def _result_referenced(self, node: Node) -> bool:
        """Whether Argo would keep this pod's stdout as `outputs.result`: only when the steps/DAG
        template it runs in names `steps.<step>.outputs.result` / `tasks.<task>.outputs.result`
        (or `steps['<step>'].outputs.result` in an expression). Mirrors the controller's
        includeScriptOutput/hasOutputResultRef (workflow/controller/operator.go, argo-workflows v4),
        which searches the parent template's JSON; a pod outside any steps/DAG never keeps it.
        """
        with self.lock:
            parent = self.boundaries.get(node.boundary_id) if node.boundary_id else None
        if parent is None:
            return False
        kind = "tasks" if "dag" in parent else "steps" if "steps" in parent else ""
        name = re.escape(step_or_task_name(node.name))
        text = json.dumps(parent)
        return bool(
            re.search(rf"{kind}\.{name}\.outputs\.result", text)
            or re.search(rf"{kind}\[['\"]{name}['\"]\]\.outputs.result", text)
        )

    def publish_global(self, param: dict[str, Any], value: str) -> None:
        if param.get("globalName"):
            with self.lock:
                self.global_outputs[param["globalName"]] = value


def step_or_task_name(node_name: str) -> str:
    """The step/task a node name belongs to: `wf[0].fan(0:a)(1)` -> `fan` (Argo's getStepOrDAGTaskName)."""
    closing = {")": "(", "]": "["}
    opener = ""
    end = len(node_name)
    for i in range(len(node_name) - 1, -1, -1):
        char = node_name[i]
        if opener:
            if char == opener:
                opener = ""
        elif char in closing:
            opener = closing[char]
        else:
            end = i + 1
            break
    return node_name[:end].rsplit(".", 1)[-1]
