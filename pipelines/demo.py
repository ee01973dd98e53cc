"""`kiosk demo`: the whole pipeline on this machine, on embedded defaults, through the local runner
(`--engine argo`: Argo's controller on the local cluster, its pods on the agent or, `--node real`, on
the real node).

1. a synthetic dataset in the local file store (`python -m steps.synth`);
2. `batch-inference` from the `local` env's rendered tree, run by the runner;
3. a small `benchmark` sweep; 4. `retention-cleanup` as a dry run; 5. a summary.

The benchmark runs one small sweep point, enough to prove the workflow (`--full`: the `local` env's
whole sweep). Where a part is missing (a step that answers "not implemented" with exit code 3, or a
template that `kiosk render` has not produced), the demo names it and exits non-zero: it never fakes
that part.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer
from rich.console import Console
from rich.table import Table

from pipelines.config.loader import load_config
from pipelines.runner import api
from pipelines.runner.errors import RunnerError

if TYPE_CHECKING:
    from pipelines.cluster.demo_argo import ArgoDemo

NOT_IMPLEMENTED = 3
IMAGES = 64
STAGES = ("synthetic dataset", "batch-inference", "benchmark", "retention-cleanup (dry run)")
#: One sweep point on a few small images: the benchmark workflow end to end in a few seconds.
QUICK_BENCHMARK = {
    "sweep": json.dumps([{"batch_size": 4, "shard_size": 8, "parallelism": 1}], separators=(",", ":")),
    "count": "8",
    "width": "128",
    "height": "128",
}


class Missing(Exception):
    """A part of the pipeline that is not there: a step that does no work yet, or an unrendered template."""


@dataclass
class Stage:
    name: str
    phase: str = "not run"
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)
    workflow: str = ""


def _outputs(workflow: dict[str, Any]) -> dict[str, str]:
    """Every output parameter of the run, workflow-level (globalName) ones last so they win."""
    found: dict[str, str] = {}
    nodes = workflow["status"]["nodes"]
    # The root node's outputs next: Argo's real controller leaves `status.outputs` unset for a
    # workflowTemplateRef run, and a shard's `processed` must not win over the run's total.
    root = nodes.get(workflow["metadata"]["name"])
    for node in [*nodes.values(), *([root] if root else [])]:
        for param in (node.get("outputs") or {}).get("parameters") or []:
            found[param["name"]] = param["value"]
    for param in (workflow["status"].get("outputs") or {}).get("parameters") or []:
        found[param["name"]] = param["value"]
    return found


def _missing_steps(workflow: dict[str, Any], run_dir: Path) -> list[str]:
    """Missing parts: a step answering exit code 3, or a `steps.*` module that is absent."""
    missing = []
    for node in workflow["status"]["nodes"].values():
        if node["type"] != "Pod" or node["phase"] == "Succeeded":
            continue
        log = run_dir / "logs" / f"{node['id']}.log"
        text = log.read_text(errors="replace") if log.is_file() else ""
        absent = re.search(r"No module named '(steps\.[\w.]+)'", text)
        if (node.get("outputs") or {}).get("exitCode") == str(NOT_IMPLEMENTED):
            step = next((w.rstrip(":") for w in text.split() if w.startswith("steps.")), node["templateName"])
            found = f"{step} (template {node['templateName']!r}) is not implemented yet"
        elif absent:
            found = f"{absent.group(1)} (needed by template {node['templateName']!r}) is missing"
        else:
            continue
        if found not in missing:
            missing.append(found)
    return missing


def _declared(target: str) -> set[str]:
    prepared = api.prepare(target, env="local", workdir=api.default_workdir())
    return {p["name"] for p in (prepared.spec.get("arguments") or {}).get("parameters") or []}


def _finish(stage: Stage, workflow: dict[str, Any], start: float) -> None:
    stage.seconds = time.monotonic() - start
    stage.phase = workflow["status"]["phase"]
    stage.workflow = workflow["metadata"]["name"]
    stage.outputs = _outputs(workflow)


class Engine(StrEnum):
    """`--engine`: which workflow engine runs the demo's templates."""

    local = "local"
    argo = "argo"


class Node(StrEnum):
    """`--node`: which node of the local cluster runs the pods of `--engine argo`."""

    agent = "agent"
    real = "real"


class TemplateEngine(Protocol):
    """Runs one rendered template of the `local` env to its end, filling in the stage."""

    @property
    def label(self) -> str: ...

    @property
    def store(self) -> str:
        """The storage root the demo's dataset and outputs go under, resolved."""
        ...

    def run(self, stage: Stage, target: str, wanted: dict[str, str]) -> dict[str, Any]: ...

    def logs_at(self) -> str: ...


@dataclass(frozen=True)
class LocalRunner:
    """The local runner (`kiosk run`): the fast default."""

    workdir: Path
    label: str = "local runner"

    @property
    def store(self) -> str:
        return load_config("local").storage.resolved_uri

    def run(self, stage: Stage, target: str, wanted: dict[str, str]) -> dict[str, Any]:
        start = time.monotonic()
        try:
            declared = _declared(target)
            parameters = {k: v for k, v in wanted.items() if k in declared}
            prepared = api.prepare(target, env="local", workdir=self.workdir, parameters=parameters)
        except RunnerError as error:
            if "not found" in str(error) or "no Workflow" in str(error):
                stage.phase = "missing"
                raise Missing(f"rendered template {target!r} for env local: {error}") from None
            raise
        workflow = prepared.run()
        _finish(stage, workflow, start)
        missing = _missing_steps(workflow, prepared.run_dir)
        if missing:
            stage.phase = "missing"
            raise Missing("; ".join(missing))
        if stage.phase != "Succeeded":
            message = workflow["status"].get("message", "")
            raise RuntimeError(f"{target} {stage.phase}: {message} (logs: {prepared.run_dir / 'logs'})")
        return workflow

    def logs_at(self) -> str:
        return f"{self.workdir / 'runs'}/<workflow>/logs/"


@dataclass(frozen=True)
class ArgoController:
    """Argo's real workflow-controller on the local cluster (`kiosk cluster`)."""

    argo: ArgoDemo
    label: str = "Argo's workflow-controller"

    @property
    def store(self) -> str:
        return self.argo.store

    def run(self, stage: Stage, target: str, wanted: dict[str, str]) -> dict[str, Any]:
        start = time.monotonic()
        workflow = self.argo.run(target, {k: v for k, v in wanted.items() if k in _declared(target)})
        _finish(stage, workflow, start)
        if stage.phase != "Succeeded":
            message = workflow["status"].get("message", "")
            raise RuntimeError(f"{target} {stage.phase}: {message} (logs: {self.argo.logs_of(stage.workflow)})")
        return workflow

    def logs_at(self) -> str:
        return self.argo.logs_of("<pod>")


def _uri(value: str | None) -> str | None:
    """Output parameters carry URIs as configured (`file://$KIOSK_WORKDIR/...`); show them resolved."""
    return os.path.expandvars(value) if value else value


def _int(value: str | None) -> int | None:
    return int(float(value)) if value not in (None, "") else None


@dataclass(frozen=True)
class Plan:
    """Where this demo run writes: a dataset of its own, and outputs that mirror its prefix."""

    dataset: str
    outputs: str
    #: The benchmark's parameters: one small point, or the `local` env's whole sweep (`--full`).
    benchmark: dict[str, str]

    @classmethod
    def for_now(cls, *, store: str, full: bool) -> Plan:
        config = load_config("local")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        # Outputs mirror the dataset's own prefix: output keys are relative to the input prefix, so two
        # demo datasets sharing one output prefix would look already processed to the second run.
        return cls(
            dataset=f"{store}/{config.inference.input_prefix}/demo-{stamp}",
            outputs=f"{store}/{config.inference.output_prefix}/demo-{stamp}",
            benchmark={} if full else QUICK_BENCHMARK,
        )


def _run_stages(engine: TemplateEngine, plan: Plan, console: Console) -> tuple[list[Stage], int, str]:
    """The four stages in order; the first that fails stops the rest. -> (stages, exit code, problem)."""
    stages = [Stage(name) for name in STAGES]
    work = [
        ("synthetic-data", {"output-uri": plan.dataset, "count": str(IMAGES), "width": "128", "height": "128"}),
        ("batch-inference", {"input-uri": plan.dataset, "output-uri": plan.outputs}),
        ("benchmark", plan.benchmark),
        ("retention-cleanup", {"dry-run": "true"}),
    ]
    titles = [
        f"synthetic dataset: {IMAGES} images -> {plan.dataset}",
        f"batch-inference ({engine.label})",
        f"benchmark sweep ({engine.label}{', full' if not plan.benchmark else ', one point'})",
        f"retention-cleanup, dry run ({engine.label})",
    ]
    try:
        for number, (stage, (target, wanted), title) in enumerate(zip(stages, work, titles, strict=True), 1):
            console.print(f"[bold]{number}/{len(stages)}[/] {title}")
            engine.run(stage, target, wanted)
    except Missing as missing:
        return stages, NOT_IMPLEMENTED, f"missing part: {missing}"
    except (RuntimeError, RunnerError) as error:
        return stages, 1, str(error)
    return stages, 0, ""


def _results(stages: list[Stage]) -> dict[str, str]:
    """The table's result column: what each stage produced, from its output parameters."""
    data, inference, bench, cleanup = (stage.outputs for stage in stages)
    return {
        STAGES[0]: f"{data.get('count', '?')} images",
        STAGES[1]: f"{inference.get('processed', '?')} processed, {inference.get('failed', '?')} failed",
        STAGES[2]: (
            f"best {bench['best-config']}: {bench.get('images-per-second', '?')} images/s, "
            f"${bench.get('cost-per-1k-images', '?')} per 1k images"
            if "best-config" in bench
            else ""
        ),
        STAGES[3]: (
            f"would delete {cleanup['deleted']} objects ({cleanup.get('bytes', '?')} bytes)"
            if "deleted" in cleanup
            else ""
        ),
    }


def _summary(stages: list[Stage], plan: Plan, workdir: Path, seconds: float) -> dict[str, Any]:
    """The `--json` object: counts and the URIs of every report, resolved."""
    _, inference, bench, cleanup = (stage.outputs for stage in stages)
    return {
        "ok": True,
        "processed": _int(inference.get("processed")),
        "failed": _int(inference.get("failed")),
        "report": _uri(inference.get("summary-uri")),
        "benchmark_report": _uri(bench.get("report-uri")),
        "best_config": bench.get("best-config"),
        "cleanup_report": _uri(cleanup.get("report")),
        "outputs": plan.outputs,
        "dataset": plan.dataset,
        "workdir": str(workdir),
        "seconds": round(seconds, 1),
    }


def _start_engine(choice: Engine, node: Node, workdir: Path, console: Console) -> TemplateEngine:
    if choice == Engine.local:
        if node != Node.agent:
            console.print(f"[red]kiosk demo: --node {node} needs --engine argo (the local runner has no nodes)[/]")
            raise typer.Exit(2)
        return LocalRunner(workdir)
    # Imported here: the cluster client is needed only for `--engine argo`.
    from pipelines.cluster.controlplane import ClusterError
    from pipelines.cluster.demo_argo import ArgoDemo

    real = node == Node.real
    setup = "up --with node + the local env for the real node" if real else "up + kiosk apply --env local"
    console.print(f"[bold]0/4[/] kiosk cluster {setup}")
    try:
        return ArgoController(ArgoDemo(workdir, real_node=real))
    except (ClusterError, RuntimeError, OSError) as error:
        console.print(f"[red]kiosk demo --engine argo: {error}[/]")
        raise typer.Exit(1) from None


def _print_results(console: Console, stages: list[Stage], summary: dict[str, Any], engine: TemplateEngine) -> None:
    table = Table("stage", "phase", "seconds", "result", title="kiosk demo")
    results = _results(stages)
    for stage in stages:
        table.add_row(stage.name, stage.phase, f"{stage.seconds:.1f}", results[stage.name])
    console.print(table)
    if "error" in summary:
        console.print(f"[red]{summary['error']}[/]")
    for key in ("report", "benchmark_report", "cleanup_report", "outputs", "dataset"):
        if summary[key]:
            console.print(f"{key}: {summary[key]}", soft_wrap=True)
    ran = ", ".join(s.workflow for s in stages if s.workflow)
    console.print(f"logs: {engine.logs_at()} ({ran})", soft_wrap=True)


def command(
    as_json: Annotated[bool, typer.Option("--json", help="Last line of stdout: one JSON summary object.")] = False,
    workdir: Annotated[Path | None, typer.Option(help="Where the store, logs and reports go (default .kiosk/).")] = (
        None
    ),
    engine: Annotated[
        Engine,
        typer.Option("--engine", help="local: the fast local runner; argo: Argo's real controller (kiosk cluster)."),
    ] = Engine.local,
    node: Annotated[
        Node,
        typer.Option(
            "--node",
            help="With --engine argo: agent (host processes, fast) or real (kubelet, containerd, runc; "
            "needs `kiosk images build`).",
        ),
    ] = Node.agent,
    full: Annotated[
        bool, typer.Option("--full", help="Run the benchmark's whole sweep from config, not one small point.")
    ] = False,
) -> None:
    """Run the whole pipeline locally on synthetic data and print where the report is."""
    console = Console(stderr=as_json)
    start = time.monotonic()
    workdir = (workdir or api.default_workdir()).resolve()
    os.environ["KIOSK_WORKDIR"] = str(workdir)
    runner = _start_engine(engine, node, workdir, console)
    plan = Plan.for_now(store=runner.store, full=full)
    stages, code, problem = _run_stages(runner, plan, console)
    summary = _summary(stages, plan, workdir, time.monotonic() - start)
    if not problem and (summary["processed"] is None or summary["report"] is None):
        code, problem = 1, "batch-inference did not publish processed/summary-uri output parameters"
    if problem:
        summary["ok"], summary["error"] = False, problem
    _print_results(console, stages, summary, runner)
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    raise typer.Exit(code)
