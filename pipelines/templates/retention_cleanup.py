"""`retention-cleanup` WorkflowTemplate: delete stored objects older than the retention threshold.

A manual submit is a dry run unless `-p dry-run=false` is given; the CronWorkflow passes false.
"""

from __future__ import annotations

from hera.workflows import WorkflowTemplate
from hera.workflows import models as m

from pipelines.config import KioskConfig
from pipelines.templates import _common
from steps.cleanup.params import CleanupParams

NAME = "retention-cleanup"
# Shared with the CronWorkflow so a manual run and a scheduled one never delete side by side.
MUTEX = "retention-cleanup"
INPUTS = ("dry_run", "older_than", "max_deletes")
OUTPUTS = {
    "deleted": "Objects deleted (or that would be, in a dry run).",
    "bytes": "Bytes deleted (or that would be, in a dry run).",
    "report": "URI of the JSON report.",
}


def defaults(cfg: KioskConfig) -> dict[str, object]:
    return {"dry_run": True, "older_than": cfg.retention.older_than, "max_deletes": cfg.retention.max_deletes}


def mutex() -> m.Synchronization:
    return m.Synchronization(mutexes=[m.Mutex(name=MUTEX)])


def build(cfg: KioskConfig, env: str) -> WorkflowTemplate:
    literals: dict[str, object] = {
        "store": cfg.storage.uri,
        "prefix": list(cfg.retention.prefixes),
        "json_report": True,
        "report": f"{_common.run_uri(cfg)}/report/cleanup.json",
        **_common.push_literals(cfg),
    }
    if cfg.pushgateway and cfg.retention.metrics_max_age:
        literals["prune_metrics_older_than"] = cfg.retention.metrics_max_age
    return _common.single_step_template(
        cfg,
        env,
        _common.StepSpec(
            name="cleanup",
            model=CleanupParams,
            inputs=INPUTS,
            outputs=OUTPUTS,
            defaults=defaults(cfg),
            literals=literals,
        ),
        name=NAME,
        title="Retention cleanup",
        description=f"Deletes objects under {', '.join(cfg.retention.prefixes)} older than the threshold. "
        "Dry run unless dry-run=false.",
        synchronization=mutex(),
    )
