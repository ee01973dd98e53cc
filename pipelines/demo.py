"""`kiosk demo`: the whole pipeline on this machine, on embedded defaults, through the local runner.

1. a synthetic dataset in the local file store (`python -m steps.synth`);
2. `batch-inference` from the `local` env's rendered tree, run by the runner;
3. a small `benchmark` sweep; 4. `retention-cleanup` as a dry run; 5. a summary.

Where a part has not landed (a step that answers "not implemented" with exit code 3, or a template
that `kiosk render` has not produced), the demo names the missing part and exits non-zero: it never
fakes that part.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pipelines import project
from pipelines.config.loader import load_config
from pipelines.runner import api
from pipelines.runner.errors import RunnerError

NOT_IMPLEMENTED = 3
IMAGES = 64


class Missing(Exception):
    """A part of the pipeline whose issue has not landed yet."""


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
    """Parts that have not landed: a step answering exit code 3, or a `steps.*` module that is absent."""
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
            found = f"{absent.group(1)} (needed by template {node['templateName']!r}) has not landed yet"
        else:
            continue
        if found not in missing:
            missing.append(found)
    return missing


def _declared(target: str) -> set[str]:
    engine = api.prepare(target, env="local", workdir=api.default_workdir())
    return {p["name"] for p in (engine.spec.get("arguments") or {}).get("parameters") or []}


class Engine(StrEnum):
    local = "local"
    argo = "argo"


#: Set by `--engine argo`: runs templates on Argo's real controller instead of the local runner.
_ARGO: Any = None


def _run_on_argo(stage: Stage, target: str, wanted: dict[str, str]) -> dict[str, Any]:
    start = time.monotonic()
    workflow = _ARGO.run(target, {k: v for k, v in wanted.items() if k in _declared(target)})
    stage.seconds = time.monotonic() - start
    stage.phase = workflow["status"]["phase"]
    stage.workflow = workflow["metadata"]["name"]
    stage.outputs = _outputs(workflow)
    if stage.phase != "Succeeded":
        message = workflow["status"].get("message", "")
        raise RuntimeError(f"{target} {stage.phase}: {message} (logs: {_ARGO.logs}/{stage.workflow}-*)")
    return workflow


def run_template(stage: Stage, target: str, wanted: dict[str, str], workdir: Path) -> dict[str, Any]:
    if _ARGO is not None:
        return _run_on_argo(stage, target, wanted)
    start = time.monotonic()
    try:
        declared = _declared(target)
        engine = api.prepare(
            target, env="local", workdir=workdir, parameters={k: v for k, v in wanted.items() if k in declared}
        )
    except RunnerError as error:
        if "not found" in str(error) or "no Workflow" in str(error):
            stage.phase = "missing"
            raise Missing(f"rendered template {target!r} for env local: {error}") from None
        raise
    workflow = engine.run()
    stage.seconds = time.monotonic() - start
    stage.phase = workflow["status"]["phase"]
    stage.workflow = workflow["metadata"]["name"]
    stage.outputs = _outputs(workflow)
    missing = _missing_steps(workflow, engine.run_dir)
    if missing:
        stage.phase = "missing"
        raise Missing("; ".join(missing))
    if stage.phase != "Succeeded":
        raise RuntimeError(
            f"{target} {stage.phase}: {workflow['status'].get('message', '')} (logs: {engine.run_dir / 'logs'})"
        )
    return workflow


def synthesize(stage: Stage, dataset: str, workdir: Path) -> None:
    """Step 1 through the rendered `synthetic-data` template; `python -m steps.synth` if none is rendered."""
    wanted = {"output-uri": dataset, "count": str(IMAGES), "width": "128", "height": "128"}
    try:
        run_template(stage, "synthetic-data", wanted, workdir)
        return
    except Missing:
        if stage.phase == "missing" and stage.workflow:  # the template ran: its step is what is missing
            raise
    stage.phase = "not run"
    start = time.monotonic()
    outputs = workdir / "demo" / "synth-outputs"
    outputs.parent.mkdir(parents=True, exist_ok=True)  # its working directory: never the checkout
    env = dict(os.environ, KIOSK_WORKDIR=str(workdir), PYTHONPATH=str(project.PACKAGES_DIR))
    args = [f"--{k}={v}" for k, v in wanted.items()] + [f"--outputs-dir={outputs}"]
    done = subprocess.run(
        [sys.executable, "-m", "steps.synth", *args],
        cwd=outputs.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    stage.seconds = time.monotonic() - start
    if done.returncode == NOT_IMPLEMENTED:
        stage.phase = "missing"
        raise Missing(f"steps.synth is not implemented yet: {done.stderr.strip()}")
    if done.returncode != 0:
        stage.phase = "Failed"
        raise RuntimeError(f"steps.synth failed ({done.returncode}): {done.stderr.strip()}")
    stage.phase = "Succeeded"
    stage.outputs = {p.name: p.read_text().strip() for p in outputs.glob("*") if p.is_file()}


def _uri(value: str | None) -> str | None:
    """Output parameters carry URIs as configured (`file://$KIOSK_WORKDIR/...`); show them resolved."""
    return os.path.expandvars(value) if value else value


def _int(value: str | None) -> int | None:
    return int(float(value)) if value not in (None, "") else None


def command(
    as_json: Annotated[bool, typer.Option("--json", help="Last line of stdout: one JSON summary object.")] = False,
    workdir: Annotated[Path | None, typer.Option(help="Where the store, logs and reports go (default .kiosk/).")] = (
        None
    ),
    engine: Annotated[
        Engine,
        typer.Option("--engine", help="local: the fast local runner; argo: Argo's real controller (kiosk cluster)."),
    ] = Engine.local,
) -> None:
    """Run the whole pipeline locally on synthetic data and print where the report is."""
    global _ARGO
    console = Console(stderr=as_json)
    start = time.monotonic()
    workdir = (workdir or api.default_workdir()).resolve()
    os.environ["KIOSK_WORKDIR"] = str(workdir)
    label = "local runner" if engine == Engine.local else "Argo's workflow-controller"
    _ARGO = None
    if engine == Engine.argo:
        from pipelines.cluster.controlplane import ClusterError
        from pipelines.cluster.demo_argo import ArgoDemo

        console.print("[bold]0/4[/] kiosk cluster up + kiosk apply --env local")
        try:
            _ARGO = ArgoDemo(workdir)
        except (ClusterError, RuntimeError, OSError) as error:
            console.print(f"[red]kiosk demo --engine argo: {error}[/]")
            raise typer.Exit(1) from None
    config = load_config("local")
    store = os.path.expandvars(config.storage.uri).rstrip("/")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dataset = f"{store}/{config.inference.input_prefix}/demo-{stamp}"
    # Outputs mirror the dataset's own prefix: output keys are relative to the input prefix, so two
    # demo datasets sharing one output prefix would look already processed to the second run.
    outputs = f"{store}/{config.inference.output_prefix}/demo-{stamp}"
    stages = [
        Stage("synthetic dataset"),
        Stage("batch-inference"),
        Stage("benchmark"),
        Stage("retention-cleanup (dry run)"),
    ]
    code, problem = 0, ""
    try:
        console.print(f"[bold]1/4[/] synthetic dataset: {IMAGES} images -> {dataset}")
        synthesize(stages[0], dataset, workdir)
        console.print(f"[bold]2/4[/] batch-inference ({label})")
        run_template(stages[1], "batch-inference", {"input-uri": dataset, "output-uri": outputs}, workdir)
        console.print(f"[bold]3/4[/] benchmark sweep ({label})")
        run_template(stages[2], "benchmark", {}, workdir)
        console.print(f"[bold]4/4[/] retention-cleanup, dry run ({label})")
        run_template(stages[3], "retention-cleanup", {"dry-run": "true"}, workdir)
    except Missing as missing:
        code, problem = NOT_IMPLEMENTED, f"missing part: {missing}"
    except (RuntimeError, RunnerError) as error:
        code, problem = 1, str(error)
    seconds = time.monotonic() - start
    inference, bench, cleanup = stages[1].outputs, stages[2].outputs, stages[3].outputs
    results = {
        "synthetic dataset": f"{stages[0].outputs.get('count', '?')} images",
        "batch-inference": f"{inference.get('processed', '?')} processed, {inference.get('failed', '?')} failed",
        "benchmark": (
            f"best {bench['best-config']}: {bench.get('images-per-second', '?')} images/s, "
            f"${bench.get('cost-per-1k-images', '?')} per 1k images"
            if "best-config" in bench
            else ""
        ),
        "retention-cleanup (dry run)": (
            f"would delete {cleanup['deleted']} objects ({cleanup.get('bytes', '?')} bytes)"
            if "deleted" in cleanup
            else ""
        ),
    }
    table = Table("stage", "phase", "seconds", "result", title="kiosk demo")
    for stage in stages:
        table.add_row(stage.name, stage.phase, f"{stage.seconds:.1f}", results.get(stage.name, ""))
    console.print(table)
    summary = {
        "ok": code == 0,
        "processed": _int(inference.get("processed")),
        "failed": _int(inference.get("failed")),
        "report": _uri(inference.get("summary-uri")),
        "benchmark_report": _uri(bench.get("report-uri")),
        "best_config": bench.get("best-config"),
        "cleanup_report": _uri(cleanup.get("report")),
        "outputs": outputs,
        "dataset": dataset,
        "workdir": str(workdir),
        "seconds": round(seconds, 1),
    }
    if problem:
        summary["error"] = problem
        console.print(f"[red]{problem}[/]")
    if code == 0 and (summary["processed"] is None or summary["report"] is None):
        code, summary["error"] = 1, "batch-inference did not publish processed/summary-uri output parameters"
        summary["ok"] = False
        console.print(f"[red]{summary['error']}[/]")
    for key in ("report", "benchmark_report", "cleanup_report", "outputs", "dataset"):
        if summary[key]:
            console.print(f"{key}: {summary[key]}", soft_wrap=True)
    logs_at = f"{_ARGO.logs}/<pod>/" if _ARGO is not None else f"{workdir / 'runs'}/<workflow>/logs/"
    console.print(
        f"logs: {logs_at} ({', '.join(s.workflow for s in stages if s.workflow)})",
        soft_wrap=True,
    )
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    raise typer.Exit(code)
