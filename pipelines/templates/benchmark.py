"""`benchmark` WorkflowTemplate: synthetic images -> the batch-inference pipeline once per sweep
configuration (through `templateRef`) -> one report comparing them.
"""

from __future__ import annotations

from collections.abc import Callable

from hera.workflows import DAG, Container, Parameter, Task, WorkflowTemplate
from hera.workflows import models as m

from pipelines.config import KioskConfig
from pipelines.templates import _common, _params, batch_inference, synthetic_data
from steps.benchmark.params import BenchmarkParams
from steps.infer.params import InferParams
from steps.ingest.params import IngestParams
from steps.synth.params import SynthParams

NAME = "benchmark"
SYNTH_INPUTS = ("output_uri", "count", "width", "height")
BENCH_INPUTS = ("runs_uri", "report_uri", "baseline", "fail_on_regression")
OUTPUTS = {
    "best-config": "The sweep configuration with the highest throughput.",
    "images-per-second": "Throughput of the best configuration.",
    "cost-per-1k-images": "Cost of 1000 images with the best configuration.",
    "report-uri": "Where the benchmark report was written.",
}
SWEEP_HELP = "JSON list of {batch_size, shard_size, parallelism} configurations, run one after another."


def bench_uri(cfg: KioskConfig) -> str:
    return f"{cfg.storage.uri}/benchmarks/{{{{workflow.name}}}}"


def _bench_defaults(cfg: KioskConfig) -> dict[str, object]:
    return {"fail_on_regression": cfg.benchmark.fail_on_regression}


def workflow_arguments(cfg: KioskConfig) -> list[Parameter]:
    synth = {k: v for k, v in synthetic_data.defaults(cfg).items() if k != "output_uri"}
    return [
        _params.extra_parameter("sweep", SWEEP_HELP, [p.model_dump() for p in cfg.benchmark.sweep], as_arguments=True),
        *_params.parameters(SynthParams, ("count", "width", "height"), synth, as_arguments=True),
        *_params.parameters(
            InferParams,
            ("model_uri", "model_spec"),
            {"model_uri": cfg.model.uri, "model_spec": cfg.model.spec},
            as_arguments=True,
        ),
        *_params.parameters(
            BenchmarkParams, ("baseline", "fail_on_regression"), _bench_defaults(cfg), as_arguments=True
        ),
    ]


def _report_literals(cfg: KioskConfig) -> dict[str, object]:
    literals: dict[str, object] = {
        "namespace": "{{workflow.namespace}}",
        "gpu_price_per_hour": cfg.benchmark.gpu_price_per_hour,
        "cpu_price_per_hour": cfg.benchmark.cpu_price_per_hour,
        # Each infer pod holds this many GPUs: a CPU-only environment must not be charged for one.
        "gpus_per_task": cfg.gpu.count,
        # Bill each run by its lane pods' lifetimes in this Workflow's status, plus its S3 requests.
        "workflow": "{{workflow.namespace}}/{{workflow.name}}",
        "s3_get_price_per_1k": cfg.benchmark.s3_get_price_per_1k,
        "s3_put_price_per_1k": cfg.benchmark.s3_put_price_per_1k,
    }
    if cfg.benchmark.prometheus_url:
        literals["prometheus_url"] = cfg.benchmark.prometheus_url
        literals["prometheus_lag_seconds"] = cfg.benchmark.prometheus_lag_seconds
    return literals


def build(cfg: KioskConfig, env: str) -> WorkflowTemplate:
    spec = _common.template_spec(
        cfg,
        env,
        NAME,
        "Benchmark",
        "Runs batch-inference over synthetic images for each sweep configuration and reports throughput and cost.",
    )
    with WorkflowTemplate(entrypoint="main", arguments=workflow_arguments(cfg), **spec) as wt:

        def wf(name: str) -> str:  # a workflow parameter, through Hera: an unknown name fails here
            return str(wt.get_parameter(name).value)

        _main(cfg, *_step_templates(cfg), wf)
    return wt


def _step_templates(cfg: KioskConfig) -> tuple[Container, Container]:
    synth = _common.step_container(
        cfg,
        NAME,
        _common.StepSpec(
            name="synth",
            model=SynthParams,
            inputs=SYNTH_INPUTS,
            outputs=synthetic_data.OUTPUTS,
            defaults=synthetic_data.defaults(cfg),
        ),
    )
    report = _common.step_container(
        cfg,
        NAME,
        _common.StepSpec(
            name="benchmark",
            model=BenchmarkParams,
            inputs=BENCH_INPUTS,
            outputs=OUTPUTS,
            defaults=_bench_defaults(cfg),
            literals=_report_literals(cfg),
            global_outputs=True,
        ),
    )
    return synth, report


def _main(cfg: KioskConfig, synth: Container, report: Container, wf: Callable[[str], str]) -> None:
    bench = bench_uri(cfg)
    run = f"{bench}/runs/bs{{{{item.batch_size}}}}-ss{{{{item.shard_size}}}}-p{{{{item.parallelism}}}}"
    # parallelism 1: sweep configurations must not compete for the same GPUs, or the numbers lie.
    with DAG(name="main", parallelism=1) as main:
        t_synth = Task(
            name="synth",
            template=synth,
            arguments={
                _params.kebab(SynthParams, "output_uri"): f"{bench}/images",
                **_params.arguments(SynthParams, ("count", "width", "height"), wf),
            },
        )
        t_sweep = Task(
            name="sweep",
            template_ref=m.TemplateRef(name=batch_inference.NAME, template=batch_inference.PIPELINE),
            with_param=wf("sweep"),
            arguments={
                _params.kebab(IngestParams, "input_uri"): t_synth.get_parameter("uri").value,
                _params.kebab(IngestParams, "output_uri"): f"{run}/outputs",
                _params.kebab(IngestParams, "run_uri"): run,
                **_params.arguments(InferParams, ("model_uri", "model_spec"), wf),
                _params.kebab(InferParams, "batch_size"): "{{item.batch_size}}",
                _params.kebab(IngestParams, "shard_size"): "{{item.shard_size}}",
                "parallelism": "{{item.parallelism}}",  # the pipeline DAG's own, no step's flag
                _params.kebab(IngestParams, "force"): "false",
            },
        )
        t_report = Task(
            name="benchmark",
            template=report,
            arguments={
                _params.kebab(BenchmarkParams, "runs_uri"): f"{bench}/runs",
                _params.kebab(BenchmarkParams, "report_uri"): f"{bench}/report",
                **_params.arguments(BenchmarkParams, ("baseline", "fail_on_regression"), wf),
            },
        )
        # two statements: Hera types `a >> b` as Task | list[Task], which `>> c` does not accept
        t_synth >> t_sweep
        t_sweep >> t_report
    main.outputs = [
        Parameter(
            name=name,
            description=text,
            value_from=m.ValueFrom(parameter=t_report.get_parameter(name).value),
        )
        for name, text in OUTPUTS.items()
    ]
