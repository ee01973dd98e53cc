"""Small manifests for the lint tests: a known-good set, and writers that lay them out as a repo."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SECURE_SPEC = {"serviceAccountName": "kiosk-runner", "securityContext": {"runAsNonRoot": True, "runAsUser": 10001}}


def workflow_template(name: str = "kiosk-batch") -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": name},
        "spec": {
            **copy.deepcopy(SECURE_SPEC),
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": "input-uri", "value": "file:///data/in"}]},
            "templates": [
                {
                    "name": "main",
                    "inputs": {"parameters": [{"name": "input-uri"}]},
                    "container": {
                        "image": "ghcr.io/kiosk/steps:1.0",
                        "command": ["python", "-m", "steps.infer"],
                        "args": ["--input-uri={{inputs.parameters.input-uri}}"],
                    },
                }
            ],
        },
    }


def cron_workflow(template: str = "kiosk-batch", name: str = "kiosk-nightly") -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": name},
        "spec": {
            "schedules": ["0 2 * * *"],
            "workflowSpec": {
                **copy.deepcopy(SECURE_SPEC),
                "workflowTemplateRef": {"name": template},
            },
        },
    }


def caller_template(target: str = "kiosk-batch", name: str = "kiosk-caller") -> dict[str, Any]:
    """A WorkflowTemplate that calls `target` through templateRef."""
    body = workflow_template(name)
    body["spec"]["templates"] = [
        {
            "name": "main",
            "steps": [
                [
                    {
                        "name": "infer",
                        "templateRef": {"name": target, "template": "main"},
                        "arguments": {"parameters": [{"name": "input-uri", "value": "file:///data/in"}]},
                    }
                ]
            ],
        }
    ]
    return body


def service_account() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "kiosk-runner", "namespace": "kiosk-dev"},
    }


def role() -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "kiosk-runner", "namespace": "kiosk-dev"},
        "rules": [{"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}],
    }


def app_project() -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": "kiosk", "namespace": "argocd"},
        "spec": {
            "sourceRepos": ["https://git.example.com/kiosk-pipelines.git"],
            "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "kiosk-dev"}],
        },
    }


def application() -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "kiosk-dev", "namespace": "argocd"},
        "spec": {
            "project": "kiosk",
            "source": {
                "repoURL": "https://git.example.com/kiosk-pipelines.git",
                "path": "argocd/workflows/dev",
                "targetRevision": "main",
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "kiosk-dev"},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    }


def write_docs(path: Path, *docs: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def good_repo(root: Path, env: str = "dev") -> Path:
    """A repo layout where every check should pass (checkov aside: no images/ here)."""
    workflows = root / "argocd" / "workflows" / env
    write_docs(workflows / "kiosk-batch.yaml", workflow_template())
    write_docs(workflows / "kiosk-caller.yaml", caller_template())
    write_docs(workflows / "kiosk-nightly.yaml", cron_workflow())
    write_docs(workflows / "rbac.yaml", service_account(), role())
    write_docs(root / "argocd" / "apps" / "kiosk.yaml", app_project(), application())
    return root
