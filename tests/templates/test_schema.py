"""Rendered Argo objects validate against Argo's official JSON schema (from the pinned Go module).

A quick structural check next to the golden files; `kiosk lint` runs Argo's own validator on top.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pipelines.argo_module import module_dir
from pipelines.tools import REPO_ROOT
from tests.fixtures.tools import require_tool

FILES = sorted((REPO_ROOT / "argocd" / "workflows").glob("*/*.yaml"))
ARGO_FILES = [p for p in FILES if yaml.safe_load(p.read_text())["apiVersion"].startswith("argoproj.io/")]


@functools.cache
def validator(kind: str) -> jsonschema.Draft7Validator:
    full: dict[str, Any] = json.loads((module_dir() / "api" / "jsonschema" / "schema.json").read_text())
    return jsonschema.Draft7Validator({**full, "$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}"})


@pytest.mark.parametrize("path", ARGO_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_argo_objects_match_the_official_schema(path: Path) -> None:
    require_tool("go")  # locates the pinned argo-workflows module
    doc = yaml.safe_load(path.read_text())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator(doc["kind"]).iter_errors(doc)]
    assert errors == []
