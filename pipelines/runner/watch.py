"""A live node tree like `argo watch`, drawn with rich while the workflow runs."""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.tree import Tree

from pipelines.runner.phase import NodeType, Phase
from pipelines.runner.status import Node
from pipelines.runner.workflow_run import WorkflowRun

ICONS = {
    Phase.SUCCEEDED: "[green]✔[/]",
    Phase.FAILED: "[red]✖[/]",
    Phase.ERROR: "[red]⚠[/]",
    Phase.SKIPPED: "[dim]○[/]",
    Phase.OMITTED: "[dim]-[/]",
    Phase.RUNNING: "[yellow]●[/]",
    Phase.PENDING: "[dim]◷[/]",
}


def _label(node: Node) -> str:
    text = f"{ICONS.get(node.phase, '?')} {node.display_name} [dim]{node.template_name} {node.type}[/]"
    if node.message and node.phase is not Phase.SUCCEEDED:
        text += f" [italic]{node.message}[/]"
    return text


def tree(workflow_run: WorkflowRun) -> Tree:
    nodes = workflow_run.status.nodes
    with workflow_run.status.lock:
        ids = list(workflow_run.status.order)
        root_tree = Tree(f"[bold]{workflow_run.name}[/] {workflow_run.phase}")
        branches: dict[str, Tree] = {}
        for node_id in ids:
            node = nodes[node_id]
            # Parent: whoever lists it as a child first, else its boundary (omitted DAG tasks).
            parent = next((p for p in ids if node_id in nodes[p].children and p in branches), None)
            if parent is None and node.boundary_id in branches:
                parent = node.boundary_id
            holder = branches[parent] if parent else root_tree
            branches[node_id] = holder.add(_label(node))
    return root_tree


def watch(workflow_run: WorkflowRun, console: Console) -> dict[str, Any]:
    """Run the workflow with a live tree and a progress bar of finished pods."""
    progress = Progress(TextColumn("pods"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console)
    bar = progress.add_task("pods", total=0)
    result: dict[str, Any] = {}

    def work() -> None:
        result["workflow"] = workflow_run.run()

    thread = threading.Thread(target=work, daemon=True)

    def render() -> Group:
        with workflow_run.status.lock:
            pods = [n for n in workflow_run.status.nodes.values() if n.type is NodeType.POD]
            progress.update(bar, total=len(pods), completed=sum(n.phase.done for n in pods))
        return Group(tree(workflow_run), progress)

    console.print()
    with Live(render(), console=console, refresh_per_second=4, transient=False) as live:
        thread.start()
        while thread.is_alive():
            try:
                thread.join(0.25)
            except KeyboardInterrupt:
                # Nodes run in their own sessions, so Ctrl-C must be passed on explicitly.
                workflow_run.cancel("Stopped with strategy 'Terminate' (interrupted)")
            live.update(render())
        live.update(render())
    console.print()
    if "workflow" not in result:
        raise RuntimeError("the runner stopped without a result")
    return result["workflow"]
