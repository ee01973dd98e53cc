"""`retention-cleanup` CronWorkflow: the scheduled, real (dry-run=false) retention run."""

from __future__ import annotations

from hera.workflows import CronWorkflow

from pipelines.config import KioskConfig
from pipelines.templates import _cron, retention_cleanup


def build(cfg: KioskConfig, env: str) -> CronWorkflow:
    return _cron.cron(
        cfg,
        env,
        name=retention_cleanup.NAME,
        template=retention_cleanup.NAME,
        schedule=cfg.retention.cron,
        # Explicit: the template defaults to a dry run, the schedule is what actually deletes.
        arguments={"dry-run": "false"},
        mutex=retention_cleanup.MUTEX,
        title="Retention cleanup (scheduled)",
        description="Runs retention-cleanup with dry-run=false on the configured schedule.",
    )
