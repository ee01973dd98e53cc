"""A live node tree like `argo watch`, drawn with rich while the workflow runs."""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.tree import Tree

from pipelines.runner.engine import Engine
from pipelines.runner.phase import NodeType, Phase
from pipelines.runner.status import Node

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


def tree(engine: Engine) -> Tree:
    nodes = engine.status.nodes
    with engine.status.lock:
        ids = list(engine.status.order)
        root_tree = Tree(f"[bold]{engine.name}[/] {engine.phase}")
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


def watch(engine: Engine, console: Console) -> dict[str, Any]:
    """Run the workflow with a live tree and a progress bar of finished pods."""
    progress = Progress(TextColumn("pods"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console)
    bar = progress.add_task("pods", total=0)
    result: dict[str, Any] = {}

    def work() -> None:
        result["workflow"] = engine.run()

    thread = threading.Thread(target=work, daemon=True)

    def render() -> Group:
        with engine.status.lock:
            pods = [n for n in engine.status.nodes.values() if n.type is NodeType.POD]
            progress.update(bar, total=len(pods), completed=sum(n.phase.done for n in pods))
        return Group(tree(engine), progress)

    console.print()
    with Live(render(), console=console, refresh_per_second=4, transient=False) as live:
        thread.start()
        while thread.is_alive():
            try:
                thread.join(0.25)
            except KeyboardInterrupt:
                # Nodes run in their own sessions, so Ctrl-C must be passed on explicitly.
                engine.cancel("Stopped with strategy 'Terminate' (interrupted)")
            live.update(render())
        live.update(render())
    console.print()
    if "workflow" not in result:
        raise RuntimeError("the runner stopped without a result")
    return result["workflow"]
