"""`kiosk demo`: either the whole pipeline works, or it names a part that is really missing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from pipelines import demo
from pipelines.runner import api
from pipelines.runner.loading import env_tree
from tests.conftest import REPO_ROOT


def test_demo_works_or_names_a_really_missing_part(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "demo", "--json", "--workdir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"processed", "failed", "report", "seconds"} <= set(summary)
    if done.returncode == 0:
        assert int(summary["processed"]) >= 50
        assert int(summary["failed"]) == 0
        assert summary["seconds"] < 300
        return
    assert done.returncode == demo.NOT_IMPLEMENTED, summary
    missing = summary["error"]
    absent = re.search(r"(steps\.[\w.]+) \(needed by", missing)
    if absent:
        assert not (REPO_ROOT / (absent.group(1).replace(".", "/") + ".py")).exists()
        return
    step = re.search(r"steps\.(\w+) .*not implemented", missing)
    template = re.search(r"rendered template '([\w-]+)'", missing)
    assert step or template, missing
    if step:
        assert "NotImplementedStep" in (REPO_ROOT / "steps" / step.group(1) / "main.py").read_text()
    else:
        rendered = list(env_tree("local").glob("*.yaml"))
        assert not any(f"name: {template.group(1)}\n" in p.read_text() for p in rendered)


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
    engine = api.prepare(str(manifest), env=None, workdir=tmp_path)
    workflow = engine.run()
    assert demo._missing_steps(workflow, engine.run_dir) == ["steps.fake (template 'main') is not implemented yet"]
