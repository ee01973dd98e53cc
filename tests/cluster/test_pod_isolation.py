"""What a pod on the local cluster can see: its own volumes and token, not the cluster's directory
(PKI, admin and controller kubeconfigs, etcd data, other pods' tokens and secrets), which the agent
covers with an empty tmpfs in every container.
"""

from __future__ import annotations

from tests.cluster.conftest import Cluster, container_workflow, executor_namespace

NAMESPACE = "isolation"


def test_a_pod_sees_its_token_but_not_the_clusters_directory(cluster: Cluster) -> None:
    executor_namespace(cluster.dynamic, NAMESPACE)
    root = cluster.state.root
    assert (root / "kubeconfig").is_file() and (root / "pki").is_dir()  # what the pod must not read
    check = (
        "test -s /var/run/secrets/kubernetes.io/serviceaccount/token"
        f' && test ! -e {root / "kubeconfig"} && test ! -e {root / "pki"} && test -z "$(ls -A {root})"'
    )
    workflow = container_workflow("isolation-", NAMESPACE, ["sh", "-c", check])
    done = cluster.run(workflow, timeout_s=120)
    nodes = {n["displayName"]: n.get("message") for n in done["status"]["nodes"].values()}
    assert done["status"]["phase"] == "Succeeded", (done["status"].get("message"), nodes)
