"""What every rendered workflow and step shares: labels, security, retries, metrics, step containers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hera.workflows import Container, Parameter, WorkflowTemplate
from hera.workflows import models as m

from pipelines.config import KioskConfig
from pipelines.templates import _params
from steps.common import metric_names
from steps.common.params_base import StepParams

PART_OF = "kiosk-pipelines"
OUTPUTS_DIR = "/tmp/outputs"
TMP_VOLUME = "tmp"
# Exit codes the steps use for permanent problems: 2 bad input (StepError), 3 not implemented,
# 4 cleanup's --max-deletes abort (the same listing gives the same count). Retrying those only burns
# time; everything else (evictions, OOM, storage hiccups) may pass on a retry.
PERMANENT_EXIT_CODES = (2, 3, 4)
DURATION_BUCKETS = [10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0]


def labels(cfg: KioskConfig, env: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": PART_OF,
        "app.kubernetes.io/instance": f"{PART_OF}-{env}",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/version": cfg.image.tag,
        "app.kubernetes.io/managed-by": "kiosk-render",
    }


def template_annotations(title: str, description: str, sync_wave: int = 0) -> dict[str, str]:
    return {
        "workflows.argoproj.io/title": title,
        "workflows.argoproj.io/description": description,
        "argocd.argoproj.io/sync-wave": str(sync_wave),
    }


def uses_s3(cfg: KioskConfig) -> bool:
    return cfg.storage.uri.startswith("s3://")


def run_uri(cfg: KioskConfig, name: str = "{{workflow.name}}") -> str:
    return f"{cfg.storage.uri}/{cfg.inference.runs_prefix}/{name}"


def pod_security_context(cfg: KioskConfig) -> m.PodSecurityContext:
    uid = cfg.workflow.run_as_user
    return m.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=uid,
        fs_group=uid,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


def container_security_context() -> m.SecurityContext:
    return m.SecurityContext(
        run_as_non_root=True,
        read_only_root_filesystem=True,
        allow_privilege_escalation=False,
        privileged=False,
        capabilities=m.Capabilities(drop=["ALL"]),
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


def retry_strategy(cfg: KioskConfig) -> m.RetryStrategy:
    codes = ", ".join(str(c) for c in PERMANENT_EXIT_CODES)
    backoff = cfg.workflow.retry_backoff
    # IntOrString fields are written as strings: Argo's JSON schema types IntOrString as string.
    return m.RetryStrategy(
        limit=str(cfg.workflow.retry_limit),
        retry_policy="Always",
        expression=f"asInt(lastRetry.exitCode) not in [{codes}]",
        backoff=m.Backoff(
            duration=backoff.duration,
            factor=str(backoff.factor),
            cap=backoff.cap,
            max_duration=backoff.max_duration,
        ),
    )


def _outcome_metrics(names: tuple[str, str], what: str, labels: dict[str, str], prefix: str) -> list[m.Prometheus]:
    """A duration histogram by outcome and a failure counter (`names`: theirs, from metric_names).

    `prefix` is where Argo exposes the outcome: `{{status}}` for a template, `{{workflow.status}}` for
    the whole workflow.
    """
    status, duration = f"{{{{{prefix}status}}}}", f"{{{{{prefix}duration}}}}"
    # One controller may run every environment's workflows: the namespace tells their series apart
    # (not `namespace`, which a ServiceMonitor's target labels would rename to `exported_namespace`).
    labels = {**labels, metric_names.WORKFLOW_NAMESPACE_LABEL: "{{workflow.namespace}}"}
    return [
        m.Prometheus(
            name=names[0],
            help=f"Duration of a kiosk {what}, by outcome.",
            labels=_labels({**labels, metric_names.STATUS_LABEL: status}),
            histogram=m.Histogram(value=duration, buckets=[m.Amount(b) for b in DURATION_BUCKETS]),
        ),
        m.Prometheus(
            name=names[1],
            help=f"kiosk {what}s that ended Failed or Error.",
            labels=_labels(labels),
            when=f"{status} != Succeeded",
            counter=m.Counter(value="1"),
        ),
    ]


def step_metrics(workflow_template: str, step: str) -> list[m.Prometheus]:
    labels = {metric_names.TEMPLATE_LABEL: workflow_template, metric_names.STEP_LABEL: step}
    return _outcome_metrics((metric_names.STEP_DURATION, metric_names.STEP_FAILURES), "step attempt", labels, "")


def workflow_metrics(workflow_template: str) -> m.Metrics:
    return m.Metrics(
        prometheus=_outcome_metrics(
            (metric_names.WORKFLOW_DURATION, metric_names.WORKFLOW_FAILURES),
            "workflow",
            {metric_names.TEMPLATE_LABEL: workflow_template},
            "workflow.",
        )
    )


def _labels(values: Mapping[str, str]) -> list[m.MetricLabel]:
    return [m.MetricLabel(key=k, value=v) for k, v in values.items()]


def runtime_spec(cfg: KioskConfig) -> dict[str, Any]:
    """Spec fields every workflow needs, also repeated in a CronWorkflow's workflowSpec.

    Only scalars and objects here: Argo merges a workflow's spec over its referenced template's,
    and lists such as volumes would be duplicated rather than merged.
    """
    wf = cfg.workflow
    return {
        "service_account_name": cfg.service_account,
        "security_context": pod_security_context(cfg),
        "pod_gc": m.PodGC(strategy=wf.pod_gc),
        "ttl_strategy": m.TTLStrategy(
            seconds_after_completion=wf.ttl_after_completion_seconds,
            seconds_after_success=wf.ttl_after_success_seconds,
            seconds_after_failure=wf.ttl_after_failure_seconds,
        ),
        "active_deadline_seconds": wf.active_deadline_seconds,
    }


def template_spec(cfg: KioskConfig, env: str, name: str, title: str, description: str) -> dict[str, Any]:
    """Metadata and spec fields of a WorkflowTemplate named `name`."""
    spec: dict[str, Any] = {
        "name": name,
        "namespace": cfg.namespace,
        "labels": labels(cfg, env, name),
        "annotations": template_annotations(title, description),
        **runtime_spec(cfg),
        "pod_metadata": m.Metadata(labels=labels(cfg, env, name)),
        "workflow_metadata": m.WorkflowMetadata(labels=labels(cfg, env, name)),
        "metrics": workflow_metrics(name),
        "volumes": [
            m.Volume(name=TMP_VOLUME, empty_dir=m.EmptyDirVolumeSource(size_limit=cfg.workflow.tmp_size_limit))
        ],
    }
    if uses_s3(cfg):
        # Pods are garbage-collected, so logs survive only when archived to the artifact repository.
        spec["archive_logs"] = True
        spec["artifact_repository_ref"] = m.ArtifactRepositoryRef(
            config_map=cfg.artifact_repository.config_map, key=cfg.artifact_repository.key
        )
    return spec


def storage_env(cfg: KioskConfig) -> list[m.EnvVar]:
    if not uses_s3(cfg):
        return []
    env = [
        m.EnvVar(name="AWS_REGION", value=cfg.storage.region),
        m.EnvVar(name="AWS_DEFAULT_REGION", value=cfg.storage.region),
    ]
    secret = cfg.storage.credentials_secret
    if secret:  # empty: the pod's ServiceAccount identity (IRSA / workload identity) signs requests
        env += [
            m.EnvVar(
                name=key,
                value_from=m.EnvVarSource(secret_key_ref=m.SecretKeySelector(name=secret, key=key, optional=False)),
            )
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        ]
    return env


def push_literals(cfg: KioskConfig) -> dict[str, Any]:
    """The Pushgateway and the env's name for a step that pushes metrics; nothing without a gateway."""
    return {"pushgateway": cfg.pushgateway, "env": cfg.env} if cfg.pushgateway else {}


def storage_literals(cfg: KioskConfig) -> dict[str, Any]:
    return {"s3_endpoint": cfg.storage.s3_endpoint} if cfg.storage.s3_endpoint else {}


@dataclass(frozen=True, kw_only=True)
class StepSpec:
    """One container template running `python -m <model.step_module>`.

    `inputs` are model fields exposed as template inputs (with `defaults` overriding the model's);
    `literals` are fields the template fixes; `outputs` maps output names to their descriptions.
    """

    name: str
    model: type[StepParams]
    inputs: tuple[str, ...]
    outputs: Mapping[str, str]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    literals: Mapping[str, Any] = field(default_factory=dict)
    gpu: bool = False
    #: Pod annotations (e.g. keeping node autoscalers from evicting a long-lived worker).
    annotations: Mapping[str, str] = field(default_factory=dict)
    #: activeDeadlineSeconds of one attempt; None: the config's step deadline.
    deadline_seconds: int | None = None
    #: Publish the outputs as the workflow's (`status.outputs`, globalName = name). Only for a
    #: template that runs once per workflow: Argo ignores globalName on a root DAG's own outputs.
    global_outputs: bool = False


def step_container(cfg: KioskConfig, workflow_template: str, step: StepSpec) -> Container:
    gpu = step.gpu and cfg.gpu.count > 0
    res = cfg.inference.infer_resources if step.gpu else cfg.inference.step_resources
    requests: dict[str, str] = {"cpu": res.cpu, "memory": res.memory}
    limits: dict[str, str] = {"cpu": res.cpu_limit, "memory": res.memory_limit}
    if gpu:
        requests[cfg.gpu.resource] = limits[cfg.gpu.resource] = str(cfg.gpu.count)
    literals = {**storage_literals(cfg), **step.literals, "outputs_dir": OUTPUTS_DIR}
    container = Container(
        name=step.name,
        image=cfg.image.ref(gpu=gpu),
        image_pull_policy=cfg.image.pull_policy,
        command=["python", "-m", step.model.step_module],
        inputs=_params.parameters(step.model, step.inputs, step.defaults),
        outputs=[
            Parameter(
                name=name,
                description=text,
                global_name=name if step.global_outputs else None,
                value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/{name}"),
            )
            for name, text in step.outputs.items()
        ],
        env=storage_env(cfg) or None,
        resources=m.ResourceRequirements(
            requests={k: m.Quantity(v) for k, v in requests.items()},
            limits={k: m.Quantity(v) for k, v in limits.items()},
        ),
        security_context=container_security_context(),
        volume_mounts=[m.VolumeMount(name=TMP_VOLUME, mount_path="/tmp")],
        retry_strategy=retry_strategy(cfg),
        active_deadline_seconds=str(step.deadline_seconds or cfg.workflow.step_deadline_seconds),
        annotations=dict(step.annotations) or None,
        metrics=step_metrics(workflow_template, step.name),
        node_selector=dict(cfg.gpu.node_selector) if gpu and cfg.gpu.node_selector else None,
        tolerations=[
            m.Toleration(key=t.key, operator=t.operator, value=t.value or None, effect=t.effect or None)
            for t in cfg.gpu.tolerations
        ]
        if gpu and cfg.gpu.tolerations
        else None,
    )
    # The args reference the container's own inputs through Hera, so a name it lacks fails here.
    container.args = _params.args(step.model, step.inputs, literals, lambda name: container.get_parameter(name).value)
    return container


def single_step_template(
    cfg: KioskConfig,
    env: str,
    step: StepSpec,
    *,
    name: str,
    title: str,
    description: str,
    synchronization: m.Synchronization | None = None,
) -> WorkflowTemplate:
    """A WorkflowTemplate `name` whose entrypoint is its one step: Argo hands the workflow arguments
    to the step's inputs by name.
    """
    spec = template_spec(cfg, env, name, title, description)
    arguments = _params.parameters(step.model, step.inputs, step.defaults, as_arguments=True)
    with WorkflowTemplate(entrypoint=step.name, arguments=arguments, synchronization=synchronization, **spec) as wt:
        step_container(cfg, name, step)
    return wt
