"""A CronWorkflow that runs a WorkflowTemplate through `workflowTemplateRef`."""

from __future__ import annotations

from collections.abc import Mapping

from hera.workflows import CronWorkflow
from hera.workflows import models as m

from pipelines.config import KioskConfig
from pipelines.config.model import Schedule
from pipelines.templates import _common


def cron(
    cfg: KioskConfig,
    env: str,
    *,
    name: str,
    template: str,
    schedule: Schedule,
    arguments: Mapping[str, str],
    mutex: str,
    title: str,
    description: str,
) -> CronWorkflow:
    return CronWorkflow(
        name=name,
        namespace=cfg.namespace,
        labels=_common.labels(cfg, env, name),
        annotations=_common.template_annotations(title, description),
        schedules=list(schedule.schedules),
        timezone=schedule.timezone,
        cron_suspend=schedule.suspend,
        # A run still going when the next one is due means the schedule is too tight: skip, never pile up.
        concurrency_policy="Forbid",
        starting_deadline_seconds=schedule.starting_deadline_seconds,
        successful_jobs_history_limit=schedule.successful_jobs_history_limit,
        failed_jobs_history_limit=schedule.failed_jobs_history_limit,
        workflow_template_ref=m.WorkflowTemplateRef(name=template),
        arguments=dict(arguments),
        synchronization=m.Synchronization(mutexes=[m.Mutex(name=mutex)]),
        workflow_metadata=m.WorkflowMetadata(labels=_common.labels(cfg, env, name)),
        **_common.runtime_spec(cfg),
    )
