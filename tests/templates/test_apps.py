"""ArgoCD objects in argocd/apps/: a locked-down AppProject and one Application per synced target."""

from __future__ import annotations

from typing import Any

import yaml

from pipelines import render
from pipelines.config import ENVIRONMENTS, load_config
from pipelines.manifests import gitops
from pipelines.tools import REPO_ROOT

APPS = REPO_ROOT / "argocd" / "apps"
LOCAL = REPO_ROOT / render.LOCAL_APPS_DIR


def docs() -> dict[str, dict[str, Any]]:
    return {(d := yaml.safe_load(p.read_text()))["metadata"]["name"]: d for p in sorted(APPS.glob("*.yaml"))}


def test_project_is_limited_to_this_repo_and_the_target_namespaces() -> None:
    (project,) = [d for d in docs().values() if d["kind"] == "AppProject"]
    prod = load_config("prod")
    assert project["spec"]["sourceRepos"] == [prod.gitops.repo_url]
    namespaces = {d["namespace"] for d in project["spec"]["destinations"]}
    expected = {load_config(e).namespace for e in gitops.SYNCED_ENVS} | {s.namespace for s in prod.serving.values()}
    expected |= {load_config(e).observability.grafana_namespace for e in gitops.SYNCED_ENVS}
    assert namespaces == expected and "*" not in namespaces
    assert project["spec"]["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]


def test_one_workflows_app_per_synced_environment_never_local() -> None:
    apps = {n: d for n, d in docs().items() if n.startswith("workflows-")}
    assert set(apps) == {f"workflows-{e}" for e in ENVIRONMENTS if e != "local"}
    for name, app in apps.items():
        env = name.removeprefix("workflows-")
        cfg = load_config(env)
        spec = app["spec"]
        assert spec["source"]["path"] == f"argocd/workflows/{env}"
        assert (REPO_ROOT / spec["source"]["path"]).is_dir()
        assert spec["destination"]["namespace"] == cfg.namespace
        assert "ServerSideApply=true" in spec["syncPolicy"]["syncOptions"]
        automated = spec["syncPolicy"].get("automated")
        assert automated == ({"prune": True, "selfHeal": True} if cfg.gitops.automated else None), name


def test_serving_apps_follow_the_workflow_apps() -> None:
    prod = load_config("prod")
    all_docs = docs()
    serving = {n: d for n, d in all_docs.items() if n.startswith("serving-")}
    assert set(serving) == {f"serving-{s}" for s in prod.serving}
    last_workflows_wave = max(
        int(d["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
        for n, d in all_docs.items()
        if n.startswith("workflows-")
    )
    for name, app in serving.items():
        stage = name.removeprefix("serving-")
        source = app["spec"]["source"]
        assert source["path"] == "argocd/charts/serving"
        assert source["helm"]["valueFiles"] == [f"values-{stage}.yaml"]
        assert app["spec"]["destination"]["namespace"] == prod.serving[stage].namespace
        assert int(app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) > last_workflows_wave


def test_every_app_belongs_to_the_project() -> None:
    project = next(n for n, d in docs().items() if d["kind"] == "AppProject")
    for name, doc in docs().items():
        if doc["kind"] == "Application":
            assert doc["spec"]["project"] == project, name


def test_apps_dir_holds_exactly_the_rendered_files() -> None:
    """Every file under argocd/apps/ is one `kiosk render` writes there, and each of those is there:
    a hand-added or a stale Application (ArgoCD would sync it) fails, whatever its suffix.
    """
    files, _ = render.render_tree(tuple(ENVIRONMENTS))
    expected = {REPO_ROOT / path for path in files if (REPO_ROOT / path).is_relative_to(APPS)}
    assert expected, "kiosk render writes nothing to argocd/apps/"
    assert {p for p in APPS.rglob("*") if p.is_file()} == expected
    assert {p for p in APPS.rglob("*") if p.is_dir()} == {LOCAL}


def test_one_observability_app_per_synced_environment_yaml_only() -> None:
    apps = {n: d for n, d in docs().items() if n.startswith("observability-")}
    assert set(apps) == {f"observability-{e}" for e in gitops.SYNCED_ENVS}
    for name, app in apps.items():
        env = name.removeprefix("observability-")
        cfg = load_config(env)
        source = app["spec"]["source"]
        assert source["path"] == f"argocd/observability/{env}" and (REPO_ROOT / source["path"]).is_dir()
        # The dashboards' JSON files are not manifests: ArgoCD must not try to apply them.
        assert source["directory"] == {"recurse": False, "include": "*.yaml"}
        assert app["spec"]["destination"]["namespace"] == cfg.namespace
        automated = app["spec"]["syncPolicy"].get("automated")
        assert automated == ({"prune": True, "selfHeal": True} if cfg.gitops.automated else None), name


def test_local_apps_have_their_own_project_fenced_to_the_local_git_server() -> None:
    local = load_config("local")
    docs = [yaml.safe_load(p.read_text()) for p in sorted(LOCAL.glob("*.yaml"))]
    (project,) = [d for d in docs if d["kind"] == "AppProject"]
    assert project["metadata"]["name"] == local.gitops.project != load_config("prod").gitops.project
    assert project["spec"]["sourceRepos"] == [local.gitops.repo_url]
    assert local.gitops.repo_url.startswith("git://127.0.0.1:")
    namespaces = {d["namespace"] for d in project["spec"]["destinations"]}
    assert local.namespace in namespaces and not namespaces & {load_config(e).namespace for e in gitops.SYNCED_ENVS}
    apps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Application"}
    assert set(apps) == {"workflows-local", "observability-local"}
    for app in apps.values():
        assert app["spec"]["project"] == project["metadata"]["name"]
        assert app["spec"]["source"]["repoURL"] == local.gitops.repo_url
        assert app["spec"]["destination"]["namespace"] == local.namespace


def test_local_apps_prune_like_every_env() -> None:
    # kube-controller-manager's garbage collector finishes a foreground deletion on the local cluster too.
    for app in [
        *gitops.local_apps(load_config("local"))[1:],
        *gitops.build_all({e: load_config(e) for e in gitops.SYNCED_ENVS})[1:],
    ]:
        assert not any(o.startswith("PrunePropagationPolicy") for o in app["spec"]["syncPolicy"]["syncOptions"])
