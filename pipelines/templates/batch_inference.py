"""`batch-inference` WorkflowTemplate: ingest -> infer (fanned out over shards) -> report.

The DAG lives in its own template, `pipeline`, so `benchmark` can run it through `templateRef`;
the entrypoint `main` only supplies this run's URIs and lifts the report's outputs to the workflow.
"""

from __future__ import annotations

from hera.workflows import DAG, Parameter, Step, Steps, Task, WorkflowTemplate
from hera.workflows import models as m

from pipelines.config import KioskConfig
from pipelines.templates import _common, _params
from steps.infer.params import InferParams
from steps.ingest.params import IngestParams
from steps.report.params import ReportParams

NAME = "batch-inference"
PIPELINE = "pipeline"
LANE = "infer-lane"

INGEST_OUTPUTS = {
    "shards": "JSON list of shard URIs (what the infer fan-out iterates).",
    "count": "Number of accepted input images.",
    "rejected": "Number of rejected input images.",
}
INFER_OUTPUTS = {"processed": "Images processed in this shard.", "failed": "Images that failed in this shard."}
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
PARALLELISM_HELP = "Most shards inferred at the same time (concurrent infer pods)."


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


def _inp(name: str) -> str:
    return f"{{{{inputs.parameters.{name}}}}}"


def _add_pipeline(cfg: KioskConfig) -> None:
    """The step templates, the infer lane and the `pipeline` DAG, inside the current WorkflowTemplate."""
    pushed = {"pushgateway": cfg.pushgateway} if cfg.pushgateway else {}
    ingest = _common.step_container(
        cfg,
        NAME,
        _common.StepSpec("ingest", IngestParams, INGEST_INPUTS, INGEST_OUTPUTS, _ingest_defaults(cfg), pushed),
    )
    infer_fields = ("shard_uri", "output_uri", *INFER_INPUTS)
    infer_literals: dict[str, object] = {
        "device": cfg.gpu.device,
        "allow_cpu_fallback": cfg.gpu.allow_cpu_fallback,
        "max_failure_ratio": cfg.inference.max_failure_ratio,
    }
    if cfg.pushgateway:
        infer_literals["pushgateway"] = cfg.pushgateway
    infer = _common.step_container(
        cfg,
        NAME,
        _common.StepSpec(
            "infer", InferParams, infer_fields, INFER_OUTPUTS, _infer_defaults(cfg), infer_literals, gpu=True
        ),
    )
    report = _common.step_container(
        cfg,
        NAME,
        _common.StepSpec("report", ReportParams, ("run_uri", "output_uri", "summary_uri"), REPORT_OUTPUTS),
    )

    # Argo's `parallelism` is a fixed integer, so a per-run cap cannot be set on the fan-out itself.
    # Instead `parallelism` lanes run side by side, each taking every lanes-th shard one at a time.
    lane_inputs = [
        _params.extra_parameter("shards", "JSON list of every shard URI of the run."),
        _params.extra_parameter("lane", "This lane's index, 0 <= lane < lanes."),
        _params.extra_parameter("lanes", "Number of lanes (the run's parallelism)."),
        *_params.parameters(InferParams, ("output_uri", *INFER_INPUTS), _infer_defaults(cfg)),
    ]
    # expr-lang (v1.17, Argo's `{{= }}`) binds `#index` only inside map/reduce, not filter, so each
    # shard is paired with its index first. `{ {` keeps a literal `}}` from closing the Argo tag.
    mine = (
        "{{=toJson(map(filter(map(fromJSON(inputs.parameters.shards), { {i: #index, s: #} }), "
        "{.i % asInt(inputs.parameters.lanes) == asInt(inputs.parameters.lane)}), {.s}))}}"
    )
    with Steps(name=LANE, inputs=lane_inputs, parallelism=1):
        Step(
            name="infer",
            template=infer,
            with_param=mine,
            arguments={
                "shard-uri": "{{item}}",
                **{k: _inp(k) for k in ("output-uri", "model-uri", "model-spec", "batch-size")},
            },
        )

    pipeline_inputs = [
        *_params.parameters(IngestParams, INGEST_INPUTS, _ingest_defaults(cfg)),
        *_params.parameters(InferParams, INFER_INPUTS, _infer_defaults(cfg)),
        _params.extra_parameter("parallelism", PARALLELISM_HELP, cfg.inference.parallelism),
    ]
    outputs = [
        Parameter(
            name=name,
            description=REPORT_OUTPUTS[name],
            value_from=m.ValueFrom(parameter=f"{{{{tasks.report.outputs.parameters.{name}}}}}"),
        )
        for name in PIPELINE_OUTPUTS
    ]
    with DAG(name=PIPELINE, inputs=pipeline_inputs, outputs=outputs):
        t_ingest = Task(
            name="ingest",
            template=ingest,
            arguments={k: _inp(k) for k in (_params.kebab(IngestParams, f) for f in INGEST_INPUTS)},
        )
        t_infer = Task(
            name="infer",
            template=LANE,
            with_sequence=m.Sequence(count=_inp("parallelism")),
            arguments={
                "shards": "{{tasks.ingest.outputs.parameters.shards}}",
                "lane": "{{item}}",
                "lanes": _inp("parallelism"),
                **{k: _inp(k) for k in ("output-uri", "model-uri", "model-spec", "batch-size")},
            },
        )
        t_report = Task(
            name="report",
            template=report,
            arguments={
                "run-uri": _inp("run-uri"),
                "output-uri": _inp("output-uri"),
                "summary-uri": f"{_inp('run-uri')}/report/",
            },
        )
        # Plain `infer`: Argo phases a DAG by its leaves, so a report after a failed infer would
        # turn the run green.
        t_ingest >> t_infer  # two statements: Hera types `a >> b` as Task | list[Task]
        t_infer >> t_report


def build(cfg: KioskConfig, env: str) -> WorkflowTemplate:
    spec = _common.template_spec(
        cfg,
        env,
        NAME,
        "Batch inference",
        "Validates and shards new images, runs the ONNX model over each shard on GPUs, and writes a run report.",
    )
    outputs = [
        Parameter(
            name=name,
            description=REPORT_OUTPUTS[name],
            global_name=name,
            value_from=m.ValueFrom(parameter=f"{{{{tasks.{PIPELINE}.outputs.parameters.{name}}}}}"),
        )
        for name in PIPELINE_OUTPUTS
    ]
    with WorkflowTemplate(entrypoint="main", arguments=workflow_arguments(cfg), **spec) as wt:
        _add_pipeline(cfg)
        with DAG(name="main", outputs=outputs):
            Task(
                name=PIPELINE,
                template=PIPELINE,
                arguments={
                    **{str(p.name): f"{{{{workflow.parameters.{p.name}}}}}" for p in workflow_arguments(cfg)},
                    "run-uri": _common.run_uri(cfg),
                },
            )
    return wt
