"""The real `kubectl` (built from the pinned kubernetes module) against the local cluster, in the
environment `eval "$(uv run kiosk cluster env)"` gives.

Every `kubectl` command in README.md and docs/*.md runs as written, through bash, save what names
another env (SUBSTITUTIONS) and an optional flag in brackets (both forms run). The Argo CD walk-through
of docs/cluster.md needs Argo CD: tests/cluster/test_gitops.py runs those lines (ARGOCD_LINES). A new
command no rule makes runnable fails the test.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
from typing import Any

import pytest
import yaml

from pipelines.lint import crds
from pipelines.tools import REPO_ROOT
from tests.cluster.conftest import NAMESPACE, ArgoServer
from tests.fixtures import documented as docs
from tests.fixtures.tools import require_tool

SUBSTITUTIONS = [("argocd/workflows/dev/", "argocd/workflows/local/")]
OPTIONAL = " [--dry-run=server]"
CAPACITY = "kubectl apply --server-side -f argocd/cluster/dev/"  # the platform team's (operations.md)
#: the Argo CD walk-through (docs/cluster.md), run against Argo CD in test_gitops.py
ARGOCD_LINES = (
    "-n argocd --timeout",
    "kubectl get applications",
    "kubectl annotate application",
    "-n kiosk-local --timeout",
)


def documented() -> list[str]:
    return docs.commands("kubectl")


def argocd_line(command: str) -> bool:
    return any(part in command for part in ARGOCD_LINES)


def runnable(command: str) -> list[str]:
    for old, new in SUBSTITUTIONS:
        command = command.replace(old, new)
    if OPTIONAL in command:
        bare = command.replace(OPTIONAL, "")
        return [bare, f"{bare} {OPTIONAL.strip(' []')}"]
    return [command]


@pytest.fixture(scope="module")
def shell(argo_server: ArgoServer) -> ArgoServer:
    """The session's `eval "$(uv run kiosk cluster env)"` environment, with kubectl on its PATH."""
    require_tool("kubectl")
    return argo_server


def kubectl(server: ArgoServer, command: str, timeout_s: float = 120, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=REPO_ROOT,
        env={**server.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_kubectl_is_the_modules_and_the_servers_version(shell: ArgoServer) -> None:
    pinned = re.search(r"(?m)^\s*k8s\.io/kubernetes (v\S+)$", (REPO_ROOT / "tools/kube/go.mod").read_text())
    assert pinned
    versions = json.loads(kubectl(shell, "kubectl version -o json"))
    assert versions["clientVersion"]["gitVersion"] == pinned[1]
    assert versions["serverVersion"]["gitVersion"] == pinned[1]


def test_kubectl_lists_our_workflow_templates(shell: ArgoServer) -> None:
    listed = kubectl(shell, f"kubectl get workflowtemplates -n {NAMESPACE} -o name").split()
    rendered = {p.stem.removeprefix("workflowtemplate-") for p in (REPO_ROOT / "argocd/workflows/local").glob("w*")}
    assert rendered and {f"workflowtemplate.argoproj.io/{name}" for name in rendered} <= set(listed), listed


def test_kubectl_edit_of_a_workflow_template_lands(shell: ArgoServer) -> None:
    # kubectl runs $EDITOR on the live object's YAML; a sed script is the editor. The label goes
    # under metadata (two spaces in), not under a template's pod metadata.
    editor = r"sed -i 's/^  labels:$/&\n    kiosk.dev\/edited-by: kubectl-edit/'"
    target = f"workflowtemplate/publish-model -n {NAMESPACE}"
    try:
        kubectl(shell, f"kubectl edit {target}", env={"EDITOR": editor})
        live = json.loads(kubectl(shell, f"kubectl get {target} -o json --show-managed-fields"))
        assert live["metadata"]["labels"]["kiosk.dev/edited-by"] == "kubectl-edit"
        assert any(f["manager"] == "kubectl-edit" for f in live["metadata"]["managedFields"])
    finally:
        kubectl(shell, f"kubectl label {target} kiosk.dev/edited-by-")


def test_documented_kubectl_commands_run(shell: ArgoServer) -> None:
    commands = documented()
    assert CAPACITY in commands and any(c.startswith("kubectl apply -n argocd") for c in commands), commands
    assert sum(map(argocd_line, commands)) >= len(ARGOCD_LINES), commands  # test_gitops.py's
    # Where the README's `kubectl apply -n argocd` goes: Argo CD's namespace (its CRDs `up` installs).
    kubectl(shell, "kubectl create namespace argocd --dry-run=client -o yaml | kubectl apply -f -")
    with_capacity_crds(shell)
    try:
        for command in [c for c in commands if not argocd_line(c)]:
            for line in runnable(command):
                kubectl(shell, line)
        apps = json.loads(kubectl(shell, "kubectl get applications -n argocd -o json"))["items"]
        rendered = {p.stem.removeprefix("application-") for p in (REPO_ROOT / "argocd/apps").glob("application-*")}
        assert {a["metadata"]["name"] for a in apps} >= rendered
        pool = json.loads(kubectl(shell, "kubectl get nodepool kiosk-gpu -o json"))
        assert pool["spec"]["template"]["spec"]["nodeClassRef"]["name"] == "kiosk-gpu"
    finally:
        kubectl(shell, "kubectl delete --wait=false --ignore-not-found -n argocd -f argocd/apps/")
        kubectl(shell, "kubectl delete --wait=false --ignore-not-found -f argocd/cluster/dev/")


def with_capacity_crds(server: ArgoServer) -> None:
    """What the platform's cluster has before the capacity objects: Karpenter's CRDs (from the module
    cache, as lint reads them) and the GPU operator's namespace.
    """
    root = crds.module_dir(crds.KARPENTER)
    files = " ".join(f"-f {root / f}" for f in crds.KARPENTER.files)
    kubectl(server, f"kubectl apply --server-side {files}")
    kubectl(
        server,
        "kubectl wait --for=condition=Established crd/nodepools.karpenter.sh crd/ec2nodeclasses.karpenter.k8s.aws",
    )
    kubectl(server, "kubectl create namespace gpu-operator --dry-run=client -o yaml | kubectl apply -f -")


def capacity_objects() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted((REPO_ROOT / "argocd/cluster").glob("*/*.yaml"))]


def test_app_projects_refuse_the_capacity_objects() -> None:
    """The platform team applies argocd/cluster/<env>/: no AppProject of ours may sync them."""
    projects = [yaml.safe_load(p.read_text()) for p in sorted((REPO_ROOT / "argocd/apps").rglob("appproject-*.yaml"))]
    objects = capacity_objects()
    assert projects and {o["kind"] for o in objects} >= {"NodePool", "EC2NodeClass", "ConfigMap"}
    for project in projects:
        spec = project["spec"]
        for obj in objects:
            group = obj["apiVersion"].rpartition("/")[0]
            namespace = obj["metadata"].get("namespace")
            if namespace is None:
                allowed = spec.get("clusterResourceWhitelist") or []
                assert not any(_matches(rule, group, obj["kind"]) for rule in allowed), (project, obj["kind"])
            else:
                places = [d["namespace"] for d in spec["destinations"]]
                assert not any(fnmatch.fnmatchcase(namespace, p) for p in places), (project, namespace)


def _matches(rule: dict[str, str], group: str, kind: str) -> bool:
    return fnmatch.fnmatchcase(group, rule["group"]) and fnmatch.fnmatchcase(kind, rule["kind"])


def test_users_token_cannot_apply_the_capacity_objects(shell: ArgoServer) -> None:
    """The users' ServiceAccount (`kiosk cluster env`'s ARGO_TOKEN) is refused, even a dry run."""
    with_capacity_crds(shell)
    done = subprocess.run(
        ["bash", "-c", f'{CAPACITY} --dry-run=server --token="${{ARGO_TOKEN#Bearer }}"'],
        cwd=REPO_ROOT,
        env=shell.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "forbidden" in done.stderr, done.stderr
    for kind in ("nodepools", "ec2nodeclasses", "configmaps"):
        assert kind in done.stderr, done.stderr
