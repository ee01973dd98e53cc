"""`python -m steps.cleanup`: delete objects older than a threshold under directory prefixes.

Refusals (bad duration, whole-bucket prefix, sub-hour threshold, clock skew, a file-store prefix that
is a symlink out of the store root) are one-line errors with exit code 2 before anything is listed.
Otherwise the run prints its report and exits with the report's code: 0 done, 1 unresolved errors
(a rerun is safe and converges), 4 aborted by --max-deletes with nothing deleted.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from steps.cleanup import passes, ranges, workers
from steps.cleanup.params import CleanupParams
from steps.cleanup.report import EXIT_UNRESOLVED, PrefixReport, Report
from steps.cleanup.rules import check_threshold, cutoff_for, duration_flag, normalise_prefixes
from steps.cleanup.sources import sources_for
from steps.common.errors import StepError
from steps.common.storage import FileStore, StorageError, Store, open_store, split_uri

#: `--print-keys`: called with (prefix, target, noncurrent) for every object that matches.
OnMatch = Callable[[str, passes.Target, bool], None] | None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def check_clock(store: Store, margin: timedelta, clock: Callable[[], datetime] = _utcnow) -> datetime:
    """The server's time, after checking that our clock agrees with it within `margin`.

    Ages are measured against LastModified, which the server stamps; a node whose clock runs
    ahead would see every object as older than it is.
    """
    before = clock()
    server = store.server_time()
    after = clock()
    local = before + (after - before) / 2
    skew = abs(server - local)
    # The Date header has one-second resolution: that much disagreement is not skew.
    if skew > margin + timedelta(seconds=1):
        raise StepError(
            f"clock skew: local clock {local.isoformat(timespec='seconds')} and {store.uri} "
            f"({server.isoformat(timespec='seconds')}) differ by {skew}, more than --clock-skew-margin={margin}; "
            "fix NTP on the node before cleaning"
        )
    return server


def _versioning(store: Store) -> str:
    if not store.uri.startswith("s3://"):
        return "n/a"
    from steps.common.storage.s3_versions import versioning_status  # boto3: S3 stores only

    return versioning_status(store)


def _opened(params: CleanupParams, store: Store | None) -> tuple[Store, contextlib.AbstractContextManager]:
    """The store, and what closes it: nothing when the caller passed one in."""
    if store is not None:
        return store, contextlib.nullcontext()
    opened = open_store(
        params.store,
        s3_endpoint=params.s3_endpoint,
        max_attempts=params.s3_max_attempts,
        max_pool_connections=params.workers + 2,  # the workers, plus the listing
    )
    return opened, opened


def _new_report(
    params: CleanupParams, store: Store, cutoff: datetime, prefixes: tuple[list[str], dict[str, str]]
) -> Report:
    """The report before any pass ran, with the notes on versioning and covered prefixes."""
    cleaned, covered = prefixes
    report = Report(
        store=store.uri,
        older_than=params.older_than,
        cutoff=cutoff.isoformat(timespec="seconds"),
        dry_run=params.dry_run,
        max_deletes=params.max_deletes,
        per_prefix={p: PrefixReport() for p in cleaned},
        covered_prefixes=covered,
        purge_noncurrent=params.purge_noncurrent,
    )
    report.versioning = _versioning(store)
    if report.versioning in {"Enabled", "Suspended"}:
        report.notes.append(
            "versioned bucket: deleting adds delete markers; the data stays as noncurrent versions "
            + (
                "and those noncurrent for longer than the threshold are purged (--purge-noncurrent)"
                if params.purge_noncurrent
                else "until --purge-noncurrent or a lifecycle rule removes them"
            )
        )
    if params.purge_noncurrent and report.versioning == "n/a":
        report.notes.append("--purge-noncurrent ignored: this store keeps no versions")
    for inner, outer in covered.items():
        report.notes.append(f"prefix {inner} is inside {outer}: cleaned as part of it")
    return report


def _run_passes(params: CleanupParams, store: Store, cutoff: datetime, report: Report, on_match: OnMatch) -> None:
    """Both passes over every task: in worker processes when there are several, else in this one."""
    purge = params.purge_noncurrent and report.versioning != "n/a"
    settings = passes.Settings(dry_run=params.dry_run, max_deletes=params.max_deletes, workers=params.workers)
    # --print-keys (on_match) prints from this process, so it lists here too.
    processes = 1 if on_match is not None else workers.resolve_processes(params.processes)
    tasks = _tasks(store, list(report.per_prefix), processes, purge)
    report.ranges = len(tasks)
    if processes > 1 and len(tasks) > 1:
        spec = workers.StoreSpec(params.store, params.s3_endpoint, params.s3_max_attempts, params.workers + 2, purge)
        with workers.ProcessPool(spec, min(processes, len(tasks))) as pool:
            report.processes = pool.processes
            passes.run(tasks, pool, cutoff, settings, report)
    else:
        passes.run(tasks, passes.InProcess(sources_for(store, purge), on_match), cutoff, settings, report)


def execute(
    params: CleanupParams,
    *,
    clock: Callable[[], datetime] = _utcnow,
    on_match: OnMatch = None,
    store: Store | None = None,
    settle_heap: bool = False,
) -> Report:
    """Validate, check the clock, count, and (unless dry run or over --max-deletes) delete.

    `store`: an already open store for `params.store` (tests reuse one; a boto3 client costs ~0.3 s).
    `settle_heap`: this process exists to run the step (workers.settle_heap); not for an embedding one.
    """
    started = time.monotonic()
    age = duration_flag(params.older_than)
    check_threshold(age, params.force)
    margin = duration_flag(params.clock_skew_margin, "--clock-skew-margin")
    prefixes = normalise_prefixes(params.prefix, params.allow_bucket_root)
    store, closing = _opened(params, store)
    with closing:
        if isinstance(store, FileStore):  # a prefix that is a symlink out of the root: bad input, exit 2
            for prefix in prefixes[0]:
                store.check_inside(prefix)
        cutoff = cutoff_for(check_clock(store, margin, clock), age)
        if settle_heap:
            workers.settle_heap()
        report = _new_report(params, store, cutoff, prefixes)
        _run_passes(params, store, cutoff, report, on_match)
    report.elapsed_s = time.monotonic() - started
    report.peak_rss_mb = workers.peak_rss_mb() + sum(report.worker_rss_mb.values())
    return report


def _tasks(store: Store, prefixes: list[str], processes: int, purge: bool) -> list[passes.Task]:
    """Each prefix, cut into key ranges of current objects when several processes share the work.

    Noncurrent versions stay one task per prefix: their listing is not split (sources.py says why).
    """
    if processes == 1:
        return [passes.Task(prefix) for prefix in prefixes]
    tasks = []
    for prefix in prefixes:
        try:
            spans = ranges.plan(store, prefix, processes * workers.RANGES_PER_PROCESS)
        except StorageError:  # the count pass meets the same error and records it for this prefix
            spans = [ranges.WHOLE]
        tasks += [passes.Task(prefix, span, noncurrent=False) for span in spans]
        if purge:
            tasks.append(passes.Task(prefix, ranges.WHOLE, noncurrent=True))
    return tasks


def _write_report(uri: str, params: CleanupParams, text: str) -> None:
    parent, key = split_uri(uri)
    with open_store(parent, s3_endpoint=params.s3_endpoint, max_attempts=params.s3_max_attempts) as store:
        store.put_bytes(key, text.encode(), content_type="application/json")


def _write_outputs(params: CleanupParams, summary: dict) -> None:
    out = Path(params.outputs_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, value in (("deleted", summary["deleted"]), ("bytes", summary["bytes"]), ("report", params.report)):
        (out / name).write_text(str(value))


def _printer(store_uri: str) -> Callable[[str, passes.Target, bool], None]:
    def show(prefix: str, target: passes.Target, noncurrent: bool) -> None:
        version = f" version={target.version_id}" if noncurrent else ""
        print(f"match {store_uri}/{target.key} size={target.size}{version}", flush=False)

    return show


def _prune_age(params: CleanupParams) -> timedelta | None:
    if not params.prune_metrics_older_than:
        return None
    if not params.pushgateway:
        raise StepError("--prune-metrics-older-than needs --pushgateway")
    return duration_flag(params.prune_metrics_older_than, "--prune-metrics-older-than")


def _metrics(params: CleanupParams, report: Report, prune_age: timedelta | None) -> None:
    """Push the run's counts, then prune old batch-run groups. Neither turns a finished cleanup into a
    failed one: a failure is a warning and a note in the report.
    """
    from steps.cleanup.metrics import push
    from steps.cleanup.pushgateway import prune

    def _prune() -> None:
        if prune_age is not None:
            report.metrics_groups_pruned = prune(params.pushgateway, prune_age, report.dry_run, env=params.env)

    for what, action in (("push", lambda: push(params.pushgateway, report, env=params.env)), ("prune", _prune)):
        try:
            action()
        except Exception as error:
            report.notes.append(f"pushgateway {params.pushgateway}: {what} failed: {error}")
            print(f"steps.cleanup: warning: pushgateway {what} failed: {error}", file=sys.stderr)


def run(params: CleanupParams) -> int:
    prune_age = _prune_age(params)  # a bad flag is refused before anything is listed
    report = execute(
        params, on_match=_printer(params.store.rstrip("/")) if params.print_keys else None, settle_heap=True
    )
    code = report.exit_code
    if params.pushgateway:
        _metrics(params, report, prune_age)
    summary = report.to_dict()
    text = json.dumps(summary, sort_keys=False)
    if params.report:
        try:
            _write_report(params.report, params, text)
        except StepError as error:
            print(f"steps.cleanup: error: --report: {error}", file=sys.stderr)
            code = max(code, EXIT_UNRESOLVED)
    _write_outputs(params, summary)
    if params.json_report:
        print(text, flush=True)
    else:
        _summary_line(summary)
    return code


def _summary_line(summary: dict) -> None:
    verb = "would delete" if summary["dry_run"] else "deleted"
    count = summary["would_delete"] if summary["dry_run"] else summary["deleted"]
    print(
        f"steps.cleanup: {verb} {count} objects ({summary['scanned']} scanned, {summary['error_count']} errors)"
        + (f"; ABORTED: {summary['notes'][-1]}" if summary["aborted"] else ""),
        file=sys.stderr,
    )
