"""Parameters of `python -m steps.benchmark` (collects a sweep's runs into a report)."""

from typing import ClassVar, Literal

from pydantic import Field

from steps.common.params_base import OutputsParams, StorageParams


class BenchmarkParams(StorageParams, OutputsParams):
    step_module: ClassVar[str] = "steps.benchmark"
    runs_uri: str = Field(description="Prefix URI under which each sweep configuration's run wrote its report.")
    report_uri: str = Field(description="Prefix URI where the benchmark report is written.")
    prometheus_url: str = Field("", description="Prometheus base URL; empty: no Prometheus data.")
    gpu_metric: str = Field("DCGM_FI_DEV_GPU_UTIL", description="GPU utilisation metric name.")
    gpu_memory_metric: str = Field("DCGM_FI_DEV_FB_USED", description="GPU memory metric name.")
    cpu_query: str = Field(
        'sum(rate(container_cpu_usage_seconds_total{namespace="$namespace"}[1m]))',
        description="PromQL for pod CPU ($namespace is substituted).",
    )
    namespace: str = Field("", description="Kubernetes namespace the runs used (for queries).")
    gpu_price_per_hour: float = Field(0.0, ge=0, description="GPU node price, $/hour.")
    cpu_price_per_hour: float = Field(0.0, ge=0, description="CPU node price, $/hour.")
    baseline: str = Field("", description="URI of a previous runs.parquet to compare with; empty: none.")
    fail_on_regression: float = Field(
        0.0, ge=0, le=100, description="Exit non-zero when best throughput drops by more than this percent (0: off)."
    )
