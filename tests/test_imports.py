"""`pipelines` stays light: importing every module of it pulls in no numeric or cloud library."""

from __future__ import annotations

import json
import subprocess
import sys

from pipelines.tools import REPO_ROOT

FORBIDDEN = ("onnxruntime", "pandas", "boto3", "numpy")

PROBE = """
import importlib, json, pkgutil, sys
import pipelines
names = sorted(m.name for m in pkgutil.walk_packages(pipelines.__path__, "pipelines."))
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted(sys.modules)}))
"""


def test_pipelines_imports_no_heavy_library() -> None:
    # A fresh interpreter: this test process may already hold these libraries for other tests.
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    report = json.loads(result.stdout.splitlines()[-1])
    assert "pipelines.render" in report["modules"] and "pipelines.templates.batch_inference" in report["modules"]
    heavy = [m for m in report["loaded"] if m.split(".")[0] in FORBIDDEN]
    assert heavy == [], f"pipelines imports {sorted({m.split('.')[0] for m in heavy})}"


def _imports(package: str) -> list[tuple[str, str]]:
    """(file, imported module) for every import statement under `package`, read statically."""
    import ast

    found = []
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.extend((str(path.relative_to(REPO_ROOT)), alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from steps.common import metric_names` imports the submodule, not the package.
                base = REPO_ROOT / node.module.replace(".", "/")
                for alias in node.names:
                    sub = (base / f"{alias.name}.py").is_file() or (base / alias.name / "__init__.py").is_file()
                    module = f"{node.module}.{alias.name}" if sub else node.module
                    found.append((str(path.relative_to(REPO_ROOT)), module))
    return found


def test_steps_never_import_pipelines_or_hera() -> None:
    bad = [(f, m) for f, m in _imports("steps") if m.split(".")[0] in {"pipelines", "hera"}]
    assert bad == []


def test_only_the_storage_package_touches_boto3() -> None:
    bad = [
        (f, m)
        for f, m in _imports("steps") + _imports("pipelines") + _imports("benchmarks")
        if m.split(".")[0] in {"boto3", "botocore", "s3transfer"} and not f.startswith("steps/common/storage/")
    ]
    assert bad == []


# steps.common.metric_names is the one place metric names live: the emitters in steps/ and the
# dashboards and alert rules in pipelines/ must read the same constants, and it imports nothing.
# steps.common.durations is the one duration parser, read by the cleanup step and by the runner,
# the alert rules and `kiosk lifecycle`; it imports only the standard library.
SHARED_WITH_PIPELINES = ("steps.common.params_base", "steps.common.metric_names", "steps.common.durations")


def test_pipelines_use_steps_only_through_params_models() -> None:
    allowed = SHARED_WITH_PIPELINES
    bad = [
        (f, m)
        for f, m in _imports("pipelines")
        if m.split(".")[0] == "steps" and not (m.endswith(".params") or m in allowed)
    ]
    assert bad == []


def test_params_models_import_only_light_modules() -> None:
    light = {"__future__", "typing", "pydantic", "steps", "re", "datetime", "json", "enum", "collections"}
    for path in [*sorted((REPO_ROOT / "steps").glob("*/params.py")), REPO_ROOT / "steps/common/params_base.py"]:
        rel = str(path.relative_to(REPO_ROOT))
        heavy = [m for f, m in _imports("steps") if f == rel and m.split(".")[0] not in light]
        assert heavy == [], rel
        steps_imports = [m for f, m in _imports("steps") if f == rel and m.split(".")[0] == "steps"]
        assert all(m == "steps.common.params_base" for m in steps_imports), rel


def test_metric_names_module_imports_nothing() -> None:
    assert [m for f, m in _imports("steps") if f == "steps/common/metric_names.py"] == []


def test_durations_module_imports_only_the_standard_library() -> None:
    imported = {m.split(".")[0] for f, m in _imports("steps") if f == "steps/common/durations.py"}
    assert imported and imported <= set(sys.stdlib_module_names), imported
