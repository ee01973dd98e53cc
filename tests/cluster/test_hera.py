"""Hera against argo-server: a Workflow built with Hera here, one step its own container and one our
`synthetic-data` template by `templateRef`, is created through `WorkflowsService(host=, token=)`
and waited on to Succeeded; a bad token gets 401/403, not a workflow; docs/cluster.md's Hera snippet
runs as written.
"""

from __future__ import annotations

import re
import subprocess
import textwrap

import pytest
from hera.exceptions import Forbidden, Unauthorized
from hera.workflows import Container, EmptyDirVolume, Parameter, Step, Steps, Workflow, WorkflowsService
from hera.workflows.models import TemplateRef

from pipelines.tools import REPO_ROOT
from tests.cluster.conftest import NAMESPACE, ArgoServer, Cluster

IMAGES = 2


def hera_workflow(service: WorkflowsService) -> Workflow:
    with Workflow(
        generate_name="hera-",
        namespace=NAMESPACE,
        entrypoint="main",
        service_account_name="kiosk-workflow",
        volumes=[EmptyDirVolume(name="tmp")],  # the referenced template mounts the caller's `tmp`
        workflows_service=service,
    ) as workflow:
        hello = Container(name="hello", image="busybox", command=["echo", "hello from hera"])
        with Steps(name="main"):
            hello()
            Step(
                name="synth",
                template_ref=TemplateRef(name="synthetic-data", template="synth"),
                arguments=[
                    Parameter(name="output-uri", value="file://$KIOSK_WORKDIR/store/hera"),
                    Parameter(name="count", value=str(IMAGES)),
                    Parameter(name="width", value="64"),
                    Parameter(name="height", value="64"),
                ],
            )
    return workflow


def test_hera_creates_and_waits_through_argo_server(cluster: Cluster, argo_server: ArgoServer) -> None:
    service = WorkflowsService(host=argo_server.url, token=argo_server.token, verify_ssl=False, namespace=NAMESPACE)
    workflow = hera_workflow(service)
    workflow.create()
    finished = workflow.wait(poll_interval=1)
    assert finished.status is not None and finished.status.phase == "Succeeded", finished.status
    nodes = {n.display_name: n for n in (finished.status.nodes or {}).values()}
    synth = nodes["synth"].outputs
    assert synth is not None and {p.name: p.value for p in synth.parameters or []}["count"] == str(IMAGES)
    listed = service.list_workflows(namespace=NAMESPACE).items or []
    assert workflow.name in {w.metadata.name for w in listed}
    assert (cluster.workdir / "store" / "hera").is_dir()


@pytest.mark.parametrize("token", ["not-a-token", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl"])
def test_hera_bad_token_is_refused(cluster: Cluster, argo_server: ArgoServer, token: str) -> None:
    service = WorkflowsService(host=argo_server.url, token=token, verify_ssl=False, namespace=NAMESPACE)
    before = len(service_for(argo_server).list_workflows(namespace=NAMESPACE).items or [])
    with pytest.raises((Unauthorized, Forbidden)):
        hera_workflow(service).create()
    assert len(service_for(argo_server).list_workflows(namespace=NAMESPACE).items or []) == before


def service_for(server: ArgoServer) -> WorkflowsService:
    return WorkflowsService(host=server.url, token=server.token, verify_ssl=False, namespace=NAMESPACE)


def documented_hera_snippets() -> list[str]:
    """docs/cluster.md's Hera blocks, `uv run python - <<'PY'` to `PY`, as a reader copies them."""
    text = (REPO_ROOT / "docs" / "cluster.md").read_text()
    blocks = re.findall(r"^    (uv run python - <<'PY'\n.*?\n    PY)$", text, flags=re.S | re.M)
    return [textwrap.dedent("    " + block) for block in blocks]


def test_documented_hera_snippet_runs_as_written(argo_server: ArgoServer) -> None:
    snippets = documented_hera_snippets()
    assert snippets, "docs/cluster.md shows no Hera snippet"
    for snippet in snippets:
        done = subprocess.run(
            ["bash", "-c", snippet], cwd=REPO_ROOT, env=argo_server.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{snippet}\n{done.stdout}\n{done.stderr}"
        assert "batch-inference" in done.stdout, done.stdout  # it listed our templates
