"""`kiosk demo`: either the whole pipeline works, or it names a part that is really missing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from pipelines import demo
from pipelines.cli import app
from pipelines.runner import api
from pipelines.tools import REPO_ROOT


def test_demo_runs_the_whole_pipeline(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "demo", "--json", "--workdir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True
    assert summary["processed"] == demo.IMAGES >= 50
    assert summary["failed"] == 0
    # The report the demo points at is the run's real summary, not a number of its own.
    report = json.loads(Path(summary["report"].removeprefix("file://")).read_text())
    assert (report["processed"], report["failed"]) == (summary["processed"], summary["failed"])
    bench = Path(summary["benchmark_report"].removeprefix("file://"))
    assert (bench / "report.html").is_file() and (bench / "runs.parquet").is_file()
    assert summary["best_config"] in (bench / "report.md").read_text()
    cleanup = json.loads(Path(summary["cleanup_report"].removeprefix("file://")).read_text())
    assert cleanup["dry_run"] is True
    outputs = Path(summary["outputs"].removeprefix("file://"))
    assert len(list(outputs.glob("*.json"))) == summary["processed"]


def test_missing_step_is_detected_from_exit_code_3(tmp_path: Path) -> None:
    manifest = tmp_path / "wf.yaml"
    manifest.write_text("""
kind: Workflow
metadata: {generateName: m-}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: x, command: [sh, -c, "echo 'steps.fake: error: not implemented' >&2; exit 3"]}
""")
    workflow_run = api.prepare(str(manifest), env=None, workdir=tmp_path)
    workflow = workflow_run.run()
    assert demo._missing_steps(workflow, workflow_run.run_dir) == [
        "steps.fake (template 'main') is not implemented yet"
    ]


def test_demo_quick_benchmark_passes_only_declared_parameters() -> None:
    # The runner drops undeclared parameters, so a renamed template input would silently make the
    # quick sweep the full one.
    assert set(demo.QUICK_BENCHMARK) <= demo._declared("benchmark")
    assert len(json.loads(demo.QUICK_BENCHMARK["sweep"])) == 1


def test_demo_full_runs_the_configured_sweep() -> None:
    assert demo.Plan.for_now(store="file:///s", full=True).benchmark == {}
    assert demo.Plan.for_now(store="file:///s", full=False).benchmark == demo.QUICK_BENCHMARK


def test_demo_node_real_without_engine_argo_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--node", "real", "--workdir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--node real needs --engine argo" in result.output
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written
