"""ArgoCD objects for `argocd/apps/`: the AppProject and one Application per synced target.

Applications are CRDs, which the kubernetes client has no models for, so they are plain mappings.
"""

from __future__ import annotations

from typing import Any

from pipelines.config import KioskConfig

# The envs a cluster's Argo CD syncs from the team's repository (`argocd/apps/`). `local` is synced
# only by the local cluster's Argo CD, from its own git server (`argocd/apps/local/`, `local_apps`).
SYNCED_ENVS = ("dev", "staging", "prod")
LOCAL_ENV = "local"
SERVING_CHART = "argocd/charts/serving"
CLUSTER = "https://kubernetes.default.svc"
# Waves order the apps of the app-of-apps: the project, then workflows (RBAC -1 / templates 0 inside
# each), then serving, which may run the models the workflows publish, and the dashboards and alerts.
WAVE_PROJECT, WAVE_WORKFLOWS, WAVE_SERVING = "-2", "0", "1"
WAVE_OBSERVABILITY = "1"


def _labels(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "kiosk-pipelines",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "kiosk-pipelines",
        "app.kubernetes.io/managed-by": "kiosk-render",
    }


def _meta(cfg: KioskConfig, name: str, wave: str, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": cfg.gitops.argocd_namespace,
        "labels": _labels(component),
        "annotations": {"argocd.argoproj.io/sync-wave": wave},
    }


def app_project(shared: KioskConfig, envs: dict[str, KioskConfig]) -> dict[str, Any]:
    namespaces = sorted(
        {c.namespace for c in envs.values()}
        | {s.namespace for s in shared.serving.values()}
        | {c.observability.grafana_namespace for c in envs.values()}  # the dashboards' ConfigMaps
    )
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": _meta(shared, shared.gitops.project, WAVE_PROJECT, "gitops"),
        "spec": {
            "description": "kiosk-pipelines: Argo workflows and the serving chart, from this repository only.",
            "sourceRepos": sorted({c.gitops.repo_url for c in envs.values()}),
            "destinations": [{"server": CLUSTER, "namespace": ns} for ns in namespaces],
            # Only what CreateNamespace=true needs; every other cluster-scoped kind is refused.
            "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
        },
    }


def _sync_policy(automated: bool) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "syncOptions": ["ServerSideApply=true", "CreateNamespace=true"],
        "retry": {"limit": 5, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"}},
    }
    if automated:
        policy = {"automated": {"prune": True, "selfHeal": True}, **policy}
    return policy


def workflows_app(env: str, cfg: KioskConfig) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": _meta(cfg, f"workflows-{env}", WAVE_WORKFLOWS, "workflows"),
        "spec": {
            "project": cfg.gitops.project,
            "source": {
                "repoURL": cfg.gitops.repo_url,
                "targetRevision": cfg.gitops.revision,
                "path": f"argocd/workflows/{env}",
                "directory": {"recurse": False},
            },
            "destination": {"server": CLUSTER, "namespace": cfg.namespace},
            "syncPolicy": _sync_policy(cfg.gitops.automated),
        },
    }


def observability_app(env: str, cfg: KioskConfig) -> dict[str, Any]:
    """The env's dashboards (ConfigMaps in the Grafana namespace) and PrometheusRule.

    Only the YAML: the plain dashboard JSON next to it is for import by hand, not a manifest. The
    GPU capacity objects (`argocd/cluster/`) are cluster-scoped and left to the platform's tooling.
    """
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": _meta(cfg, f"observability-{env}", WAVE_OBSERVABILITY, "observability"),
        "spec": {
            "project": cfg.gitops.project,
            "source": {
                "repoURL": cfg.gitops.repo_url,
                "targetRevision": cfg.gitops.revision,
                "path": f"argocd/observability/{env}",
                "directory": {"recurse": False, "include": "*.yaml"},
            },
            "destination": {"server": CLUSTER, "namespace": cfg.namespace},
            "syncPolicy": _sync_policy(cfg.gitops.automated),
        },
    }


def serving_app(stage: str, cfg: KioskConfig, automated: bool) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": _meta(cfg, f"serving-{stage}", WAVE_SERVING, "serving"),
        "spec": {
            "project": cfg.gitops.project,
            "source": {
                "repoURL": cfg.gitops.repo_url,
                "targetRevision": cfg.gitops.revision,
                "path": SERVING_CHART,
                "helm": {"valueFiles": [f"values-{stage}.yaml"]},
            },
            "destination": {"server": CLUSTER, "namespace": cfg.serving[stage].namespace},
            "syncPolicy": _sync_policy(automated),
        },
    }


def local_apps(cfg: KioskConfig) -> list[dict[str, Any]]:
    """`argocd/apps/local/`: the local env's own AppProject (only its repo, the local git server)
    and its workflows and observability Applications. They prune as every env does (a foreground
    deletion, whose finalizer kube-controller-manager's garbage collector removes). No serving
    Application: the agent runs host processes, not the serving image, so its pods would not be Ready.
    """
    apps = [workflows_app(LOCAL_ENV, cfg), observability_app(LOCAL_ENV, cfg)]
    return [app_project(cfg, {LOCAL_ENV: cfg}), *apps]


def build_all(envs: dict[str, KioskConfig]) -> list[dict[str, Any]]:
    """`envs` holds the config of every synced environment; prod's gives the shared settings."""
    shared = envs["prod"]
    return [
        app_project(shared, envs),
        *(workflows_app(env, envs[env]) for env in SYNCED_ENVS),
        *(observability_app(env, envs[env]) for env in SYNCED_ENVS),
        # A stage named like an environment syncs the way that environment does (canary: like prod).
        *(serving_app(stage, shared, envs.get(stage, shared).gitops.automated) for stage in shared.serving),
    ]
