"""What `kiosk cluster up` installs once the API server answers: CRDs, the controller's namespace,
ServiceAccount, RBAC and ConfigMap, all from the pinned argo-workflows module's own manifests.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from pipelines import project
from pipelines.cluster import kube
from pipelines.lint import crds as argocd_crds

ARGO_MODULE_VERSION = "v4.1.4"
METRICS_PATH = "/metrics"


def argo_source() -> Path:
    """The pinned Argo source tree `.ci/install.d/50-control-plane.sh` unpacks in the checkout."""
    return project.root() / ".tools" / "src" / f"argo-workflows-{ARGO_MODULE_VERSION}"


def controller_config(metrics_port: int) -> dict[str, str]:
    """The controller's ConfigMap data. Its metrics server (template and controller metrics, what
    the dashboards read) binds 127.0.0.1 in our build of the controller (.ci/install.d/50-control-
    plane.sh patches upstream's every-interface bind); the OpenTelemetry one stays off.
    """
    metrics = f"enabled: true\npath: {METRICS_PATH}\nport: {metrics_port}\nsecure: false\n"
    return {"metricsConfig": metrics, "telemetryConfig": "enabled: false\n"}


TOKEN_SECONDS = 7 * 24 * 3600


def client(kubeconfig: Path, context: str | None = None) -> k8s.ApiClient:
    return k8s_config.new_client_from_config(str(kubeconfig), context=context)


def wait_ready(api: k8s.ApiClient, timeout_s: float, check: Callable[[], None]) -> None:
    conf = api.configuration
    context = ssl.create_default_context(cafile=conf.ssl_ca_cert)
    request = urllib.request.Request(f"{conf.host}/readyz", headers={"Authorization": conf.api_key["BearerToken"]})
    deadline = time.monotonic() + timeout_s
    while True:
        check()
        try:
            with urllib.request.urlopen(request, context=context, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:  # not yet listening, or not ready (HTTP 500): retried until the deadline
            if time.monotonic() > deadline:
                raise TimeoutError(f"kube-apiserver not ready after {timeout_s:.0f} s") from None
        time.sleep(0.2)


def argo_manifests() -> Path:
    path = argo_source() / "manifests"
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is missing: run `bash .ci/install.d/50-control-plane.sh`")
    return path


def load_all(paths: Iterable[Path]) -> list[dict[str, Any]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are 14 MB of YAML: libyaml is 10x faster
    return [doc for path in paths for doc in yaml.load_all(path.read_text(), Loader=loader) if doc]


def crd_documents() -> list[dict[str, Any]]:
    """Argo's full CRDs (with schemas, as the issue's server-side dry-run needs) and argo-cd's.

    Parsing their 14 MB of YAML takes seconds: the result is cached as JSON beside the module copy.
    """
    cache = argo_source() / f"kiosk-crds-{argocd_crds.pinned_version()}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    argo = sorted((argo_manifests() / "base" / "crds" / "full").glob("argoproj.io_*.yaml"))
    argocd = [argocd_crds.module_dir() / path for path in argocd_crds.ARGOCD.files]
    docs = load_all([*argo, *argocd])
    tmp = cache.with_suffix(".partial")
    tmp.write_text(json.dumps(docs))
    tmp.replace(cache)
    return docs


def controller_documents(namespace: str, metrics_port: int) -> list[dict[str, Any]]:
    manifests = argo_manifests()
    rbac = sorted((manifests / "cluster-install-no-crds" / "workflow-controller-rbac").glob("workflow-*.yaml"))
    docs = load_all([manifests / "base" / "workflow-controller" / "workflow-controller-sa.yaml", *rbac])
    for doc in docs:
        if doc["kind"] in {"ServiceAccount", "Role", "RoleBinding"}:
            doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects") or []:
            subject.setdefault("namespace", namespace)  # kustomize fills it in upstream
    config: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap"}
    config["metadata"] = {"name": "workflow-controller-configmap", "namespace": namespace}
    config["data"] = controller_config(metrics_port)
    namespace_doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    return [namespace_doc, *docs, config]


def install(api: k8s.ApiClient, namespace: str, metrics_port: int) -> str:
    """Install CRDs and the controller's objects; returns a token for the controller's ServiceAccount."""
    crds = crd_documents()
    _create_or_apply(api, crds)
    wait_established(api, [crd["metadata"]["name"] for crd in crds])
    _apply_all(DynamicClient(api), controller_documents(namespace, metrics_port))  # a new client: fresh discovery
    return service_account_token(api, namespace, "argo")


def _create_or_apply(api: k8s.ApiClient, crds: list[dict[str, Any]]) -> None:
    """Create each CRD (a fresh cluster), server-side apply only those that exist (an upgrade).
    Create is the cheaper call on these megabyte-sized objects.
    """
    ext = k8s.ApiextensionsV1Api(api)
    existing = set(_crd_conditions(api))
    for crd in crds:
        if crd["metadata"]["name"] not in existing:
            # _preload_content=False: turning the megabyte answer into model objects costs seconds
            ext.create_custom_resource_definition(crd, field_manager=kube.FIELD_MANAGER, _preload_content=False)
    _apply_all(DynamicClient(api), [crd for crd in crds if crd["metadata"]["name"] in existing])


def _apply_all(dynamic: DynamicClient, docs: list[dict[str, Any]]) -> None:
    kube.apply_all(dynamic, docs)


def wait_established(api: k8s.ApiClient, names: list[str], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    pending = set(names)
    while pending:
        for name, conditions in _crd_conditions(api).items():
            if conditions.get("Established") == "True":
                pending.discard(name)
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"CRDs not established after {timeout_s:.0f} s: {', '.join(sorted(pending))}")
        if pending:
            time.sleep(0.2)


def _crd_conditions(api: k8s.ApiClient) -> dict[str, dict[str, str]]:
    """CRD name -> its condition statuses, read as metadata only (the full objects are megabytes)."""
    answer = k8s.ApiextensionsV1Api(api).list_custom_resource_definition(_preload_content=False)
    items = json.loads(answer.data)["items"]
    return {
        i["metadata"]["name"]: {c["type"]: c["status"] for c in (i.get("status") or {}).get("conditions") or []}
        for i in items
    }


def service_account_token(
    api: k8s.ApiClient, namespace: str, name: str, seconds: int = TOKEN_SECONDS, bound_pod: Any = None
) -> str:
    spec = k8s.V1TokenRequestSpec(audiences=["https://kubernetes.default.svc"], expiration_seconds=seconds)
    if bound_pod is not None:
        spec.bound_object_ref = k8s.V1BoundObjectReference(
            api_version="v1", kind="Pod", name=bound_pod.metadata.name, uid=bound_pod.metadata.uid
        )
    request = k8s.AuthenticationV1TokenRequest(spec=spec)
    answer = k8s.CoreV1Api(api).create_namespaced_service_account_token(name, namespace, request)
    return answer.status.token


def wait_controller(api: k8s.ApiClient, namespace: str, timeout_s: float, check: Callable[[], None]) -> None:
    """The controller is up once it has settled for a moment without exiting (it reads its
    ConfigMap and syncs its informers at start; work submitted before that is picked up anyway).
    """
    del api, namespace, timeout_s
    time.sleep(1.0)
    check()


def wait_schedulable(api: k8s.ApiClient, node: str, timeout_s: float, check: Callable[[], None]) -> None:
    """Until `node` exists without taints: a new Node is tainted `not-ready` until the
    node-lifecycle controller sees its first heartbeat, and the scheduler places nothing there before.
    """
    core = k8s.CoreV1Api(api)
    deadline = time.monotonic() + timeout_s
    while True:
        check()
        try:
            if not core.read_node(node).spec.taints:
                return
        except ApiException as error:
            if error.status != 404:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"node {node} still tainted (or missing) after {timeout_s:.0f} s")
        time.sleep(0.2)
