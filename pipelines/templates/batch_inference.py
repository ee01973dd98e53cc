"""`batch-inference` WorkflowTemplate: ingest -> infer (`parallelism` long-lived lane pods that claim
shards from a work queue in storage) -> report.

The DAG lives in its own template, `pipeline`, so `benchmark` can run it through `templateRef`;
the entrypoint `main` only supplies this run's URIs and lifts the report's outputs to the workflow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hera.workflows import DAG, Container, Parameter, Step, Steps, Task, WorkflowTemplate
from hera.workflows import models as m

from pipelines.config import KioskConfig
from pipelines.templates import _common, _params
from steps.infer.params import InferParams
from steps.ingest.params import IngestParams
from steps.report.params import ReportParams

NAME = "batch-inference"
PIPELINE = "pipeline"

INGEST_OUTPUTS = {
    "count": "Number of accepted input images.",
    "rejected": "Number of rejected input images.",
    "shards": "Number of shards written (listed in the run's shard index, not here).",
}
INFER_OUTPUTS = {
    "processed": "Images this lane processed.",
    "failed": "Images that failed in this lane.",
    "shards": "Shards this lane finished.",
}
#: A lane pod works until the queue is empty: node autoscalers must not evict it to pack nodes.
LANE_ANNOTATIONS = {
    "karpenter.sh/do-not-disrupt": "true",
    "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
}
REPORT_OUTPUTS = {
    "processed": "Images processed in the run.",
    "failed": "Images that failed in the run.",
    "throughput": "Images per second over the run.",
    "summary-uri": "Where the run's summary.json/csv/md were written.",
}
# Lifted from `report` to the pipeline's (and the workflow's) outputs.
PIPELINE_OUTPUTS = ("processed", "failed", "summary-uri")

# Pipeline inputs, by the step model that owns each name; `parallelism` is the DAG's own.
INGEST_INPUTS = ("input_uri", "output_uri", "run_uri", "shard_size", "force", "missing_input")
INFER_INPUTS = ("model_uri", "model_spec", "batch_size")
# What each step template takes as inputs (the rest of its flags are literals).
INFER_FIELDS = ("run_uri", "lane", "lanes", "output_uri", *INFER_INPUTS)
REPORT_FIELDS = ("run_uri", "output_uri", "summary_uri")
PARALLELISM_HELP = "Inference lanes: long-lived infer pods, each claiming shards until none is left."


def uri_defaults(cfg: KioskConfig) -> dict[str, str]:
    return {
        "input_uri": f"{cfg.storage.uri}/{cfg.inference.input_prefix}",
        "output_uri": f"{cfg.storage.uri}/{cfg.inference.output_prefix}",
    }


def _ingest_defaults(cfg: KioskConfig) -> dict[str, object]:
    return {**uri_defaults(cfg), "shard_size": cfg.inference.shard_size}


def _infer_defaults(cfg: KioskConfig) -> dict[str, object]:
    return {"model_uri": cfg.model.uri, "model_spec": cfg.model.spec, "batch_size": cfg.inference.batch_size}


def workflow_arguments(cfg: KioskConfig) -> list[Parameter]:
    """What `argo submit -p` can set; run-uri is derived from the workflow's name instead."""
    ingest = tuple(f for f in INGEST_INPUTS if f != "run_uri")
    return [
        *_params.parameters(IngestParams, ingest, _ingest_defaults(cfg), as_arguments=True),
        *_params.parameters(InferParams, INFER_INPUTS, _infer_defaults(cfg), as_arguments=True),
        _params.extra_parameter("parallelism", PARALLELISM_HELP, cfg.inference.parallelism, as_arguments=True),
    ]


def _ref(template: DAG) -> Callable[[str], Any]:
    """A template's reference to its own input `name`, through Hera (an unknown name fails here)."""
    return lambda name: template.get_parameter(name).value


def _step_templates(cfg: KioskConfig) -> tuple[Container, Container, Container]:
    """The ingest, infer (one lane) and report containers, inside the current WorkflowTemplate."""
    pushed = _common.push_literals(cfg)
    ingest = _common.step_container(
        cfg,
        NAME,
        _common.StepSpec(
            name="ingest",
            model=IngestParams,
            inputs=INGEST_INPUTS,
            outputs=INGEST_OUTPUTS,
            defaults=_ingest_defaults(cfg),
            literals=pushed,
        ),
    )
    infer_literals: dict[str, object] = {
        "device": cfg.gpu.device,
        "allow_cpu_fallback": cfg.gpu.allow_cpu_fallback,
        "max_failure_ratio": cfg.inference.max_failure_ratio,
        "claim_ttl": cfg.inference.claim_ttl_seconds,
        "attempt": "{{retries}}",
        **pushed,
    }
    infer = _common.step_container(
        cfg,
        NAME,
        _common.StepSpec(
            name="infer",
            model=InferParams,
            inputs=INFER_FIELDS,
            outputs=INFER_OUTPUTS,
            defaults={**_infer_defaults(cfg), "lanes": 1},
            literals=infer_literals,
            gpu=True,
            annotations=LANE_ANNOTATIONS,
            # A lane lives as long as the run's inference does, not one shard.
            deadline_seconds=cfg.workflow.active_deadline_seconds,
        ),
    )
    report = _common.step_container(
        cfg,
        NAME,
        _common.StepSpec(name="report", model=ReportParams, inputs=REPORT_FIELDS, outputs=REPORT_OUTPUTS),
    )
    return ingest, infer, report


def _pipeline(cfg: KioskConfig, ingest: Container, infer: Container, report: Container) -> DAG:
    """The `pipeline` DAG: ingest, `parallelism` infer lanes, report."""
    pipeline_inputs = [
        *_params.parameters(IngestParams, INGEST_INPUTS, _ingest_defaults(cfg)),
        *_params.parameters(InferParams, INFER_INPUTS, _infer_defaults(cfg)),
        _params.extra_parameter("parallelism", PARALLELISM_HELP, cfg.inference.parallelism),
    ]
    with DAG(name=PIPELINE, inputs=pipeline_inputs) as pipeline:
        inp = _ref(pipeline)
        t_ingest = Task(name="ingest", template=ingest, arguments=_params.arguments(IngestParams, INGEST_INPUTS, inp))
        # One pod per lane: `parallelism` nodes whatever the number of shards, and no shard list in
        # any parameter, so the workflow object stays O(parallelism).
        t_infer = Task(
            name="infer",
            template=infer,
            with_sequence=m.Sequence(count=inp("parallelism")),
            arguments={
                _params.kebab(InferParams, "run_uri"): inp("run-uri"),
                _params.kebab(InferParams, "lane"): "{{item}}",
                _params.kebab(InferParams, "lanes"): inp("parallelism"),
                **_params.arguments(InferParams, ("output_uri", *INFER_INPUTS), inp),
            },
        )
        t_report = Task(
            name="report",
            template=report,
            arguments={
                **_params.arguments(ReportParams, ("run_uri", "output_uri"), inp),
                _params.kebab(ReportParams, "summary_uri"): f"{inp('run-uri')}/report/",
            },
        )
        # Plain `infer`: Argo phases a DAG by its leaves, so a report after a failed infer would
        # turn the run green.
        t_ingest >> t_infer  # two statements: Hera types `a >> b` as Task | list[Task]
        t_infer >> t_report
    pipeline.outputs = [
        Parameter(
            name=name,
            description=REPORT_OUTPUTS[name],
            value_from=m.ValueFrom(parameter=t_report.get_parameter(name).value),
        )
        for name in PIPELINE_OUTPUTS
    ]
    return pipeline


def build(cfg: KioskConfig, env: str) -> WorkflowTemplate:
    spec = _common.template_spec(
        cfg,
        env,
        NAME,
        "Batch inference",
        "Validates and shards new images, runs the ONNX model over each shard on GPUs, and writes a run report.",
    )
    with WorkflowTemplate(entrypoint="main", arguments=workflow_arguments(cfg), **spec) as wt:
        pipeline = _pipeline(cfg, *_step_templates(cfg))
        # Steps, not a DAG: Argo publishes the globalName outputs of a root Steps template to
        # status.outputs, and ignores them on a root DAG's own outputs (workflow/controller/dag.go
        # adds only its tasks' outputs; see https://github.com/argoproj/argo-workflows/issues/14767).
        with Steps(name="main") as main:
            run = Step(
                name=PIPELINE,
                template=pipeline,
                arguments={
                    **{str(p.name): wt.get_parameter(str(p.name)).value for p in workflow_arguments(cfg)},
                    "run-uri": _common.run_uri(cfg),
                },
            )
        main.outputs = [
            Parameter(
                name=name,
                description=REPORT_OUTPUTS[name],
                global_name=name,
                value_from=m.ValueFrom(parameter=run.get_parameter(name).value),
            )
            for name in PIPELINE_OUTPUTS
        ]
    return wt
