"""JSON schemas for ArgoCD's own objects (AppProject, Application), from the pinned argo-cd module.

kubernetes-validate only knows built-in kinds, so for these CRDs we validate against the
`openAPIV3Schema` of the CRDs that argo-cd ships (`manifests/crds/`), with the API server's
strict field validation: unknown fields are rejected unless the CRD preserves them.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from pipelines.tools import REPO_ROOT, find_tool

MODULE = "github.com/argoproj/argo-cd/v3"
GO_MOD = REPO_ROOT / "tools" / "argocd-crds" / "go.mod"
CRD_FILES = ("application-crd.yaml", "appproject-crd.yaml")


class CrdError(RuntimeError):
    pass


def pinned_version() -> str:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(MODULE)}\s+(v\S+)", GO_MOD.read_text(), re.M)
    if not match:
        raise CrdError(f"{GO_MOD}: no requirement on {MODULE}")
    return match.group(1)


@functools.cache
def module_dir() -> Path:
    """The pinned argo-cd module in the module cache (`go mod download` fetches it when absent)."""
    go = find_tool("go")
    if go is None:
        raise CrdError("go is not installed: it is needed to read the pinned argo-cd CRDs")
    proc = subprocess.run(
        [str(go), "mod", "download", "-json", f"{MODULE}@{pinned_version()}"],
        capture_output=True,
        text=True,
        cwd=GO_MOD.parent,
        check=False,
    )
    info = json.loads(proc.stdout or "{}")
    if proc.returncode != 0 or "Dir" not in info:
        raise CrdError(f"go mod download {MODULE}: {info.get('Error') or proc.stderr.strip()}")
    return Path(info["Dir"])


def to_json_schema(node: Any) -> Any:
    """OpenAPI v3 structural schema -> JSON schema with the API server's strict field validation."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["type"] = ["integer", "string"]
    if (
        node.get("type") == "object"
        and "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _metadata_schema() -> dict[str, Any]:
    # CRD schemas leave metadata to the API server; require what it would: a DNS-1123 name.
    return {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253}},
    }


@functools.cache
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> JSON schema for every version of the pinned ArgoCD CRDs."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for name in CRD_FILES:
        crd = yaml.safe_load((module_dir() / "manifests" / "crds" / name).read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = to_json_schema(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            schema["properties"]["metadata"] = _metadata_schema()
            found[(f"{group}/{version['name']}", kind)] = schema
    return found


def validate(body: dict[str, Any]) -> list[str] | None:
    """Schema errors of an ArgoCD object, or None when `body` is not one of the pinned CRDs."""
    schema = schemas().get((str(body.get("apiVersion")), str(body.get("kind"))))
    if schema is None:
        return None
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]
