"""JSON schemas for the custom resources we render, from the CRD files of pinned Go modules.

kubernetes-validate only knows built-in kinds, so for these CRDs we validate against the
`openAPIV3Schema` of the CRDs their projects ship, with the API server's strict field validation:
unknown fields are rejected unless the CRD preserves them. Each project is pinned by a `go.mod`
under `tools/` (nothing is vendored) and read from the module cache:
- ArgoCD's AppProject and Application (`tools/argocd-crds/`, argo-cd's `manifests/crds/`);
- Karpenter's NodePool and EC2NodeClass (`tools/karpenter-crds/`, the AWS provider's `pkg/apis/crds/`);
- the Prometheus operator's PrometheusRule (`tools/prometheus-operator-crds/`).
CEL rules (`x-kubernetes-validations`) are the API server's to check: a server-side dry-run does it.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines import project
from pipelines.tools import find_tool


@dataclass(frozen=True)
class Source:
    """A Go module whose CRD files we validate against, pinned by `tools/<pin>/go.mod`."""

    module: str
    pin: str
    files: tuple[str, ...]  # paths inside the module

    @property
    def go_mod(self) -> Path:
        return project.root() / "tools" / self.pin / "go.mod"


ARGOCD = Source(
    "github.com/argoproj/argo-cd/v3",
    "argocd-crds",
    ("manifests/crds/application-crd.yaml", "manifests/crds/appproject-crd.yaml"),
)
KARPENTER = Source(
    "github.com/aws/karpenter-provider-aws",
    "karpenter-crds",
    ("pkg/apis/crds/karpenter.sh_nodepools.yaml", "pkg/apis/crds/karpenter.k8s.aws_ec2nodeclasses.yaml"),
)
PROMETHEUS_OPERATOR = Source(
    "github.com/prometheus-operator/prometheus-operator",
    "prometheus-operator-crds",
    ("example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",),
)
SOURCES = (ARGOCD, KARPENTER, PROMETHEUS_OPERATOR)


class CrdError(RuntimeError):
    pass


def pinned_version(source: Source = ARGOCD) -> str:
    match = re.search(
        rf"^\s*(?:require\s+)?{re.escape(source.module)}\s+(v\S+)", source.go_mod.read_text(), re.MULTILINE
    )
    if not match:
        raise CrdError(f"{source.go_mod}: no requirement on {source.module}")
    return match.group(1)


@functools.cache
def module_dir(source: Source = ARGOCD) -> Path:
    """The pinned module in the module cache (`go mod download` fetches it when absent)."""
    go = find_tool("go")
    if go is None:
        raise CrdError(f"go is not installed: it is needed to read the pinned {source.module} CRDs")
    proc = subprocess.run(
        [str(go), "mod", "download", "-json", f"{source.module}@{pinned_version(source)}"],
        capture_output=True,
        text=True,
        cwd=source.go_mod.parent,
        check=False,
    )
    info = json.loads(proc.stdout or "{}")
    if proc.returncode != 0 or "Dir" not in info:
        raise CrdError(f"go mod download {source.module}: {info.get('Error') or proc.stderr.strip()}")
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
    """(apiVersion, kind) -> JSON schema for every served version of every pinned CRD."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for source in SOURCES:
        for name in source.files:
            crd = yaml.safe_load((module_dir(source) / name).read_text())
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served", True):
                    continue
                schema = to_json_schema(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                schema.setdefault("properties", {})["metadata"] = _metadata_schema()
                found[(f"{group}/{version['name']}", kind)] = schema
    return found


def validate(body: dict[str, Any]) -> list[str] | None:
    """Schema errors of a custom resource, or None when `body` is not one of the pinned CRDs."""
    schema = schemas().get((str(body.get("apiVersion")), str(body.get("kind"))))
    if schema is None:
        return None
    import jsonschema  # only `kiosk lint` and `kiosk apply` validate: the rest of the CLI loads without it

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]
