"""A file:// parameter under /tmp is refused before anything runs: each pod has a private /tmp, so the
steps would see an empty directory of their own (0 images, Succeeded) and their outputs would vanish.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from pipelines.runner import api
from pipelines.runner.errors import RunnerError
from pipelines.tools import REPO_ROOT


def test_kiosk_run_refuses_an_input_under_tmp_in_one_line(tmp_path) -> None:
    hidden = f"file:///tmp/kiosk-test-{uuid.uuid4().hex[:8]}/mydata"
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "batch-inference", "-p", f"input-uri={hidden}"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "KIOSK_WORKDIR": str(tmp_path / "work")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"kiosk run: error: parameter input-uri={hidden}: ")
    assert "private /tmp" in lines[0]
    assert not (tmp_path / "work" / "runs").exists()  # refused before any run directory or process


@pytest.mark.parametrize("parameter", ["input-uri", "output-uri"])
@pytest.mark.parametrize("path", ["/tmp/mydata", "/tmp", "/var/../tmp/x", "/tmp/./y/"])
def test_any_file_parameter_under_tmp_is_refused(tmp_path, parameter: str, path: str) -> None:
    with pytest.raises(RunnerError, match=f"^parameter {parameter}=file://"):
        api.prepare("batch-inference", workdir=tmp_path, parameters={parameter: f"file://{path}"})


@pytest.mark.parametrize(
    "uri",
    [
        "file://$KIOSK_WORKDIR/in",  # the defaults' spelling
        "file://{workdir}/in",  # under the workdir, which pods see even when it is under /tmp
        "file:///var/lib/kiosk/in",  # outside /tmp
        "file:///tmpdata/in",  # /tmpdata is not /tmp
        "s3://bucket/tmp/in",
    ],
)
def test_visible_paths_are_accepted(tmp_path, uri: str) -> None:
    workflow_run = api.prepare(
        "batch-inference", workdir=tmp_path, parameters={"input-uri": uri.format(workdir=tmp_path)}
    )
    assert workflow_run.globals["workflow.parameters.input-uri"] == uri.format(workdir=tmp_path)
