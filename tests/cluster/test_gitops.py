"""GitOps against a real Argo CD: `kiosk cluster up --with argocd` syncs the local env from its git
server, and a push to that server is the merge of a pull request.

One cluster for the module (its own: these tests edit, prune and re-point what Argo CD syncs, which
the session's cluster must not see). Each change is noticed through Argo CD's own hard-refresh
annotation, as a git host's webhook would make it, and every wait is on a condition.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from typer.testing import CliRunner

from pipelines.cluster import cli_cluster, controlplane, kube
from pipelines.cluster.components import argocd
from pipelines.config import KioskConfig, load_config
from pipelines.manifests import gitops
from pipelines.tools import REPO_ROOT
from tests.cluster.conftest import require_control_plane
from tests.cluster.test_kubectl import argocd_line, documented
from tests.fixtures.tools import require_tool
from tests.fixtures.waiting import wait_until

ARGOCD_NS = "argocd"
NAMESPACE = "kiosk-local"
WAIT_S = 180.0
TEMPLATES = "argocd/workflows/local"
REFRESH = "argocd.argoproj.io/refresh"


@dataclass
class GitOps:
    workdir: Path
    api: k8s.ApiClient
    url: str  # the git server's
    revision: str
    checkout: Path  # a clone of the git server, where the tests commit and push

    @property
    def dynamic(self) -> DynamicClient:
        return DynamicClient(self.api)

    def resource(self, kind: str, api_version: str = "argoproj.io/v1alpha1") -> Any:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def app(self, name: str) -> dict[str, Any]:
        return dict(self.resource("Application").get(name=name, namespace=ARGOCD_NS).to_dict())

    def refresh(self, name: str) -> None:
        """What a git host's webhook makes Argo CD do: look at the repository now."""
        body = {"metadata": {"annotations": {REFRESH: "hard"}}}
        self.resource("Application").patch(
            body=body, name=name, namespace=ARGOCD_NS, content_type="application/merge-patch+json"
        )

    def wait_app(self, name: str, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        return wait_until(lambda: _found(lambda: self.app(name), check), WAIT_S, f"{name}: {what}", poll=0.5)

    def template(self, name: str) -> dict[str, Any] | None:
        return _found(lambda: self.resource("WorkflowTemplate").get(name=name, namespace=NAMESPACE).to_dict())

    def push(self, message: str) -> str:
        """Commit what the checkout has and push it to the server's branch: the merge."""
        _git(self.checkout, "commit", "--quiet", "--all", "--message", message)
        _git(self.checkout, "push", "--quiet", self.url, f"HEAD:{self.revision}")
        return _git(self.checkout, "rev-parse", "HEAD")


def _found(get: Callable[[], Any], check: Callable[[Any], bool] = bool) -> Any:
    """`get()` when it exists and passes `check`, else None."""
    try:
        value = get()
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return value if check(value) else None


def _git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=kiosk tests", "-c", "user.email=tests@kiosk.invalid"]
    return subprocess.run(
        ["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def _status(app: dict[str, Any]) -> tuple[str | None, str | None]:
    status = app.get("status") or {}
    return (status.get("sync") or {}).get("status"), (status.get("health") or {}).get("status")


def _synced_healthy(app: dict[str, Any]) -> bool:
    """Synced and Healthy, and its last sync operation finished."""
    operation = (app.get("status") or {}).get("operationState") or {}
    return _status(app) == ("Synced", "Healthy") and operation.get("phase") == "Succeeded"


def _parameter(template: dict[str, Any] | None, name: str) -> str | None:
    parameters = ((template or {}).get("spec") or {}).get("arguments", {}).get("parameters", [])
    return next((p.get("value") for p in parameters if p["name"] == name), None)


@pytest.fixture(scope="module")
def cluster_gitops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitOps]:
    require_control_plane()
    for name in argocd.TOOLS:
        require_tool(name)
    workdir = tmp_path_factory.mktemp("gitops")
    begin = time.monotonic()
    state = controlplane.up(workdir, components=["argocd"])
    print(f"\nup --with argocd: {time.monotonic() - begin:.1f} s (the core alone: {state.started_s:.1f} s)")
    try:
        cfg = load_config("local").gitops
        checkout = workdir / "checkout"
        subprocess.run(["git", "clone", "--quiet", cfg.repo_url, str(checkout)], check=True, timeout=60)
        yield GitOps(
            workdir=workdir,
            api=kube.api_client(str(state.kubeconfig)),
            url=cfg.repo_url,
            revision=cfg.revision,
            checkout=checkout,
        )
    finally:
        controlplane.down(workdir)


def test_cluster_cli_covers_argocd(cluster_gitops: GitOps) -> None:
    workdir = ["--workdir", str(cluster_gitops.workdir)]
    shown = CliRunner().invoke(cli_cluster.app, ["status", "-o", "json", *workdir])
    assert shown.exit_code == 0, shown.output
    components = json.loads(shown.stdout)["components"]
    assert {n for n, c in components.items() if c["running"]} >= set(argocd.COMPONENT.processes)
    again = CliRunner().invoke(cli_cluster.app, ["up", "--with", "argocd", *workdir])
    assert again.exit_code == 0, again.output
    assert "cluster already up" in again.output
    assert f"git push {cluster_gitops.url} HEAD:{cluster_gitops.revision}" in again.output


def test_local_apps_sync_in_wave_order_with_server_side_apply(cluster_gitops: GitOps) -> None:
    docs = argocd.local_app_documents()  # what `up --with argocd` applied, in this order
    assert docs[0]["kind"] == "AppProject"
    waves = [int(d["metadata"]["annotations"][argocd.WAVE]) for d in docs]
    assert waves == sorted(waves)
    names = [d["metadata"]["name"] for d in docs if d["kind"] == "Application"]
    apps = {name: cluster_gitops.wait_app(name, _synced_healthy, "Synced and Healthy") for name in names}
    assert set(apps) == {"workflows-local", "observability-local"}
    for app in apps.values():
        assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    # Every object of the workflows app was written by Argo CD's server-side apply.
    live = _live_objects(cluster_gitops, apps["workflows-local"])
    assert {"ServiceAccount", "Role", "RoleBinding", "WorkflowTemplate", "CronWorkflow"} <= {o["kind"] for o in live}
    for obj in live:
        managers = {(m["manager"], m["operation"]) for m in obj["metadata"]["managedFields"]}
        assert ("argocd-controller", "Apply") in managers, (obj["kind"], obj["metadata"]["name"], managers)
    # Waves inside it: RBAC (-1) is created, and Healthy, before any template (0); Argo CD waits
    # ARGOCD_SYNC_WAVE_DELAY (2 s) between waves, so the seconds of creationTimestamp tell them apart.
    created = {w: [_created(o) for o in live if _wave(o) == w] for w in {_wave(o) for o in live}}
    assert sorted(created) == [-1, 0], created
    assert max(created[-1]) < min(created[0])


def test_documented_kubectl_lines_read_argocd(cluster_gitops: GitOps) -> None:
    """docs/cluster.md's Argo CD walk-through, its kubectl lines as written (test_kubectl.py runs the
    others), in the shell `eval "$(uv run kiosk cluster env)"` gives; the template's wait is for the
    batch size the tree has now (the walk-through's push to 8 is test_merged_pull_request_is_synced's).
    """
    require_tool("kubectl")
    workdir = shlex.quote(str(cluster_gitops.workdir))
    script = f'eval "$(uv run kiosk cluster env --workdir {workdir})" && env -0'
    out = subprocess.run(["bash", "-c", script], cwd=REPO_ROOT, capture_output=True, check=True, timeout=120)
    env = dict(item.split("=", 1) for item in out.stdout.decode().split("\0") if "=" in item)
    lines = [c for c in documented() if argocd_line(c)]
    assert len(lines) == 4, lines
    size = _parameter(cluster_gitops.template("batch-inference"), "batch-size")
    for line in lines:
        line = line.replace("'=8 workflowtemplate/", f"'={size} workflowtemplate/")
        done = subprocess.run(["bash", "-c", line], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        if line.startswith("kubectl get applications"):
            assert re.search(r"(?m)^workflows-local\s+Synced\s+Healthy", done.stdout), done.stdout


def _live_objects(ops: GitOps, app: dict[str, Any]) -> list[dict[str, Any]]:
    objects = []
    for ref in app["status"]["resources"]:
        api_version = f"{ref['group']}/{ref['version']}" if ref.get("group") else ref["version"]
        resource = ops.resource(ref["kind"], api_version)
        objects.append(resource.get(name=ref["name"], namespace=ref.get("namespace")).to_dict())
    return objects


def _wave(obj: dict[str, Any]) -> int:
    return int((obj["metadata"].get("annotations") or {}).get(argocd.WAVE, "0"))


def _created(obj: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(obj["metadata"]["creationTimestamp"].replace("Z", "+00:00"))


#: docs/cluster.md's pull request in the Argo CD walk-through: edit, render, commit and push.
PULL_REQUEST = ("sed -i ", "uv run kiosk render", "git commit ")


def documented_pull_request() -> list[str]:
    text = (REPO_ROOT / "docs" / "cluster.md").read_text()
    return [line[4:] for line in text.splitlines() if line[4:].startswith(PULL_REQUEST) and line.startswith("    ")]


def test_merged_pull_request_is_synced(cluster_gitops: GitOps) -> None:
    """The walk-through's pull request, its lines as written, in a clone of the git server (a
    newcomer's checkout; `uv run` makes the clone its own environment), then what Argo CD does.
    """
    ops = cluster_gitops
    lines = documented_pull_request()
    assert [line.split()[0] for line in lines] == ["sed", "uv", "git"], lines
    before = _parameter(ops.template("batch-inference"), "batch-size")
    found = re.search(r"\$/  batch_size: (\d+)/", lines[0])  # the replacement's batch size
    assert found is not None, lines[0]
    wanted = found.group(1)
    assert before is not None and before != wanted
    identity = {"GIT_AUTHOR_NAME": "kiosk tests", "GIT_AUTHOR_EMAIL": "tests@kiosk.invalid"}
    identity |= {"GIT_COMMITTER_NAME": "kiosk tests", "GIT_COMMITTER_EMAIL": "tests@kiosk.invalid"}
    environment = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "KIOSK_HOME")} | identity
    merged = 0.0
    for line in lines:
        if line.startswith("git "):
            assert _parameter(yaml.safe_load(_template_text(ops)), "batch-size") == wanted  # rendered
            merged = time.monotonic()
        done = subprocess.run(
            ["bash", "-c", line], cwd=ops.checkout, env=environment, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
    commit = _git(ops.checkout, "rev-parse", "HEAD")
    ops.refresh("workflows-local")
    ops.wait_app(
        "workflows-local",
        lambda a: _synced_healthy(a) and a["status"]["sync"]["revision"] == commit,
        f"Synced at {commit[:8]}",
    )
    wait_until(lambda: _parameter(ops.template("batch-inference"), "batch-size") == wanted, WAIT_S, "the new template")
    print(f"\nmerge-to-synced: {time.monotonic() - merged:.1f} s (push, then a hard refresh as a webhook would)")
    _submit_uses(ops, wanted)


def _template_text(ops: GitOps) -> str:
    return (ops.checkout / TEMPLATES / "workflowtemplate-batch-inference.yaml").read_text()


def _submit_uses(ops: GitOps, batch_size: str) -> None:
    """The next `argo submit --from workflowtemplate/batch-inference` runs the synced template."""
    argo = require_tool("argo")
    kubeconfig = str(ops.workdir / "cluster" / "kubeconfig")
    base = [str(argo), "--kubeconfig", kubeconfig, "-n", NAMESPACE]
    submit = [*base, "submit", "--from", "workflowtemplate/batch-inference", "-o", "name"]
    name = subprocess.run(submit, capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    workflows = ops.resource("Workflow")

    def stored() -> str | None:
        status = workflows.get(name=name, namespace=NAMESPACE).to_dict().get("status") or {}
        spec = status.get("storedWorkflowTemplateSpec")  # what the controller runs, stored at start
        return _parameter({"spec": spec}, "batch-size") if spec else None

    assert wait_until(stored, WAIT_S, f"{name}'s stored template") == batch_size
    subprocess.run([*base, "delete", name], capture_output=True, check=True, timeout=60)


def _edit_parameter(ops: GitOps, name: str, parameter: str, value: str) -> None:
    """What `kubectl edit` sends: a patch of the live object, under kubectl's field manager."""
    live = ops.template(name)
    parameters = live["spec"]["arguments"]["parameters"] if live else []
    index = next(i for i, p in enumerate(parameters) if p["name"] == parameter)
    patch = [{"op": "replace", "path": f"/spec/arguments/parameters/{index}/value", "value": value}]
    ops.resource("WorkflowTemplate").patch(
        body=patch,
        name=name,
        namespace=NAMESPACE,
        content_type="application/json-patch+json",
        field_manager="kubectl-edit",
    )


def _apply_app(ops: GitOps, app: dict[str, Any]) -> None:
    rejected = [r for r in kube.apply(ops.dynamic, [app]) if r.result == "rejected"]
    assert not rejected, rejected


def test_drift_is_reverted_by_self_heal_only_where_the_env_has_it(cluster_gitops: GitOps) -> None:
    ops = cluster_gitops
    synced = ops.wait_app("workflows-local", _synced_healthy, "Synced")
    assert synced["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    git_value = _parameter(ops.template("batch-inference"), "batch-size")
    _edit_parameter(ops, "batch-inference", "batch-size", "99")
    wait_until(lambda: _parameter(ops.template("batch-inference"), "batch-size") == git_value, WAIT_S, "self-heal")

    # prod's policy (no automated sync, so no self-heal), rendered for the local env.
    local = load_config("local")
    manual = local.model_copy(update={"gitops": local.gitops.model_copy(update={"automated": False})})
    assert not load_config("prod").gitops.automated
    _apply_app(ops, _workflows_app(manual))
    ops.wait_app("workflows-local", lambda a: "automated" not in a["spec"]["syncPolicy"], "the manual policy")
    _edit_parameter(ops, "batch-inference", "batch-size", "99")
    drifted = ops.wait_app("workflows-local", lambda a: _status(a)[0] == "OutOfSync", "OutOfSync")
    assert _template_out_of_sync(drifted, "batch-inference")
    # A later full reconciliation leaves the edit in place.
    seen = drifted["status"]["reconciledAt"]
    ops.refresh("workflows-local")
    again = ops.wait_app("workflows-local", lambda a: a["status"]["reconciledAt"] > seen, "a later reconciliation")
    assert _status(again)[0] == "OutOfSync"
    assert _parameter(ops.template("batch-inference"), "batch-size") == "99"

    _apply_app(ops, _workflows_app(local))  # the local env's own policy back: it heals
    wait_until(lambda: _parameter(ops.template("batch-inference"), "batch-size") == git_value, WAIT_S, "self-heal")
    ops.wait_app("workflows-local", _synced_healthy, "Synced again")


def _workflows_app(cfg: KioskConfig) -> dict[str, Any]:
    """The local env's workflows Application as `kiosk render` makes it from `cfg`."""
    return next(a for a in gitops.local_apps(cfg) if a["metadata"]["name"] == "workflows-local")


def _template_out_of_sync(app: dict[str, Any], name: str) -> bool:
    return any(
        r["kind"] == "WorkflowTemplate" and r["name"] == name and r.get("status") == "OutOfSync"
        for r in app["status"]["resources"]
    )


def test_template_removed_from_the_tree_is_pruned(cluster_gitops: GitOps) -> None:
    ops = cluster_gitops
    ops.wait_app("workflows-local", _synced_healthy, "Synced")
    assert ops.template("publish-model") is not None
    _git(ops.checkout, "rm", "--quiet", f"{TEMPLATES}/workflowtemplate-publish-model.yaml")
    commit = ops.push("local: drop the publish-model template")
    ops.refresh("workflows-local")
    wait_until(lambda: ops.template("publish-model") is None, WAIT_S, "publish-model pruned")
    ops.wait_app(
        "workflows-local",
        lambda a: (
            _synced_healthy(a)
            and a["status"]["sync"]["revision"] == commit
            and "publish-model" not in {r["name"] for r in a["status"]["resources"]}
        ),
        f"Synced at {commit[:8]}, without publish-model",
    )
    assert ops.template("batch-inference") is not None  # only what left the tree


OTHER_REPO = "https://github.com/someone-else/kiosk-pipelines.git"
PROJECT = "project 'kiosk-local'"


@pytest.mark.parametrize(
    ("name", "repo_url", "namespace", "refusal"),
    [
        ("fence-repo", OTHER_REPO, NAMESPACE, f"application repo {OTHER_REPO} is not permitted in {PROJECT}"),
        (
            "fence-namespace",
            "",
            "kube-system",
            f"namespace 'kube-system' do not match any of the allowed destinations in {PROJECT}",
        ),
    ],
)
def test_app_project_refuses_another_repo_or_namespace(
    cluster_gitops: GitOps, name: str, repo_url: str, namespace: str, refusal: str
) -> None:
    ops = cluster_gitops
    app = _workflows_app(load_config("local"))
    app["metadata"]["name"] = name
    app["spec"]["source"]["repoURL"] = repo_url or ops.url
    app["spec"]["destination"]["namespace"] = namespace
    _apply_app(ops, app)
    try:
        found = ops.wait_app(name, lambda a: bool(_invalid_spec(a)), "an InvalidSpecError condition")
        assert refusal in _invalid_spec(found)
        assert "operationState" not in (found.get("status") or {})  # nothing was synced
    finally:
        ops.resource("Application").delete(name=name, namespace=ARGOCD_NS)


def _invalid_spec(app: dict[str, Any]) -> str:
    conditions = (app.get("status") or {}).get("conditions") or []
    return "; ".join(c["message"] for c in conditions if c["type"] == "InvalidSpecError")


def test_serving_chart_renders_through_repo_server_helm(cluster_gitops: GitOps) -> None:
    ops = cluster_gitops
    local = load_config("local")
    app = gitops.serving_app("staging", local, automated=True)
    namespace = app["spec"]["destination"]["namespace"]
    _apply_app(ops, app)
    name = app["metadata"]["name"]
    synced = ops.wait_app(
        name,
        lambda a: _status(a)[0] == "Synced" and (a["status"].get("operationState") or {}).get("phase") == "Succeeded",
        "Synced",
    )
    # What `helm template` makes of the chart with the stage's values, Argo CD made and created.
    chart = REPO_ROOT / gitops.SERVING_CHART
    helm = [str(require_tool("helm")), "template", name, str(chart), "-f", str(chart / "values-staging.yaml")]
    out = subprocess.run([*helm, "--namespace", namespace], capture_output=True, text=True, check=True, timeout=60)
    rendered = yaml.safe_load_all(out.stdout)
    expected = {(d["kind"], d["metadata"]["name"]) for d in rendered if d}
    assert {(r["kind"], r["name"]) for r in synced["status"]["resources"]} == expected
    for obj in _live_objects(ops, synced):
        assert obj["metadata"]["namespace"] == namespace
        assert obj["metadata"]["labels"]["helm.sh/chart"].startswith("serving-")
