"""Every Prometheus name kiosk emits or reads, in one place.

The emitters (`steps/*/metrics.py`, the template metrics in `pipelines/templates/_common.py`) build
their metrics from these constants, and so do the Grafana dashboards and the alert rules
(`pipelines/observability/`). Renaming a metric here renames it everywhere; renaming it in one
emitter only fails `tests/observability/test_metric_names.py`, which reads the names back from the
emitters' real registries.

Pure constants, no imports: `pipelines` may import this module (besides the params models), and it
must stay as light as they are.

`*_NAME` is what the emitter declares; the exposed sample names Prometheus stores are derived with
the helpers below (prometheus_client appends `_total` to counters; histograms expose `_bucket`,
`_sum` and `_count`).
"""

# --- Pushgateway jobs (the `job` label of pushed groups) ---
INFER_JOB = "kiosk_infer"
INGEST_JOB = "kiosk_ingest"
CLEANUP_JOB = "kiosk-cleanup"

# --- Grouping labels ---
#: The environment (config name) of every pushed group: first in each grouping key, so envs sharing
#: a Pushgateway never replace each other's groups, and the dashboards and alerts select their own.
ENV_LABEL = "env"
RUN_LABEL = "run"  # the run's directory name (the basename of --run-uri); infer and ingest
SHARD_LABEL = "shard"  # infer
STORE_LABEL = "store"  # cleanup
PREFIX_LABEL = "prefix"  # cleanup
DRY_RUN_LABEL = "dry_run"  # cleanup
STATUS_LABEL = "status"  # infer items, template metrics
STAGE_LABEL = "stage"  # infer stage seconds
REQUEST_KIND_LABEL = "kind"  # infer storage requests: get | put | head

# --- steps.ingest (one push per run, grouping {run}) ---
INGEST_SHARDS = "kiosk_ingest_shards"
INGEST_ACCEPTED = "kiosk_ingest_accepted_images"
INGEST_REJECTED = "kiosk_ingest_rejected_images"

# --- steps.infer (one push per shard, grouping {run, shard}) ---
INFER_ITEMS = "kiosk_infer_items"  # counter, label status: ok | failed | resumed
INFER_ITEM_LATENCY = "kiosk_infer_item_latency_seconds"  # histogram
INFER_STAGE_SECONDS = "kiosk_infer_stage_seconds"  # counter, label stage
INFER_BATCH_SIZE = "kiosk_infer_batch_size"  # histogram
INFER_IMAGES_PER_SECOND = "kiosk_infer_images_per_second"  # gauge
INFER_PROVIDER_ACTIVE = "kiosk_infer_provider_active"  # gauge, label provider
INFER_SHARD_SECONDS = "kiosk_infer_shard_seconds"  # gauge: wall seconds the shard's pod spent on it
INFER_STORAGE_REQUESTS = "kiosk_infer_storage_requests"  # counter, label kind: get | put | head (S3 bills each)

# --- steps.cleanup (one push per run, grouping {store}; the last success in its own group) ---
CLEANUP_SCANNED = "kiosk_cleanup_scanned_objects"
CLEANUP_MATCHED = "kiosk_cleanup_matched_objects"
CLEANUP_DELETED = "kiosk_cleanup_deleted_objects"
CLEANUP_DELETED_BYTES = "kiosk_cleanup_deleted_bytes"
CLEANUP_NONCURRENT_DELETED = "kiosk_cleanup_noncurrent_deleted_versions"
CLEANUP_ERRORS = "kiosk_cleanup_errors"
CLEANUP_ABORTED = "kiosk_cleanup_aborted"
CLEANUP_EXIT_CODE = "kiosk_cleanup_exit_code"
CLEANUP_DURATION = "kiosk_cleanup_duration_seconds"
CLEANUP_LAST_RUN = "kiosk_cleanup_last_run_timestamp_seconds"
CLEANUP_LAST_SUCCESS = "kiosk_cleanup_last_success_timestamp_seconds"
#: The grouping-key label that keeps the last success apart from the run's own group, so a failed
#: run (which replaces its group) does not erase when the cleanup last succeeded.
CLEANUP_SUCCESS_GROUP = {"last": "success"}

# --- Template metrics (emitted by the workflow-controller) ---
WORKFLOW_DURATION = "kiosk_workflow_duration_seconds"  # histogram, labels workflow_template, status
WORKFLOW_FAILURES = "kiosk_workflow_failures_total"  # counter, label workflow_template
STEP_DURATION = "kiosk_step_duration_seconds"  # histogram, labels workflow_template, step, status
STEP_FAILURES = "kiosk_step_failures_total"  # counter, labels workflow_template, step
TEMPLATE_LABEL = "workflow_template"
WORKFLOW_NAMESPACE_LABEL = "workflow_namespace"  # `{{workflow.namespace}}`: one controller, many envs
STEP_LABEL = "step"
#: Argo v3.6+ exports every custom metric through OpenTelemetry's Prometheus exporter with the
#: namespace `argo_workflows` and no added suffixes (util/telemetry/exporter_prometheus.go).
CONTROLLER_PREFIX = "argo_workflows_"

# --- Read, not emitted, by kiosk ---
DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"  # percent, per GPU, with pod/namespace labels from dcgm-exporter
DCGM_FB_USED = "DCGM_FI_DEV_FB_USED"  # MiB of frame buffer in use
UP = "up"  # Prometheus' own scrape-health series
PUSH_TIME = "push_time_seconds"  # the Pushgateway's own, one per group, with the group's labels


def grouping(env: str, **labels: str) -> dict[str, str]:
    """A Pushgateway grouping key: `labels`, after the env's label when there is an env."""
    return {ENV_LABEL: env, **labels} if env else labels


def counter(name: str) -> str:
    """The sample name prometheus_client exposes for a counter declared as `name`."""
    return name if name.endswith("_total") else f"{name}_total"


def bucket(name: str) -> str:
    return f"{name}_bucket"


def count(name: str) -> str:
    return f"{name}_count"


def controller(name: str) -> str:
    """The name under which the workflow-controller exposes template metric `name`."""
    return f"{CONTROLLER_PREFIX}{name}"
