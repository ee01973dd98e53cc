"""`batch-inference` CronWorkflow: process new uploads on a schedule, like the old queue consumer.

Ingest skips inputs that already have outputs (force=false), so each run handles only what is new.
"""

from __future__ import annotations

from hera.workflows import CronWorkflow

from pipelines.config import KioskConfig
from pipelines.templates import _cron, batch_inference


def build(cfg: KioskConfig, env: str) -> CronWorkflow:
    return _cron.cron(
        cfg,
        env,
        name=batch_inference.NAME,
        template=batch_inference.NAME,
        schedule=cfg.batch_cron,
        # A missing upload directory on a file store is nothing new yet for the schedule, an error by hand.
        arguments={"force": "false", "missing-input": "empty"},
        mutex=f"{batch_inference.NAME}-cron",
        title="Batch inference (scheduled)",
        description="Runs batch-inference over uploads that have no output yet.",
    )
