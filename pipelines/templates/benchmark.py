"""`benchmark` WorkflowTemplate: synthetic images -> the batch-inference pipeline once per sweep
configuration (through `templateRef`) -> one report comparing them.
"""

from __future__ import annotations

from hera.workflows import DAG, Parameter, Task, WorkflowTemplate
from hera.workflows import models as m

from pipelines.config import KioskConfig
from pipelines.templates import _common, _params, batch_inference, synthetic_data
from steps.benchmark.params import BenchmarkParams
from steps.infer.params import InferParams
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


def _wf(name: str) -> str:
    return f"{{{{workflow.parameters.{name}}}}}"


def build(cfg: KioskConfig, env: str) -> WorkflowTemplate:
    spec = _common.template_spec(
        cfg,
        env,
        NAME,
        "Benchmark",
        "Runs batch-inference over synthetic images for each sweep configuration and reports throughput and cost.",
    )
    bench = bench_uri(cfg)
    run = f"{bench}/runs/bs{{{{item.batch_size}}}}-ss{{{{item.shard_size}}}}-p{{{{item.parallelism}}}}"
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
    outputs = [
        Parameter(
            name=name,
            description=text,
            global_name=name,
            value_from=m.ValueFrom(parameter=f"{{{{tasks.benchmark.outputs.parameters.{name}}}}}"),
        )
        for name, text in OUTPUTS.items()
    ]
    with WorkflowTemplate(entrypoint="main", arguments=workflow_arguments(cfg), **spec) as wt:
        synth = _common.step_container(
            cfg,
            NAME,
            _common.StepSpec("synth", SynthParams, SYNTH_INPUTS, synthetic_data.OUTPUTS, synthetic_data.defaults(cfg)),
        )
        report = _common.step_container(
            cfg,
            NAME,
            _common.StepSpec("benchmark", BenchmarkParams, BENCH_INPUTS, OUTPUTS, _bench_defaults(cfg), literals),
        )
        # parallelism 1: sweep configurations must not compete for the same GPUs, or the numbers lie.
        with DAG(name="main", outputs=outputs, parallelism=1):
            t_synth = Task(
                name="synth",
                template=synth,
                arguments={
                    "output-uri": f"{bench}/images",
                    **{k: _wf(k) for k in ("count", "width", "height")},
                },
            )
            t_sweep = Task(
                name="sweep",
                template_ref=m.TemplateRef(name=batch_inference.NAME, template=batch_inference.PIPELINE),
                with_param=_wf("sweep"),
                arguments={
                    "input-uri": "{{tasks.synth.outputs.parameters.uri}}",
                    "output-uri": f"{run}/outputs",
                    "run-uri": run,
                    "model-uri": _wf("model-uri"),
                    "model-spec": _wf("model-spec"),
                    "batch-size": "{{item.batch_size}}",
                    "shard-size": "{{item.shard_size}}",
                    "parallelism": "{{item.parallelism}}",
                    "force": "false",
                },
            )
            t_report = Task(
                name="benchmark",
                template=report,
                arguments={
                    "runs-uri": f"{bench}/runs",
                    "report-uri": f"{bench}/report",
                    "baseline": _wf("baseline"),
                    "fail-on-regression": _wf("fail-on-regression"),
                },
            )
            # two statements: Hera types `a >> b` as Task | list[Task], which `>> c` does not accept
            t_synth >> t_sweep
            t_sweep >> t_report
    return wt
