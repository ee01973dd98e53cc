"""Hera against argo-server: a Workflow built with Hera here, one step its own container and one our
`synthetic-data` template by `templateRef`, is created through `WorkflowsService(host=, token=)`
and waited on to Succeeded; a bad token gets 401/403, not a workflow.
"""

from __future__ import annotations

import pytest
from hera.exceptions import Forbidden, Unauthorized
from hera.workflows import Container, EmptyDirVolume, Parameter, Step, Steps, Workflow, WorkflowsService
from hera.workflows.models import TemplateRef

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
