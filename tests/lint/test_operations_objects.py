"""The `kubernetes-objects` check on the operations objects: NodePool and EC2NodeClass against the
pinned Karpenter CRDs, PrometheusRule against the pinned Prometheus-operator CRD, and the rendered
files under `argocd/observability/` and `argocd/cluster/`.
"""

from __future__ import annotations

import copy

import pytest

from pipelines.config import load_config
from pipelines.lint import crds
from pipelines.lint.base import LintContext
from pipelines.lint.checks import kubernetes_objects
from pipelines.manifests import capacity
from pipelines.observability import alerts
from pipelines.tools import REPO_ROOT
from tests.fixtures.tools import require_tool
from tests.lint.lint_helpers import good_repo, write_docs

CFG = load_config("dev")


@pytest.fixture(autouse=True)
def _go():
    require_tool("go")


def test_rendered_objects_pass():
    for body in [*capacity.build_all(CFG), alerts.prometheus_rule(CFG)]:
        assert kubernetes_objects.object_errors(body) == [], body["kind"]


def test_schemas_come_from_the_pinned_modules():
    assert set(crds.schemas()) >= {
        ("karpenter.sh/v1", "NodePool"),
        ("karpenter.k8s.aws/v1", "EC2NodeClass"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
    }
    for source in (crds.KARPENTER, crds.PROMETHEUS_OPERATOR):
        assert crds.module_dir(source).name.endswith(f"@{crds.pinned_version(source)}")


def test_bad_node_pool_fails():
    bad = capacity.node_pool(CFG)
    bad["spec"]["disruption"]["consolidationPolicy"] = "WhenIdle"
    bad["spec"]["template"]["spec"]["taints"][0]["effect"] = "Sometimes"
    errors = kubernetes_objects.object_errors(bad)
    assert any(e.startswith("spec.disruption.consolidationPolicy:") for e in errors)
    assert any(e.startswith("spec.template.spec.taints.0.effect:") for e in errors)


def test_misspelled_fields_fail():
    node_class = capacity.node_class(CFG)
    node_class["spec"]["amiSelector"] = node_class["spec"].pop("amiSelectorTerms")
    assert any("amiSelector" in e for e in kubernetes_objects.object_errors(node_class))
    rule = copy.deepcopy(alerts.prometheus_rule(CFG))
    rule["spec"]["groups"][0]["rules"][0]["fore"] = "5m"
    assert any("fore" in e for e in kubernetes_objects.object_errors(rule))


def test_check_reads_observability_and_cluster_dirs(tmp_path):
    repo = good_repo(tmp_path)
    clean = kubernetes_objects.CHECK.run(LintContext(repo=repo, envs=("dev",)))
    bad = capacity.node_pool(CFG)
    bad["spec"]["limits"] = "eight"
    write_docs(repo / "argocd" / "cluster" / "dev" / "nodepool-kiosk-gpu.yaml", bad)
    write_docs(
        repo / "argocd" / "observability" / "dev" / "prometheusrule-kiosk-alerts.yaml", alerts.prometheus_rule(CFG)
    )
    result = kubernetes_objects.CHECK.run(LintContext(repo=repo, envs=("dev",)))
    assert result.checked == clean.checked + 2
    assert [f.target for f in result.findings] == ["argocd/cluster/dev/nodepool-kiosk-gpu.yaml#1 (NodePool/kiosk-gpu)"]


def test_the_committed_tree_passes():
    result = kubernetes_objects.CHECK.run(LintContext(repo=REPO_ROOT, envs=("dev", "staging", "prod", "local")))
    assert result.findings == []
    ops = LintContext(repo=REPO_ROOT, envs=("dev", "staging", "prod", "local")).operations_files()
    assert len(ops) == 3 * 3 + 4 * 3  # cluster: 3 per GPU env; observability: 2 dashboards + 1 rule per env
