"""Turn what the user names (a template name or manifest files) into one Workflow to run.

A WorkflowTemplate is submitted the way `argo submit --from workflowtemplate/NAME` does (a Workflow
whose spec is a `workflowTemplateRef`); a CronWorkflow runs once from its `workflowSpec`.
`templateRef` / `workflowTemplateRef` resolve against the chosen env's rendered tree plus the files
given.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipelines import project
from pipelines.runner.errors import RunnerError

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
RUNNABLE = ("Workflow", "WorkflowTemplate", "CronWorkflow")
LIBRARY_KINDS = ("WorkflowTemplate", "ClusterWorkflowTemplate")


def env_tree(env: str) -> Path:
    return project.root() / "argocd" / "workflows" / env


def read_documents(path: Path) -> list[dict[str, Any]]:
    try:
        docs = [d for d in yaml.load_all(path.read_text(), Loader=_LOADER) if isinstance(d, dict)]
    except yaml.YAMLError as error:
        raise RunnerError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    for doc in docs:
        doc.setdefault("metadata", {})
        doc["__source__"] = str(path)
    return docs


@dataclass
class Library:
    """WorkflowTemplates that `templateRef` / `workflowTemplateRef` can name."""

    templates: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def add(self, doc: dict[str, Any]) -> None:
        if doc.get("kind") in LIBRARY_KINDS:
            self.templates[(doc["kind"], doc["metadata"].get("name", ""))] = doc

    def get(self, name: str, cluster: bool, where: str) -> dict[str, Any]:
        kind = "ClusterWorkflowTemplate" if cluster else "WorkflowTemplate"
        if (kind, name) not in self.templates:
            known = ", ".join(sorted(n for k, n in self.templates if k == kind)) or "none"
            raise RunnerError(f"{where}: {kind} {name!r} not found (known: {known})")
        return self.templates[(kind, name)]


def _documents(env: str | None, files: Iterable[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    tree: list[dict[str, Any]] = []
    if env:
        folder = env_tree(env)
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            tree.extend(read_documents(path))
    given = [doc for path in files for doc in read_documents(path)]
    return tree, given


def _pick(target: str, tree: Sequence[dict[str, Any]], given: Sequence[dict[str, Any]], env: str | None) -> dict:
    path = Path(target)
    if target.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise RunnerError(f"{target}: file not found")
        docs = [d for d in read_documents(path) if d.get("kind") in RUNNABLE]
        for kind in RUNNABLE:  # a Workflow wins over the templates it ships with
            of_kind = [d for d in docs if d.get("kind") == kind]
            if of_kind:
                return of_kind[0]
        raise RunnerError(f"{target}: no Workflow, WorkflowTemplate or CronWorkflow in it")
    kind, _, name = target.rpartition("/")  # `cronworkflow/NAME`, like `argo submit --from`
    kinds = [k for k in RUNNABLE if k.lower() == kind.lower()] if kind else list(RUNNABLE)
    matches = [d for d in [*given, *tree] if d.get("kind") in kinds and d["metadata"].get("name") == name]
    # A name alone means what `argo submit --from workflowtemplate/NAME` runs: a CronWorkflow of the
    # same name (batch-inference has both) only when asked for as cronworkflow/NAME.
    matches.sort(key=lambda d: RUNNABLE.index(d["kind"]))
    if not matches:
        where = f"in {env_tree(env)}" if env else "in the files given"
        names = sorted({d["metadata"].get("name", "") for d in [*given, *tree] if d.get("kind") in RUNNABLE})
        hint = f" (known: {', '.join(names)})" if names else " (nothing rendered there: run `kiosk render`)"
        raise RunnerError(f"no Workflow, WorkflowTemplate or CronWorkflow named {target!r} {where}{hint}")
    return matches[0]


def _merge_arguments(base: list[dict], overlay: list[dict]) -> list[dict]:
    merged = {p["name"]: dict(p) for p in base}
    for param in overlay:
        merged.setdefault(param["name"], {}).update(param)
    return list(merged.values())


def _apply_template_ref(workflow: dict[str, Any], library: Library) -> None:
    spec = workflow["spec"]
    ref = spec.get("workflowTemplateRef")
    if not ref:
        return
    template = library.get(ref["name"], bool(ref.get("clusterScope")), f"workflow {_name(workflow)!r}")
    merged = copy.deepcopy(template.get("spec", {}))
    for key, value in spec.items():
        if key == "workflowTemplateRef":
            continue
        if key == "arguments":
            args = merged.setdefault("arguments", {})
            args["parameters"] = _merge_arguments(args.get("parameters", []), value.get("parameters", []))
            for other in set(value) - {"parameters"}:
                args[other] = value[other]
        else:
            merged[key] = value
    workflow["spec"] = merged
    labels = workflow["metadata"].setdefault("labels", {})
    labels.update(template["metadata"].get("labels") or {})
    labels["workflows.argoproj.io/workflow-template"] = ref["name"]


def _name(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata", {})
    return meta.get("name") or meta.get("generateName", "workflow")


def resolve(
    target: str, env: str | None, files: Sequence[Path] = (), parameters: dict[str, str] | None = None
) -> tuple[dict[str, Any], Library]:
    """The Workflow to run (spec fully merged, -p applied) and the templates it may reference."""
    tree, given = _documents(env, files)
    chosen = _pick(target, tree, given, env)
    library = Library()
    extra = read_documents(Path(target)) if Path(target).is_file() else []
    for doc in [*tree, *given, *extra]:
        library.add(doc)
    kind, meta = chosen["kind"], chosen["metadata"]
    base = meta.get("name") or meta.get("generateName", "workflow").rstrip("-")
    workflow: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "generateName": f"{base}-",
            "labels": dict(meta.get("labels") or {}),
            "annotations": dict(meta.get("annotations") or {}),
        },
    }
    if kind == "Workflow":
        workflow["metadata"] = copy.deepcopy(meta)
        workflow["spec"] = copy.deepcopy(chosen.get("spec") or {})
    elif kind == "WorkflowTemplate":
        library.add(chosen)
        workflow["spec"] = {"workflowTemplateRef": {"name": meta["name"]}}
    else:
        workflow["spec"] = copy.deepcopy(chosen.get("spec", {}).get("workflowSpec") or {})
        workflow["metadata"]["labels"]["workflows.argoproj.io/cron-workflow"] = meta.get("name", "")
    _apply_template_ref(workflow, library)
    if parameters:
        args = workflow["spec"].setdefault("arguments", {})
        args["parameters"] = _merge_arguments(
            args.get("parameters", []), [{"name": k, "value": v} for k, v in parameters.items()]
        )
    workflow["metadata"].pop("__source__", None)
    workflow["__source__"] = chosen.get("__source__", target)
    if not workflow["spec"].get("entrypoint"):
        raise RunnerError(f"workflow {_name(workflow)!r}: spec.entrypoint is missing")
    return workflow, library
