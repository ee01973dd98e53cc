"""Parameters of `python -m steps.report` (aggregates a run's shard metrics)."""

from typing import ClassVar

from pydantic import Field

from steps.common.params_base import OutputsParams, StorageParams


class ReportParams(StorageParams, OutputsParams):
    step_module: ClassVar[str] = "steps.report"
    run_uri: str = Field(description="Prefix URI of the run (manifest, shards, shard metrics).")
    output_uri: str = Field(description="Prefix URI of the inference outputs.")
    summary_uri: str = Field("", description="Where summary.json/csv/md go; empty: <run-uri>/report/.")
