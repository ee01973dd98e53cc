"""The type check is strict enough to catch a wrong argument type in a template, and it is clean.

mypy runs with the project's settings ([tool.mypy] in pyproject.toml) on a module written to look
like a template, once right and once with the mistakes a template author makes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipelines.tools import REPO_ROOT

TEMPLATE = """
from hera.workflows import Parameter
from hera.workflows import models as m

from pipelines.templates import _common
from steps.ingest.params import IngestParams


def build():
    spec = _common.StepSpec(name={name}, model=IngestParams, inputs=("input_uri",), outputs={{}})
    param = Parameter(name={param}, description="what it is")
    retry = m.RetryStrategy(limit="3", {retry_field}="Always")
    return spec, param, retry
"""


def _mypy(tmp_path: Path, **values: str) -> subprocess.CompletedProcess:
    module = tmp_path / "template_under_test.py"
    module.write_text(TEMPLATE.format(**values))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO_ROOT / "pyproject.toml"), str(module)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_mypy_catches_wrong_argument_types_in_a_template(tmp_path: Path) -> None:
    done = _mypy(tmp_path, name="3", param="7", retry_field="retry_polcy")
    assert done.returncode == 1, done.stdout
    errors = [line for line in done.stdout.splitlines() if ": error: " in line]
    assert any('"name" to "StepSpec" has incompatible type "int"' in e for e in errors), errors
    assert any('"name" to "Parameter" has incompatible type "int"' in e for e in errors), errors
    assert any('Unexpected keyword argument "retry_polcy"' in e for e in errors), errors


def test_the_same_template_written_right_passes(tmp_path: Path) -> None:
    done = _mypy(tmp_path, name='"ingest"', param='"input-uri"', retry_field="retry_policy")
    assert done.returncode == 0, done.stdout
