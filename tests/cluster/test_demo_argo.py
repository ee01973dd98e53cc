"""`kiosk demo --engine argo` runs the demo on Argo's real controller (the session's cluster)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from pipelines.cli import app
from tests.cluster.conftest import Cluster


def test_demo_on_the_real_controller(cluster: Cluster) -> None:
    result = CliRunner().invoke(app, ["demo", "--engine", "argo", "--json", "--workdir", str(cluster.workdir)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["ok"] and summary["processed"] == 64 and summary["failed"] == 0, summary
    assert "Argo's workflow-controller" in result.output
