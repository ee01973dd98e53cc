"""RBAC of the rendered executor Role, asked of the real apiserver by SubjectAccessReview as the
workflow ServiceAccount: it can create and patch workflowtaskresults, and nothing beyond.
"""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from pipelines.config import load_config
from tests.cluster.conftest import Cluster


def allowed(cluster: Cluster, verb: str, resource: str, group: str = "") -> bool:
    cfg = load_config("local")
    user = f"system:serviceaccount:{cfg.namespace}:{cfg.service_account}"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{cfg.namespace}", "system:authenticated"]
    attributes = k8s.V1ResourceAttributes(namespace=cfg.namespace, verb=verb, resource=resource, group=group)
    review = k8s.V1SubjectAccessReview(
        spec=k8s.V1SubjectAccessReviewSpec(user=user, groups=groups, resource_attributes=attributes)
    )
    return bool(k8s.AuthorizationV1Api(cluster.api).create_subject_access_review(review).status.allowed)


@pytest.mark.parametrize("verb", ["create", "patch"])
def test_executor_can_report_task_results(cluster: Cluster, verb: str) -> None:
    assert allowed(cluster, verb, "workflowtaskresults", "argoproj.io")


@pytest.mark.parametrize(
    ("verb", "resource", "group"),
    [("get", "secrets", ""), ("list", "secrets", ""), ("create", "pods", ""), ("delete", "workflows", "argoproj.io")],
)
def test_executor_cannot_do_more(cluster: Cluster, verb: str, resource: str, group: str) -> None:
    assert not allowed(cluster, verb, resource, group)
