"""The lane-scale test on Argo's real controller: a 10,000-shard batch-inference run keeps the
Workflow object O(parallelism) (nodes and status size), as it does through `kiosk run`
(tests/runner/test_lane_scale.py).
"""

from __future__ import annotations

import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_templates import local_path
from tests.fixtures import scale


@pytest.mark.slow
def test_ten_thousand_shards_on_the_real_controller(cluster: Cluster) -> None:
    parameters = scale.seed(cluster.workdir / "scale", uri_root="file://$KIOSK_WORKDIR/scale")
    workflow = cluster.submit_template("batch-inference", parameters, timeout_s=1500)
    summary = next(p["value"] for p in workflow["status"]["outputs"]["parameters"] if p["name"] == "summary-uri")
    print(scale.check(workflow, local_path(cluster, summary)))
