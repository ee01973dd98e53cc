"""The local cluster's S3 emulator and the local env's artifact repository on it, as Argo's quick
start does with MinIO.

The emulator is tools/gofakes3 (gofakes3's in-memory backend, `.ci/install.d/25-gofakes3.sh`), a
cluster process like the others: its port and PID in state.json, its log under `logs/`, `down`
stops it. gofakes3 rather than moto: it is a single Go binary started like the control plane's, and
argoexec's client (minio-go, which signs uploads with streaming SigV4 over plain HTTP) works with it.
Its objects live in memory: `down` drops them; the bucket, endpoint and credentials are kept in
`<cluster>/objectstore.json` (mode 0600).

The emulator listens on the node IP (`network.NODE_IP`, on the bridge `up` creates), at a port
picked at `up`, so the Secret and the `artifact-repositories` ConfigMap of the local env's namespace
are written by `kiosk cluster up`, never rendered into argocd/. The `minio` Service there gives it
the name and port of Argo's quick start (`minio:9000`) for pods on the real node; the artifact
repository still names the node IP and port, since the agent's pods are host processes, which
resolve no cluster names. gofakes3 checks no signature: any process that reaches the node IP can
read the bucket, as with the quick start's MinIO and its well-known keys.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient

from pipelines.cluster import hostservice, kube, network
from pipelines.cluster.state import ClusterState, free_port
from pipelines.config import load_config

NAME = "objectstore"
BINARY = "gofakes3"
#: The Service in the local env's namespace, as Argo's quick start names MinIO's, and its port.
SERVICE = "minio"
SERVICE_PORT = 9000
BUCKET = "kiosk-artifacts"
SECRET = "artifact-repository-s3"
ENV = "local"
READY_TIMEOUT_S = 30.0

Launch = Callable[[str, list[str]], None]


@dataclass(frozen=True)
class ObjectStore:
    """Where the emulator listens, its bucket and the credentials the Secret holds."""

    host: str
    port: int
    bucket: str
    access_key: str
    secret_key: str

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"


def _record(state: ClusterState) -> Path:
    return state.root / "objectstore.json"


def load(state: ClusterState) -> ObjectStore | None:
    path = _record(state)
    return ObjectStore(**json.loads(path.read_text())) if path.is_file() else None


def start(state: ClusterState, binary: Path, launch: Launch, host: str = network.NODE_IP) -> ObjectStore:
    """Start the emulator on `host` (the node IP, which the real node's pods reach through the
    `minio` Service) at a free port, wait until it answers, and create the bucket. Credentials are
    kept across restarts.
    """
    old = load(state)
    store = ObjectStore(
        host=host,
        port=free_port(),
        bucket=BUCKET,
        access_key=old.access_key if old else "kiosk",
        secret_key=old.secret_key if old else secrets.token_hex(20),
    )
    path = _record(state)
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(asdict(store), indent=1))
    tmp.chmod(0o600)
    tmp.replace(path)
    state.ports[NAME] = store.port
    launch(NAME, [str(binary), "-host", f"{host}:{store.port}"])
    _create_bucket(store, state)
    return store


def _create_bucket(store: ObjectStore, state: ClusterState) -> None:
    """PUT the bucket (gofakes3 takes unsigned requests), retried until the server listens."""
    request = urllib.request.Request(f"{store.endpoint}/{store.bucket}", method="PUT")
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if not state.alive(NAME):
            raise RuntimeError(f"{BINARY} exited during start; see {state.logs / (NAME + '.log')}")
        try:
            with urllib.request.urlopen(request, timeout=2):
                return
        except urllib.error.HTTPError as error:
            if error.code == 409:  # BucketAlreadyOwnedByYou
                return
            raise
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{BINARY} did not answer on {store.endpoint} within {READY_TIMEOUT_S:.0f} s"
                ) from None
        time.sleep(0.1)


#: The ConfigMap's keys besides the default, as Argo's quick start has them (`my-key`: what its
#: example artifact-repository-ref.yaml names), each with its key prefix in the bucket.
EXTRA_KEYS = {"my-key": "my-key/"}


def repository(store: ObjectStore, prefix: str = "") -> dict[str, Any]:
    """The artifact repository (Argo's `s3` form) on the emulator, credentials by Secret reference.
    Pod logs are not archived (the quick start does): the local env's runs keep their logs elsewhere.
    """
    return {
        "archiveLogs": False,
        "s3": {
            "bucket": store.bucket,
            "endpoint": f"{store.host}:{store.port}",
            "insecure": True,
            "keyFormat": prefix + "{{workflow.name}}/{{pod.name}}",
            "accessKeySecret": {"name": SECRET, "key": "accessKey"},
            "secretKeySecret": {"name": SECRET, "key": "secretKey"},
        },
    }


def _executor(namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    """What Argo's executor needs (WorkflowTaskResults) granted to the `default` ServiceAccount
    (kube-controller-manager creates it), as Argo's quick start does: upstream examples name none.
    """
    rbac = "rbac.authorization.k8s.io"
    meta = {"name": "argo-executor-default", "namespace": namespace, "labels": labels}
    rule = {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}
    return [
        {"apiVersion": f"{rbac}/v1", "kind": "Role", "metadata": meta, "rules": [rule]},
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": rbac, "kind": "Role", "name": meta["name"]},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
        },
    ]


def host_service(store: ObjectStore, namespace: str) -> hostservice.HostService:
    """`minio:9000` in `namespace`, to the emulator's port on the node IP."""
    port = hostservice.HostPort(name="api", port=SERVICE_PORT, target=store.port)
    labels = {"app.kubernetes.io/managed-by": "kiosk-cluster", "app.kubernetes.io/name": SERVICE}
    return hostservice.HostService(name=SERVICE, namespace=namespace, ports=(port,), labels=labels)


def documents(store: ObjectStore) -> list[dict[str, Any]]:
    """The local env's namespace, the Secret and its `artifact-repositories` ConfigMap, the
    executor's rights for the `default` ServiceAccount there, and the `minio` Service.
    """
    cfg = load_config(ENV)
    namespace, key = cfg.namespace, cfg.artifact_repository.key
    labels = {"app.kubernetes.io/managed-by": "kiosk-cluster"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        *_executor(namespace, labels),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET, "namespace": namespace, "labels": labels},
            "type": "Opaque",
            "stringData": {"accessKey": store.access_key, "secretKey": store.secret_key},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": cfg.artifact_repository.config_map,
                "namespace": namespace,
                "labels": labels,
                "annotations": {"workflows.argoproj.io/default-artifact-repository": key},
            },
            "data": {
                name: yaml.safe_dump(repository(store, prefix), sort_keys=False)
                for name, prefix in {key: "", **EXTRA_KEYS}.items()
            },
        },
        *host_service(store, namespace).documents(),
    ]


def install(api: k8s.ApiClient, store: ObjectStore) -> None:
    kube.apply_all(DynamicClient(api), documents(store))
