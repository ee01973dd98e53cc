"""The shape of kiosk's configuration. Every field is validated at render time."""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_DNS1123 = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DURATION = r"^[1-9][0-9]*(m|h|d)$"
# Argo (Go) durations as retry backoffs take them: 30s, 5m, 1h30m.
_ARGO_DURATION = r"^([0-9]+(s|m|h))+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Image(_Strict):
    registry: str = Field(description="Registry host and path, e.g. ghcr.io/acme.")
    name: str = Field(description="CPU steps image name.")
    gpu_name: str = Field(description="GPU steps image name (onnxruntime-gpu).")
    tag: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    digest: str = Field("", pattern=r"^(sha256:[a-f0-9]{64})?$", description="Pin by digest when set.")
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"

    def ref(self, gpu: bool = False) -> str:
        name = self.gpu_name if gpu else self.name
        suffix = f"@{self.digest}" if self.digest else ""
        return f"{self.registry}/{name}:{self.tag}{suffix}"


class Storage(_Strict):
    uri: str = Field(description="Root URI of the data store: s3://bucket[/prefix] or file:///dir.")
    s3_endpoint: str = Field("", description="Endpoint URL for MinIO/Ceph; empty means AWS.")
    region: str = "us-east-1"
    credentials_secret: str = Field(
        "", description="Secret with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; empty: IRSA/workload identity."
    )

    @field_validator("uri")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not re.match(r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?|file:///?.+)$", value):
            raise ValueError("must be s3://bucket[/prefix] or file:///path")
        return value.rstrip("/")

    @property
    def resolved_uri(self) -> str:
        """The URI with `$KIOSK_WORKDIR` (and any other variable) taken from the environment."""
        return os.path.expandvars(self.uri)


class Model(_Strict):
    uri: str = Field(description="ONNX model URI (s3://, file:// or package://).")
    spec: str = Field("", description="Model spec (JSON or URI); empty: from the model's metadata.")
    name: str = Field("detector", pattern=r"^[a-zA-Z0-9_.-]+$", description="Name in the Triton model repository.")
    repository_prefix: str = Field("model-repository", description="Triton model repository, under storage.uri.")


class Toleration(_Strict):
    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute", ""] = "NoSchedule"


class Gpu(_Strict):
    resource: str = "nvidia.com/gpu"
    count: int = Field(1, ge=0, le=16)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    device: Literal["cpu", "cuda", "tensorrt"] = "cuda"
    allow_cpu_fallback: bool = False


class Resources(_Strict):
    cpu: str = "500m"
    memory: str = "1Gi"
    cpu_limit: str = "2"
    memory_limit: str = "4Gi"


class Inference(_Strict):
    shard_size: int = Field(100, ge=1, le=100_000)
    batch_size: int = Field(8, ge=1, le=1024)
    parallelism: int = Field(4, ge=1, le=1000)
    max_failure_ratio: float = Field(0.05, ge=0, le=1)
    input_prefix: str = "uploads"
    output_prefix: str = "outputs"
    runs_prefix: str = "runs"
    step_resources: Resources = Resources()
    infer_resources: Resources = Resources(cpu="2", memory="4Gi", cpu_limit="4", memory_limit="8Gi")
    # Lane workers: a claim without a heartbeat for this long is taken over by another lane.
    claim_ttl_seconds: float = Field(60.0, ge=1, le=86_400)


class Schedule(_Strict):
    schedules: list[str] = Field(min_length=1, description="Cron expressions.")
    timezone: str = "UTC"
    suspend: bool = False
    starting_deadline_seconds: int = Field(300, ge=0)
    successful_jobs_history_limit: int = Field(3, ge=0, description="Succeeded runs the CronWorkflow keeps.")
    failed_jobs_history_limit: int = Field(3, ge=0, description="Failed runs the CronWorkflow keeps.")


class Retention(_Strict):
    prefixes: list[str] = Field(min_length=1)
    older_than: str = Field(pattern=_DURATION)
    max_deletes: int = Field(10_000, ge=0)
    cron: Schedule
    # Pushgateway groups of batch runs (ingest, infer lanes) are pruned by the cleanup once their last
    # push is older than this; "" keeps them. Only where a Pushgateway is configured.
    metrics_max_age: str = Field("14d", pattern=r"^$|" + _DURATION)

    @field_validator("prefixes")
    @classmethod
    def _no_root(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if prefix.strip().strip("/") == "":
                raise ValueError("an empty or '/' prefix would clean the whole bucket")
        return value


class SweepPoint(_Strict):
    batch_size: int = Field(ge=1, le=1024)
    shard_size: int = Field(ge=1, le=100_000)
    parallelism: int = Field(ge=1, le=1000)


class Benchmark(_Strict):
    images: int = Field(256, ge=1)
    width: int = Field(512, ge=16)
    height: int = Field(512, ge=16)
    sweep: list[SweepPoint] = Field(min_length=1)
    prometheus_url: str = ""
    # The Pushgateway's scrape interval in that Prometheus: a lane's last push, made as a run ends, is
    # scraped up to this long after it, so the benchmark widens each window and waits that long.
    prometheus_lag_seconds: float = Field(60.0, ge=0, le=600)
    gpu_price_per_hour: float = Field(0.0, ge=0)
    cpu_price_per_hour: float = Field(0.0, ge=0)
    fail_on_regression: float = Field(0.0, ge=0, le=100)
    # S3 request prices (AWS S3 Standard list prices: $0.0004 per 1k GET/HEAD, $0.005 per 1k PUT/LIST).
    s3_get_price_per_1k: float = Field(0.0004, ge=0)
    s3_put_price_per_1k: float = Field(0.005, ge=0)


class ArtifactRepository(_Strict):
    config_map: str = "artifact-repositories"
    key: str = "default-v1"


class RetryBackoff(_Strict):
    """Argo's retryStrategy.backoff for every step: waits of duration * factor^n, at most cap, in all
    at most max_duration.
    """

    duration: str = Field("30s", pattern=_ARGO_DURATION)
    factor: int = Field(2, ge=1)
    cap: str = Field("5m", pattern=_ARGO_DURATION)
    max_duration: str = Field("30m", pattern=_ARGO_DURATION)


class WorkflowDefaults(_Strict):
    pod_gc: Literal["OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess"] = "OnPodSuccess"
    ttl_after_completion_seconds: int = Field(86_400, ge=0)
    ttl_after_success_seconds: int = Field(3_600, ge=0)
    ttl_after_failure_seconds: int = Field(604_800, ge=0)
    active_deadline_seconds: int = Field(21_600, ge=60)
    step_deadline_seconds: int = Field(3_600, ge=30)
    retry_limit: int = Field(3, ge=0, le=10)
    retry_backoff: RetryBackoff = RetryBackoff()
    run_as_user: int = Field(10001, ge=10000)
    tmp_size_limit: str = Field(
        "4Gi", pattern=r"^[0-9]+(Ki|Mi|Gi|Ti)$", description="sizeLimit of each pod's /tmp emptyDir (outputs, scratch)."
    )


class ServingStage(_Strict):
    namespace: str = Field(pattern=_DNS1123)


class GitOps(_Strict):
    repo_url: str
    revision: str = "main"
    argocd_namespace: str = "argocd"
    project: str = Field("kiosk", pattern=_DNS1123)
    automated: bool = Field(True, description="ArgoCD syncs (with prune and self-heal) without a person.")


# --- Operations: dashboards, alert rules and GPU capacity (`argocd/observability/`, `argocd/cluster/`) ---
_PROM_DURATION = r"^[1-9][0-9]*(s|m|h|d)$"


class Alerts(_Strict):
    failure_ratio: float = Field(
        0.05, ge=0, le=1, description="Alert when a recent run's failed / attempted images exceed this."
    )
    recent: str = Field("6h", pattern=_PROM_DURATION, description="How long a finished run counts for the alerts.")
    retention_missed_periods: int = Field(
        2, ge=1, le=100, description="Alert when no retention run succeeded for this many schedule periods."
    )
    retention_period: str = Field(
        "", pattern=r"^([1-9][0-9]*(m|h|d))?$", description="Retention schedule period; empty: from retention.cron."
    )
    gpu_idle_percent: float = Field(10, ge=0, le=100, description="GPU utilisation under which an infer GPU idles.")
    gpu_idle_for: str = Field("15m", pattern=_PROM_DURATION)
    controller_down_for: str = Field("5m", pattern=_PROM_DURATION)


class Observability(_Strict):
    grafana_namespace: str = Field("monitoring", pattern=_DNS1123, description="Where Grafana's sidecar looks.")
    dashboard_label: str = Field("grafana_dashboard", description="Label the Grafana sidecar selects ConfigMaps by.")
    dashboard_label_value: str = "1"
    datasource_uid: str = Field("prometheus", description="UID of the Prometheus data source in Grafana.")
    rule_labels: dict[str, str] = Field(
        default_factory=lambda: {"release": "kube-prometheus-stack"},
        description="Labels the Prometheus operator's ruleSelector matches.",
    )
    controller_job: str = Field(
        "workflow-controller-metrics", description="`job` label of the workflow-controller's scrape target."
    )
    infer_pod_regex: str = Field(
        ".+-infer-[0-9]+", description="Infer pod names (Argo's v2 pod names: <workflow>-<template>-<hash>)."
    )
    alerts: Alerts = Alerts()


class NodeClass(_Strict):
    name: str = Field("kiosk-gpu", pattern=_DNS1123)
    role: str = Field("KarpenterNodeRole-kiosk", description="IAM role of the nodes (example).")
    discovery_tag: str = Field("kiosk", description="Value of the karpenter.sh/discovery tag on subnets and SGs.")
    ami_alias: str = Field("al2023@latest", description="EKS-optimised AMI family (ships the NVIDIA driver).")
    volume_size: str = Field("100Gi", pattern=r"^[1-9][0-9]*Gi$")


CapacityType = Literal["on-demand", "spot"]


def _on_demand() -> list[CapacityType]:
    return ["on-demand"]


class Capacity(_Strict):
    node_pool: str = Field("kiosk-gpu", pattern=_DNS1123)
    max_gpus: int = Field(8, ge=0, le=10_000, description="NodePool limit on nvidia.com/gpu across its nodes.")
    consolidate_after: str = Field(
        "60s", pattern=r"^([0-9]+(s|m|h))+$", description="How long an empty GPU node waits before it goes."
    )
    instance_families: list[str] = Field(default_factory=lambda: ["g5", "g6"], min_length=1)
    capacity_types: list[CapacityType] = Field(default_factory=_on_demand, min_length=1)
    expire_after: str = Field("720h", pattern=r"^(([0-9]+(s|m|h))+|Never)$")
    node_class: NodeClass = NodeClass()
    scale_down_delay: str = Field(
        "2m", pattern=r"^[1-9][0-9]*(s|m|h)$", description="cluster-autoscaler alternative: scale-down-unneeded-time."
    )
    time_slicing_namespace: str = Field("gpu-operator", pattern=_DNS1123)
    time_slicing_config_map: str = Field("kiosk-time-slicing", pattern=_DNS1123)
    time_slicing_replicas: dict[str, int] = Field(
        default_factory=lambda: {"staging": 4, "canary": 2, "prod": 1},
        description="Per serving stage: pods that share one GPU (1: a whole GPU each).",
    )

    @field_validator("time_slicing_replicas")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for stage, replicas in value.items():
            if not 1 <= replicas <= 64:
                raise ValueError(f"{stage}: replicas per GPU must be between 1 and 64 (got {replicas})")
        return value


class KioskConfig(_Strict):
    namespace: str = Field(pattern=_DNS1123)
    service_account: str = Field(pattern=_DNS1123)
    image: Image
    storage: Storage
    model: Model
    gpu: Gpu = Gpu()
    inference: Inference = Inference()
    retention: Retention
    batch_cron: Schedule
    benchmark: Benchmark
    artifact_repository: ArtifactRepository = ArtifactRepository()
    workflow: WorkflowDefaults = WorkflowDefaults()
    serving: dict[str, ServingStage] = Field(default_factory=dict)
    gitops: GitOps
    pushgateway: str = ""
    #: The environment's name: the config file's, set by the loader (not a key of the YAML). It is
    #: the `env` label of every group the steps push (`templates._common.push_literals`).
    env: str = ""
    observability: Observability = Observability()
    capacity: Capacity = Capacity()

    @field_validator("service_account")
    @classmethod
    def _not_default(cls, value: str) -> str:
        if value == "default":
            raise ValueError("workflows must not run as the 'default' ServiceAccount")
        return value
