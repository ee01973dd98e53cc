"""Parameters of `python -m steps.benchmark` (collects a sweep's runs into a report)."""

from typing import ClassVar

from pydantic import Field

from steps.common.params_base import OutputsParams, StorageParams


class BenchmarkParams(StorageParams, OutputsParams):
    step_module: ClassVar[str] = "steps.benchmark"
    runs_uri: str = Field(description="Prefix URI under which each sweep configuration's run wrote its report.")
    report_uri: str = Field(description="Prefix URI where the benchmark report is written.")
    prometheus_url: str = Field("", description="Prometheus base URL; empty: no Prometheus data.")
    prometheus_lag_seconds: float = Field(
        0.0,
        ge=0,
        description="Seconds added to the end of each run's query window: a value pushed as a run ends is "
        "scraped up to one scrape interval later. The step waits until the last window's end has passed.",
    )
    gpu_metric: str = Field(
        "DCGM_FI_DEV_GPU_UTIL",
        description="GPU utilisation (%): a metric name (averaged over series) or a whole PromQL query "
        "($namespace and $run are substituted).",
    )
    gpu_memory_metric: str = Field(
        "DCGM_FI_DEV_FB_USED",
        description="GPU memory used (MiB): a metric name (summed over series) or a whole PromQL query "
        "($namespace and $run are substituted).",
    )
    cpu_query: str = Field(
        'sum(rate(container_cpu_usage_seconds_total{namespace="$namespace"}[1m]))',
        description="PromQL for pod CPU in cores ($namespace and $run are substituted).",
    )
    step_queries: str = Field(
        '{"infer_images_per_second": "sum(kiosk_infer_images_per_second)"}',
        description="Our own step metrics: a JSON object NAME -> PromQL ($namespace and $run, the run's "
        "directory name, are substituted), each reported as NAME_mean and NAME_max per run. A JSON string, "
        "not a list flag: PromQL has commas and quotes.",
    )
    namespace: str = Field("", description="Kubernetes namespace the runs used (for queries).")
    gpu_price_per_hour: float = Field(0.0, ge=0, description="GPU price, $/hour per GPU.")
    cpu_price_per_hour: float = Field(0.0, ge=0, description="CPU node price, $/hour per inference task's node.")
    gpus_per_task: int = Field(
        1, ge=0, le=16, description="GPUs each inference task holds (0: CPU-only runs, no GPU cost)."
    )
    workflow: str = Field(
        "",
        description="The Workflow whose status bills each run by its infer lane pods' start/finish times: "
        "<namespace>/<name> (read from the Kubernetes API in a cluster) or a URI of its JSON (argo get -o json); "
        "empty or unreadable: in-step wall time x parallelism, an estimate.",
    )
    s3_get_price_per_1k: float = Field(0.0, ge=0, description="S3 price, $ per 1000 GET/HEAD requests.")
    s3_put_price_per_1k: float = Field(0.0, ge=0, description="S3 price, $ per 1000 PUT/COPY/POST/LIST requests.")
    baseline: str = Field("", description="URI of a previous runs.parquet to compare with; empty: none.")
    fail_on_regression: float = Field(
        0.0, ge=0, le=100, description="Exit non-zero when best throughput drops by more than this percent (0: off)."
    )
