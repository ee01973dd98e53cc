"""The test tree's own rules (docs/CONVENTIONS.md, Tests): it mirrors the source, has one S3 emulator
fixture, one repo root and fixtures registered as plugins.
"""

from __future__ import annotations

import re

from pipelines.tools import REPO_ROOT

TESTS = REPO_ROOT / "tests"


def _sources() -> dict[str, str]:
    this = REPO_ROOT / __file__
    return {str(p.relative_to(REPO_ROOT)): p.read_text() for p in sorted(TESTS.rglob("*.py")) if p != this}


def test_every_step_has_its_own_test_directory() -> None:
    steps = {p.parent.name for p in (REPO_ROOT / "steps").glob("*/params.py")}
    assert steps, "no step packages found"
    missing = sorted(s for s in steps if not list((TESTS / "steps" / s).glob("test_*.py")))
    assert missing == [], f"steps without tests/steps/<step>/test_*.py: {missing}"


def test_only_the_fixture_module_starts_an_s3_emulator() -> None:
    starting = [path for path, text in _sources().items() if "ThreadedMotoServer(" in text]
    assert starting == ["tests/fixtures/s3.py"]


def test_no_test_sets_aws_variables_for_the_whole_process() -> None:
    # os.environ.update / os.environ[...] = leak into every later test; monkeypatch restores
    leaking = [
        path for path, text in _sources().items() if re.search(r"os\.environ(\.update\(|\[[^]]+\]\s*=)[^\n]*AWS_", text)
    ]
    assert leaking == []


def test_one_repo_root_and_no_imports_from_conftest() -> None:
    for path, text in _sources().items():
        assert "parents[" not in text and "parent.parent" not in text, f"{path}: use pipelines.tools.REPO_ROOT"
        assert "from tests.conftest import" not in text, f"{path}: conftest.py holds no helpers"
        assert "import *" not in text, f"{path}: fixtures are plugins (tests/conftest.py pytest_plugins)"
