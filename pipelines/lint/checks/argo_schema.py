"""Argo objects against the official JSON schema (`api/jsonschema/schema.json` of the pinned module).

The upstream schema leaves every object open (no `additionalProperties: false`), so a misspelled
field would pass. Like kubernetes-validate's `--strict`, we close every definition that lists its
properties and does not say otherwise; maps (labels, Plugin, Item) keep their own rules.
Upstream also types IntOrString as string only, rejecting `retryStrategy.limit: 10` that Argo accepts
(https://github.com/argoproj/argo-workflows/issues/6349, #6060); we restore int-or-string.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import jsonschema
from referencing import Registry, Resource

from pipelines import argo_module
from pipelines.lint.base import Check, CheckResult, Finding, LintContext
from pipelines.lint.manifests import missing_tool, read_documents

DEFINITION_PREFIX = "io.argoproj.workflow.v1alpha1."
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
MAX_ERRORS_PER_DOCUMENT = 10


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of `schema` where every definition with `properties` rejects unknown fields."""
    closed = copy.deepcopy(schema)
    if INT_OR_STRING in closed["definitions"]:
        closed["definitions"][INT_OR_STRING]["type"] = ["integer", "string"]
    for definition in closed["definitions"].values():
        if "properties" in definition and "additionalProperties" not in definition:
            definition["additionalProperties"] = False
    return closed


@functools.cache
def load_schema() -> dict[str, Any]:
    path = argo_module.module_dir() / "api" / "jsonschema" / "schema.json"
    return strict(json.loads(path.read_text()))


@functools.cache
def _registry() -> tuple[Registry, str]:
    schema = load_schema()
    resource = Resource.from_contents(schema)
    return Registry().with_resource(schema["$id"], resource), schema["$id"]


def validator_for(kind: str) -> jsonschema.Validator | None:
    """A validator for Argo `kind` (e.g. WorkflowTemplate), None when the schema has no such kind."""
    schema = load_schema()
    name = DEFINITION_PREFIX + kind
    if name not in schema["definitions"]:
        return None
    registry, base = _registry()
    return jsonschema.Draft202012Validator({"$ref": f"{base}#/definitions/{name}"}, registry=registry)


def schema_errors(body: dict[str, Any]) -> list[str]:
    """Messages for every schema violation of one Argo document, deepest path first."""
    validator = validator_for(str(body.get("kind", "")))
    if validator is None:
        return [f"kind {body.get('kind')!r} is not in the Argo schema"]
    errors = sorted(validator.iter_errors(body), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def run(ctx: LintContext) -> CheckResult:
    result = CheckResult()
    docs = [d for d in read_documents(ctx.workflow_files(), result, ctx.repo) if d.is_argo_workflow_kind]
    if not docs:
        return result
    try:
        load_schema()
    except argo_module.ArgoModuleError:
        return missing_tool("go")
    for doc in docs:
        result.checked += 1
        messages = schema_errors(doc.body)
        for message in messages[:MAX_ERRORS_PER_DOCUMENT]:
            result.findings.append(Finding(target=doc.target(ctx.repo), message=message))
        if len(messages) > MAX_ERRORS_PER_DOCUMENT:
            more = len(messages) - MAX_ERRORS_PER_DOCUMENT
            result.findings.append(Finding(target=doc.target(ctx.repo), message=f"... and {more} more"))
    return result


CHECK = Check(
    name="argo-schema",
    description="Argo objects against the official JSON schema (closed to unknown fields)",
    run=run,
)
