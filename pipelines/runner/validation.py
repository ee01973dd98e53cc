"""Which Argo fields the local runner honours, accepts as Kubernetes-only no-ops, or refuses.

Every field is in exactly one of three sets. A field in none of them is refused too, so a new Argo
feature can never be skipped silently. Kubernetes-only fields (scheduling, security, pod metadata,
garbage collection, metrics, mutexes) change where and how a pod runs on a cluster, not what a
workflow computes, so locally they are accepted and ignored.
"""

from __future__ import annotations

from typing import Any

from pipelines.runner.errors import UnsupportedFeature

K8S_ONLY = {
    "securityContext",
    "nodeSelector",
    "tolerations",
    "affinity",
    "podSpecPatch",
    "serviceAccountName",
    "automountServiceAccountToken",
    "synchronization",
    "metrics",
    "metadata",
    "archiveLocation",
    "priorityClassName",
    "priority",
    "schedulerName",
    "hostAliases",
    "executor",
    "podMetadata",
    "podGC",
    "ttlStrategy",
    "imagePullSecrets",
    "podDisruptionBudget",
    "archiveLogs",
    "podPriorityClassName",
    "hostNetwork",
    "dnsPolicy",
    "dnsConfig",
    "workflowMetadata",
    "artifactGC",
    "artifactRepositoryRef",
    "labels",
    "annotations",
    "shutdown",
    "retryStrategyRef",
    "workflowTemplateRef",
    "nodeName",
    "serviceAccount",
    "podResources",
    "resourceClaims",
}
SPEC_HONOURED = {"entrypoint", "templates", "arguments", "onExit", "parallelism", "activeDeadlineSeconds", "volumes"}
TEMPLATE_HONOURED = {
    "name",
    "inputs",
    "outputs",
    "container",
    "script",
    "steps",
    "dag",
    "retryStrategy",
    "activeDeadlineSeconds",
    "timeout",
    "parallelism",
    "failFast",
    "volumes",
    "daemon",
}
STEP_HONOURED = {
    "name",
    "template",
    "templateRef",
    "arguments",
    "when",
    "withItems",
    "withParam",
    "withSequence",
    "continueOn",
    "onExit",
    "depends",
    "dependencies",
    "description",
}
CONTAINER_HONOURED = {"image", "command", "args", "env", "source", "volumeMounts", "name", "workingDir"}
CONTAINER_K8S = {
    "resources",
    "imagePullPolicy",
    "securityContext",
    "ports",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "lifecycle",
}
PARAM_VALUE_FROM = {"path", "default", "parameter", "expression"}


def _refuse(unknown: set[str], template: str, prefix: str) -> None:
    for key in sorted(unknown):
        raise UnsupportedFeature(f"{prefix}{key}", template)


ARCHIVE_LOGS_HINT = "archiving a pod's logs needs an artifact repository"


def check_spec(spec: dict[str, Any], name: str) -> None:
    _refuse(set(spec) - SPEC_HONOURED - K8S_ONLY, name, "spec.")
    for volume in spec.get("volumes") or []:
        _check_volume(volume, name)
    args = spec.get("arguments") or {}
    if args.get("artifacts"):
        raise UnsupportedFeature("spec.arguments.artifacts", name)
    for param in args.get("parameters") or []:
        if "valueFrom" in param:
            raise UnsupportedFeature("spec.arguments.parameters.valueFrom", name, "configMapKeyRef needs a cluster")


def _check_volume(volume: dict[str, Any], template: str) -> None:
    kinds = set(volume) - {"name"}
    if kinds != {"emptyDir"}:
        raise UnsupportedFeature(
            f"volumes[{volume.get('name')}] of type {', '.join(sorted(kinds))}",
            template,
            "only emptyDir volumes run locally",
        )


def check_archive_logs(template: dict[str, Any], spec: dict[str, Any]) -> None:
    """Refuse a pod template whose logs Argo would archive: the template's `archiveLocation.archiveLogs`,
    else `spec.archiveLogs` (the controller's IsArchiveLogs, workflow/controller/workflowpod.go). The real
    controller runs such a pod and then fails it when no artifact repository takes the logs; the runner
    has none, so it refuses before anything runs instead of ignoring the request.
    """
    if "container" not in template and "script" not in template:
        return
    own = (template.get("archiveLocation") or {}).get("archiveLogs")
    if own is True:
        raise UnsupportedFeature("archiveLocation.archiveLogs", template.get("name", "?"), ARCHIVE_LOGS_HINT)
    if own is None and spec.get("archiveLogs") is True:
        raise UnsupportedFeature("spec.archiveLogs", template.get("name", "?"), ARCHIVE_LOGS_HINT)


def check_template(template: dict[str, Any]) -> None:
    name = template.get("name", "?")
    _refuse(set(template) - TEMPLATE_HONOURED - K8S_ONLY, name, "")
    if template.get("daemon"):
        raise UnsupportedFeature("daemon", name)
    kinds = [k for k in ("container", "script", "steps", "dag") if k in template]
    if len(kinds) != 1:
        raise UnsupportedFeature("template without container, script, steps or dag", name)
    for volume in template.get("volumes") or []:
        _check_volume(volume, name)
    _check_inputs_and_outputs(template, name)
    body = template.get("container") or template.get("script")
    if body is not None:
        _check_body(body, name, kind=kinds[0])
    retry = template.get("retryStrategy") or {}
    _refuse(set(retry) - {"limit", "retryPolicy", "backoff", "expression", "affinity"}, name, "retryStrategy.")
    _check_steps_and_tasks(template, name)


def _check_inputs_and_outputs(template: dict[str, Any], name: str) -> None:
    """Parameters only: artifacts and parameters read from elsewhere (valueFrom) need a cluster."""
    inputs, outputs = template.get("inputs") or {}, template.get("outputs") or {}
    if inputs.get("artifacts"):
        raise UnsupportedFeature("inputs.artifacts", name)
    if outputs.get("artifacts"):
        raise UnsupportedFeature("outputs.artifacts", name)
    _refuse(set(inputs) - {"parameters"}, name, "inputs.")
    _refuse(set(outputs) - {"parameters", "result", "exitCode"}, name, "outputs.")
    for param in inputs.get("parameters") or []:
        if "valueFrom" in param:
            raise UnsupportedFeature("inputs.parameters.valueFrom", name)
    for param in outputs.get("parameters") or []:
        _refuse(set(param.get("valueFrom") or {}) - PARAM_VALUE_FROM, name, "outputs.parameters.valueFrom.")


def _check_body(body: dict[str, Any], name: str, *, kind: str) -> None:
    """A container or script: honoured fields, no env from secrets, and a command for a container."""
    _refuse(set(body) - CONTAINER_HONOURED - CONTAINER_K8S, name, f"{kind}.")
    for env in body.get("env") or []:
        if "valueFrom" in env:
            raise UnsupportedFeature("env.valueFrom", name, "secrets and config maps need a cluster")
    if not body.get("command") and kind == "container":
        raise UnsupportedFeature(
            "container without command", name, "the image's entrypoint is unknown locally: set command"
        )


def _check_steps_and_tasks(template: dict[str, Any], name: str) -> None:
    steps = [s for group in template.get("steps") or [] for s in (group if isinstance(group, list) else [group])]
    dag = template.get("dag") or {}
    _refuse(set(dag) - {"tasks", "target", "failFast"}, name, "dag.")
    for step in [*steps, *(dag.get("tasks") or [])]:
        _refuse(set(step) - STEP_HONOURED, name, f"step {step.get('name')!r}: ")
        if (step.get("arguments") or {}).get("artifacts"):
            raise UnsupportedFeature("arguments.artifacts", name)
        if "template" not in step and "templateRef" not in step:
            raise UnsupportedFeature(f"step {step.get('name')!r} without template or templateRef", name)
