"""Two envs pushing into one Pushgateway stay apart, through a real Prometheus.

dev and prod run the real ingest step (as processes, with the `--env` their rendered templates
pass) on runs with the same name, and each pushes an infer lane's metrics with the real push
code. Neither env's groups replace the other's, and each env's own dashboard expressions (its
`$env` variable at its default) show that env's numbers only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from pipelines.config import load_config
from pipelines.observability import panels
from pipelines.tools import REPO_ROOT
from steps.common import metric_names as n
from steps.infer.metrics import Metrics
from testkit import onnx_models as zoo
from tests.fixtures.prometheus import PromStack, start_prom_stack

RUN = "batch-inference-same1"  # the same run name in both envs: only the env tells them apart
#: Images (one shard each) and lanes that finish, per env: different, so a mix shows.
IMAGES = {"dev": 3, "prod": 5}
LANES = {"dev": 1, "prod": 2}


def _ingest(stack: PromStack, root: Path, env: str) -> None:
    uploads = root / env / "uploads"
    uploads.mkdir(parents=True)
    for index in range(IMAGES[env]):
        (uploads / f"img-{index}.png").write_bytes(zoo.blob_image((16, 16), [(8, 8, 3)]))
    args = [
        f"--input-uri=file://{uploads}",
        f"--output-uri=file://{root / env / 'out'}",
        f"--run-uri=file://{root / env / 'runs' / RUN}",
        "--shard-size=1",
        f"--pushgateway={stack.gateway}",
        f"--env={env}",
        f"--outputs-dir={root / env / 'o'}",
    ]
    done = subprocess.run([sys.executable, "-m", "steps.ingest", *args], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _push_lanes(stack: PromStack, env: str) -> None:
    for lane in range(LANES[env]):
        metrics = Metrics(f"lane-{lane}", ["CPUExecutionProvider"], run=RUN, env=env)
        metrics.seconds.set(1.5)
        metrics.push(stack.gateway)


def _groups(stack: PromStack) -> list[dict[str, str]]:
    with urllib.request.urlopen(f"http://{stack.gateway}/api/v1/metrics", timeout=10) as response:
        return [g["labels"] for g in json.load(response)["data"]]


def _panel_query(env: str, title: str, legend: str) -> str:
    """A query of the env's own batch dashboard, with its variables at their defaults and the run picked."""
    spec = panels.batch_inference(load_config(env))
    query = next(q for p in spec.panels if p.title == title for q in p.queries if q.legend.startswith(legend))
    defaults = {v.name: v.default for v in spec.variables if v.kind == "query" and v.default}
    assert defaults == {n.ENV_LABEL: env}
    return query.expr.replace("$env", env).replace("$run", RUN)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("envs")
    (root / "prom").mkdir()
    with start_prom_stack(root / "prom") as stack:
        for env in IMAGES:
            _ingest(stack, root, env)
            _push_lanes(stack, env)
        for env in IMAGES:
            stack.wait_for(f'{n.INGEST_SHARDS}{{env="{env}", run="{RUN}"}}', IMAGES[env], seconds=60)
        # Every group scraped, the last lane's push included: one push_time_seconds per group.
        stack.wait_for(f"count({n.PUSH_TIME})", len(IMAGES) + sum(LANES.values()), seconds=60)
        yield stack


def test_env_groups_do_not_replace_each_other(stack: PromStack) -> None:
    ingest = sorted(g[n.ENV_LABEL] for g in _groups(stack) if g["job"] == n.INGEST_JOB)
    lanes = sorted(g[n.ENV_LABEL] for g in _groups(stack) if g["job"] == n.INFER_JOB)
    assert ingest == ["dev", "prod"]
    assert lanes == ["dev", "prod", "prod"]


@pytest.mark.parametrize("env", sorted(IMAGES))
def test_env_dashboard_shows_its_own_run(stack: PromStack, env: str) -> None:
    total = stack.query(_panel_query(env, "Shard progress (done vs total)", "total"))
    done = stack.query(_panel_query(env, "Shard progress (done vs total)", "done"))
    assert [(r["metric"], float(r["value"][1])) for r in total] == [({n.RUN_LABEL: RUN}, IMAGES[env])]
    assert [(r["metric"], float(r["value"][1])) for r in done] == [({n.RUN_LABEL: RUN}, LANES[env])]


def test_env_variable_lists_both_envs(stack: PromStack) -> None:
    with urllib.request.urlopen(f"{stack.url}/api/v1/label/{n.ENV_LABEL}/values", timeout=10) as response:
        assert {"dev", "prod"} <= set(json.load(response)["data"])
