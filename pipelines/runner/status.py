"""Node and workflow status in Argo's own shape, so `argo get -o json` readers can read ours."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

from pipelines.runner.phase import FAILED, NodeType, Phase


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fnv32a(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


@dataclass
class Node:
    id: str
    name: str
    display_name: str
    type: NodeType
    template_name: str
    boundary_id: str = ""
    phase: Phase = Phase.PENDING
    started_at: str | None = None
    finished_at: str | None = None
    message: str = ""
    children: list[str] = field(default_factory=list)
    outbound: list[str] = field(default_factory=list)
    outputs: dict[str, Any] | None = None
    inputs: dict[str, Any] | None = None
    exit_code: int | None = None
    log: str = ""
    #: A DAG template's own `globalName` outputs: Argo publishes them only when a DAG that runs this node
    #: as a task Succeeds (workflow/controller/dag.go), never for the root DAG or a DAG run as a step.
    dag_globals: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    def to_argo(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "displayName": self.display_name,
            "type": self.type.value,
            "templateName": self.template_name,
            "phase": self.phase.value,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        }
        if self.boundary_id:
            out["boundaryID"] = self.boundary_id
        if self.message:
            out["message"] = self.message
        if self.children:
            out["children"] = list(self.children)
        if self.outbound:
            out["outboundNodes"] = list(self.outbound)
        if self.inputs:
            out["inputs"] = self.inputs
        if self.outputs:
            out["outputs"] = self.outputs
        if self.type is NodeType.POD:
            out["hostNodeName"] = "localhost"
        return out


@dataclass(frozen=True)
class Placement:
    """Where a node goes in the tree: its name (the id is derived from it), display name, the node
    that lists it as a child (None: none does, e.g. a DAG task after its dependencies), and the id of
    the steps/DAG node whose boundary it is in.
    """

    name: str
    display: str
    parent: Node | None = None
    boundary: str = ""

    def child(self, suffix: str, parent: Node | None) -> Placement:
        """A placement in the same boundary whose name and display name are this one's plus `suffix`."""
        return Placement(self.name + suffix, self.display + suffix, parent, self.boundary)


class Status:
    """Every node of one run; thread-safe because nodes run in parallel threads."""

    def __init__(self, workflow_name: str) -> None:
        self.workflow_name = workflow_name
        self.nodes: dict[str, Node] = {}
        self.order: list[str] = []
        self.lock = threading.RLock()
        self.listeners: list[Any] = []
        #: ("start"|"finish", node id) in the order they happened, for ordering checks.
        self.events: list[tuple[str, str]] = []

    def node_id(self, name: str) -> str:
        return self.workflow_name if name == self.workflow_name else f"{self.workflow_name}-{fnv32a(name)}"

    def create(self, at: Placement, type_: NodeType, template: str) -> Node:
        with self.lock:
            node = Node(self.node_id(at.name), at.name, at.display, type_, template, boundary_id=at.boundary)
            if node.id in self.nodes:
                raise RuntimeError(f"node {at.name!r} created twice")
            self.nodes[node.id] = node
            self.order.append(node.id)
            if at.parent is not None:
                at.parent.children.append(node.id)
        self.changed(node)
        return node

    def start(self, node: Node) -> None:
        with self.lock:
            node.phase = Phase.RUNNING
            node.started_at = node.started_at or now()
            self.events.append(("start", node.id))
        self.changed(node)

    def finish(self, node: Node, phase: Phase, message: str = "") -> Node:
        with self.lock:
            node.phase = phase
            node.started_at = node.started_at or now()
            node.finished_at = now()
            self.events.append(("finish", node.id))
            if message:
                node.message = message
        self.changed(node)
        return node

    def changed(self, node: Node) -> None:
        for listener in self.listeners:
            listener(node)

    def failures(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {
                    "displayName": n.display_name,
                    "message": n.message,
                    "templateName": n.template_name,
                    "phase": n.phase.value,
                    "podName": n.id,
                    "finishedAt": n.finished_at,
                }
                for n in (self.nodes[i] for i in self.order)
                if n.type is NodeType.POD and n.phase in FAILED
            ]

    def argo_nodes(self) -> dict[str, Any]:
        with self.lock:
            return {i: self.nodes[i].to_argo() for i in self.order}
