"""Policy every rendered workflow obeys (security, limits, retries, metrics, UI metadata, crons)."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.config import ENVIRONMENTS
from pipelines.config import load_config as _load_config
from pipelines.tools import REPO_ROOT

WORKFLOWS = REPO_ROOT / "argocd" / "workflows"
FILES = sorted(WORKFLOWS.glob("*/*.yaml"))
ARGO_KINDS = {"WorkflowTemplate", "CronWorkflow"}
LABELS = {f"app.kubernetes.io/{k}" for k in ("name", "instance", "component", "part-of", "version", "managed-by")}


@functools.cache
def load(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


load_config = functools.cache(_load_config)


def docs(kind: str) -> list[tuple[str, Path, dict[str, Any]]]:
    return [(p.parent.name, p, d) for p in FILES if (d := load(p))["kind"] == kind]


def ids(cases: list[tuple[str, Path, dict[str, Any]]]) -> list[str]:
    return [f"{env}/{path.name}" for env, path, _ in cases]


TEMPLATES = docs("WorkflowTemplate")
CRONS = docs("CronWorkflow")


def wt(env: str, name: str) -> dict[str, Any]:
    return load(WORKFLOWS / env / f"workflowtemplate-{name}.yaml")


def test_every_environment_has_every_kind() -> None:
    for env in ENVIRONMENTS:
        kinds = {load(p)["kind"] for p in (WORKFLOWS / env).glob("*.yaml")}
        assert {"WorkflowTemplate", "CronWorkflow", "ServiceAccount", "Role", "RoleBinding"} <= kinds, env


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_metadata(path: Path) -> None:
    doc = load(path)
    meta = doc["metadata"]
    assert "generateName" not in meta and meta["name"], "fixed names only"
    assert path.name == f"{doc['kind'].lower()}-{meta['name']}.yaml"
    assert meta["namespace"] == load_config(path.parent.name).namespace
    assert set(meta["labels"]) >= LABELS, sorted(LABELS - set(meta["labels"]))
    wave = meta["annotations"]["argocd.argoproj.io/sync-wave"]
    assert wave == ("0" if doc["kind"] in ARGO_KINDS else "-1"), "RBAC/config first, then templates"
    if doc["kind"] in ARGO_KINDS:
        assert meta["annotations"]["workflows.argoproj.io/title"]
        assert meta["annotations"]["workflows.argoproj.io/description"]


def check_runtime(env: str, spec: dict[str, Any]) -> None:
    cfg = load_config(env)
    assert spec["serviceAccountName"] == cfg.service_account != "default"
    assert (WORKFLOWS / env / f"serviceaccount-{cfg.service_account}.yaml").is_file()
    sc = spec["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] >= 10000
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["podGC"]["strategy"] and spec["activeDeadlineSeconds"] > 0
    assert set(spec["ttlStrategy"]) >= {"secondsAfterCompletion", "secondsAfterSuccess", "secondsAfterFailure"}


@pytest.mark.parametrize(("env", "path", "doc"), TEMPLATES, ids=ids(TEMPLATES))
def test_workflow_template_spec(env: str, path: Path, doc: dict[str, Any]) -> None:
    spec = doc["spec"]
    check_runtime(env, spec)
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "4Gi"}} in spec["volumes"]
    assert {m["name"] for m in spec["metrics"]["prometheus"]} >= {
        "kiosk_workflow_duration_seconds",
        "kiosk_workflow_failures_total",
    }
    assert set(spec["podMetadata"]["labels"]) >= LABELS and set(spec["workflowMetadata"]["labels"]) >= LABELS
    names = [t["name"] for t in spec["templates"]]
    assert spec["entrypoint"] in names and len(names) == len(set(names))
    for param in spec.get("arguments", {}).get("parameters", []):
        assert param.get("description"), f"argument {param['name']} needs a description"
        assert "value" in param, f"argument {param['name']} needs a default"
        if "enum" in param:
            assert param["value"] in param["enum"]
        if param["value"] in ("true", "false"):
            assert param.get("enum") == ["true", "false"], f"{param['name']} is a fixed choice"


def step_templates() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (env, f"{env}/{path.name}::{t['name']}", t)
        for env, path, doc in TEMPLATES
        for t in doc["spec"]["templates"]
        if "container" in t
    ]


STEPS = step_templates()


@pytest.mark.parametrize(("env", "case", "template"), STEPS, ids=[c for _, c, _ in STEPS])
def test_step_container(env: str, case: str, template: dict[str, Any]) -> None:
    cfg = load_config(env)
    c = template["container"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"] and sc.get("privileged") is not True
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    for side in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][side]), side
    assert c["image"].startswith(f"{cfg.image.registry}/") and c["image"].endswith(f":{cfg.image.tag}")
    retry = template["retryStrategy"]
    assert int(retry["limit"]) == cfg.workflow.retry_limit and retry["backoff"]["duration"]
    assert "lastRetry.exitCode" in retry["expression"], "permanent errors (exit 2) must not be retried"
    metrics = {m["name"]: m for m in template["metrics"]["prometheus"]}
    assert metrics["kiosk_step_duration_seconds"]["histogram"]["value"] == "{{duration}}"
    assert "{{status}}" in metrics["kiosk_step_failures_total"]["when"]
    assert all(re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name) and m["help"] for name, m in metrics.items())
    # A lane worker lives as long as the run's inference; every other step gets the step deadline.
    lane = c["command"] == ["python", "-m", "steps.infer"]
    deadline = cfg.workflow.active_deadline_seconds if lane else cfg.workflow.step_deadline_seconds
    assert int(template["activeDeadlineSeconds"]) == deadline
    for p in template.get("inputs", {}).get("parameters", []):
        assert p.get("description"), f"input {p['name']} needs a description"
    for out in template.get("outputs", {}).get("parameters", []):
        assert out["valueFrom"] == {"path": f"/tmp/outputs/{out['name']}"}
    assert "--outputs-dir=/tmp/outputs" in c["args"]


@pytest.mark.parametrize(("env", "case", "template"), STEPS, ids=[c for _, c, _ in STEPS])
def test_secrets_only_by_reference(env: str, case: str, template: dict[str, Any]) -> None:
    cfg = load_config(env)
    env_vars = {e["name"]: e for e in template["container"].get("env", [])}
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        if cfg.storage.credentials_secret and cfg.storage.uri.startswith("s3://"):
            ref = env_vars[key]["valueFrom"]["secretKeyRef"]
            assert ref["name"] == cfg.storage.credentials_secret and "value" not in env_vars[key]
        else:
            assert key not in env_vars, "no credentials: the pod identity (IRSA) signs requests"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_gpu_only_for_infer_and_only_when_configured(env: str) -> None:
    cfg = load_config(env)
    for _, case, template in [s for s in STEPS if s[0] == env]:
        c = template["container"]
        gpu = template["name"] == "infer" and cfg.gpu.count > 0
        assert (cfg.gpu.resource in c["resources"]["limits"]) == gpu, case
        assert ("tolerations" in template) == (gpu and bool(cfg.gpu.tolerations)), case
        assert ("nodeSelector" in template) == (gpu and bool(cfg.gpu.node_selector)), case
        assert c["image"] == cfg.image.ref(gpu=gpu), case
        if template["name"] == "infer":
            assert f"--device={cfg.gpu.device}" in c["args"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_pipeline_dag_fans_infer_out_over_lanes(env: str) -> None:
    templates = {t["name"]: t for t in wt(env, "batch-inference")["spec"]["templates"]}
    tasks = {t["name"]: t for t in templates["pipeline"]["dag"]["tasks"]}
    assert tasks["infer"]["depends"] == "ingest"
    assert tasks["report"]["depends"] == "infer", "a report after a failed infer would make the run succeed"
    # One lane pod per sequence item, straight from the DAG: no Steps indirection, no shard list.
    assert tasks["infer"]["withSequence"]["count"] == "{{inputs.parameters.parallelism}}"
    lane = templates[tasks["infer"]["template"]]
    assert "container" in lane and lane["container"]["command"] == ["python", "-m", "steps.infer"]
    arguments = {p["name"]: p["value"] for p in tasks["infer"]["arguments"]["parameters"]}
    assert arguments["lane"] == "{{item}}" and arguments["lanes"] == "{{inputs.parameters.parallelism}}"
    assert arguments["run-uri"] == "{{inputs.parameters.run-uri}}"
    assert not any("tasks.ingest.outputs" in v for v in arguments.values())
    assert lane["metadata"]["annotations"] == {
        "karpenter.sh/do-not-disrupt": "true",
        "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
    }
    assert "--attempt={{retries}}" in lane["container"]["args"]
    assert {p["name"] for p in templates["ingest"]["outputs"]["parameters"]} == {"count", "rejected", "shards"}
    wanted = {"input-uri", "output-uri", "model-uri", "batch-size", "shard-size", "parallelism"}
    args = {p["name"] for p in wt(env, "batch-inference")["spec"]["arguments"]["parameters"]}
    assert wanted <= args
    outputs = {p["name"] for p in templates["main"]["outputs"]["parameters"]}
    assert outputs == {"processed", "failed", "summary-uri"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_benchmark_runs_the_pipeline_by_template_ref_per_sweep_point(env: str) -> None:
    spec = wt(env, "benchmark")["spec"]
    main = next(t for t in spec["templates"] if t["name"] == spec["entrypoint"])
    tasks = {t["name"]: t for t in main["dag"]["tasks"]}
    assert tasks["sweep"]["templateRef"] == {"name": "batch-inference", "template": "pipeline"}
    assert tasks["sweep"]["withParam"] == "{{workflow.parameters.sweep}}"
    assert main["parallelism"] == 1
    pipeline = next(t for t in wt(env, "batch-inference")["spec"]["templates"] if t["name"] == "pipeline")
    required = {p["name"] for p in pipeline["inputs"]["parameters"] if "default" not in p}
    assert required <= {p["name"] for p in tasks["sweep"]["arguments"]["parameters"]}


@pytest.mark.parametrize(("env", "path", "doc"), CRONS, ids=ids(CRONS))
def test_cron(env: str, path: Path, doc: dict[str, Any]) -> None:
    cfg = load_config(env)
    spec = doc["spec"]
    ref = spec["workflowSpec"]["workflowTemplateRef"]["name"]
    assert (WORKFLOWS / env / f"workflowtemplate-{ref}.yaml").is_file()
    schedule = {"retention-cleanup": cfg.retention.cron, "batch-inference": cfg.batch_cron}[ref]
    assert spec["schedules"] == schedule.schedules and spec["timezone"] == schedule.timezone
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == schedule.starting_deadline_seconds
    assert spec["suspend"] is schedule.suspend
    assert spec["workflowSpec"]["synchronization"]["mutexes"]
    check_runtime(env, spec["workflowSpec"])


def test_batch_cron_is_suspended_in_dev_only() -> None:
    suspended = {
        env for env, _, doc in CRONS if doc["metadata"]["name"] == "batch-inference" and doc["spec"]["suspend"]
    }
    assert suspended == {"dev"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_retention_is_a_dry_run_unless_scheduled(env: str) -> None:
    template = wt(env, "retention-cleanup")["spec"]
    (dry_run,) = [p for p in template["arguments"]["parameters"] if p["name"] == "dry-run"]
    assert dry_run["value"] == "true" and dry_run["enum"] == ["true", "false"]
    cron = load(WORKFLOWS / env / "cronworkflow-retention-cleanup.yaml")["spec"]["workflowSpec"]
    assert {"name": "dry-run", "value": "false"} in cron["arguments"]["parameters"]
    assert cron["synchronization"] == template["synchronization"], "manual and scheduled runs share a mutex"
    (cleanup,) = [t for t in template["templates"] if "container" in t]
    assert not any(a.startswith("--allow-bucket-root") for a in cleanup["container"]["args"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rbac_is_the_executor_minimum(env: str) -> None:
    cfg = load_config(env)
    roles = [d for p in (WORKFLOWS / env).glob("role-*.yaml") if (d := load(p))["kind"] == "Role"]
    assert [r["rules"] for r in roles] == [
        [
            {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]},
            {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["get"]},
        ]
    ]
    bindings = [load(p) for p in (WORKFLOWS / env).glob("rolebinding-*.yaml")]
    assert [b["subjects"] for b in bindings] == [
        [{"kind": "ServiceAccount", "name": cfg.service_account, "namespace": cfg.namespace}]
    ]
    assert [b["roleRef"]["name"] for b in bindings] == [roles[0]["metadata"]["name"]]


def test_no_secret_objects_are_rendered() -> None:
    assert not [p for p in FILES if load(p)["kind"] == "Secret"]
