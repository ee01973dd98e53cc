"""The two-pass, streaming cleanup: count everything that matches, then delete it in batches.

Why two passes: `--max-deletes` must abort *before anything is deleted*, and a single streaming
pass cannot know the total until it has already deleted most of it. Remembering the matches
instead would make memory O(bucket). So pass 1 lists and counts (O(page) memory), and pass 2
lists again and deletes as it goes. The price is listing twice (one LIST per 1000 objects, so a
small fraction of the work next to the deletes) and a window between the passes; pass 2 applies
the same cutoff again, so an object rewritten in between is younger than the cutoff and stays,
and `--max-deletes` stays a hard cap in pass 2 as well.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from steps.cleanup.report import Report
from steps.cleanup.rules import in_prefix, is_expired

#: DeleteObjects takes at most 1000 keys per request (S3 API limit).
MAX_BATCH = 1000

#: Per-key error codes worth another try. Anything else (AccessDenied, InvalidObjectState...) is
#: reported as is: retrying would only repeat it.
TRANSIENT_CODES = frozenset(
    {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "OperationAborted", "ThrottlingException"}
)
#: The object is already gone: the goal is reached, but it is not counted as deleted by us.
GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion"})


@dataclass(frozen=True, slots=True)
class Target:
    key: str
    size: int
    version_id: str = ""


@dataclass(frozen=True, slots=True)
class Failure:
    key: str
    code: str
    message: str
    version_id: str = ""


class Source(Protocol):
    """One kind of thing to delete under a prefix (current objects, or noncurrent versions)."""

    noncurrent: bool

    def pages(self, prefix: str, cutoff: datetime) -> Iterator[tuple[int, list[Target]]]:
        """(how many entries the page listed, the expired ones among them), page by page."""
        ...

    def delete(self, targets: Sequence[Target]) -> list[Failure]:
        """Delete up to MAX_BATCH targets in one request; return the per-key failures."""
        ...


class ObjectInfoLike(Protocol):
    key: str
    size: int
    last_modified: datetime


def select(page: Iterable[ObjectInfoLike], prefix: str, cutoff: datetime) -> list[Target]:
    """The expired objects of a listing page that lie inside `prefix`.

    The listing was already asked for `prefix`; checking again costs nothing and means a store
    that returns a sibling (`uploads-archive/` for `uploads`) still cannot get it deleted.
    """
    return [
        Target(info.key, info.size)
        for info in page
        if in_prefix(info.key, prefix) and is_expired(info.last_modified, cutoff)
    ]


@dataclass
class Settings:
    dry_run: bool
    max_deletes: int
    workers: int = 4
    batch_size: int = MAX_BATCH
    retry_rounds: int = 4  # extra rounds for transient per-key failures, on top of botocore's retries
    retry_base_s: float = 0.2


class _Deleter:
    """Sends batches to a few worker threads, with a bounded number in flight (memory O(workers*batch))."""

    def __init__(self, settings: Settings, report: Report) -> None:
        self.settings = settings
        self.report = report
        self.pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="cleanup-delete")
        self.slots = threading.BoundedSemaphore(settings.workers * 2)
        self.futures: list[Future[None]] = []

    def submit(self, source: Source, prefix: str, batch: list[Target]) -> None:
        self.slots.acquire()
        future = self.pool.submit(self._run, source, prefix, batch)
        future.add_done_callback(lambda _: self.slots.release())
        # Only keep unfinished futures: the list stays O(in flight), not O(batches).
        self.futures = [f for f in self.futures if not f.done()] + [future]

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        for future in self.futures:
            future.result()  # a bug in _run must not pass silently

    def _run(self, source: Source, prefix: str, batch: list[Target]) -> None:
        pending = batch
        failures: dict[tuple[str, str], Failure] = {}
        for round_ in range(self.settings.retry_rounds + 1):
            try:
                result = source.delete(pending)
            except Exception as error:  # the whole request failed even after botocore's retries
                code = getattr(error, "code", "") or type(error).__name__
                result = [Failure(t.key, code, str(error), t.version_id) for t in pending]
                transient = True
            else:
                transient = False
            failures = {(f.key, f.version_id): f for f in result}
            done = [t for t in pending if (t.key, t.version_id) not in failures]
            self.report.add_deleted(prefix, len(done), sum(t.size for t in done), source.noncurrent)
            retry: list[Target] = []
            for target in pending:
                failure = failures.get((target.key, target.version_id))
                if failure is None or failure.code in GONE_CODES:
                    continue
                if transient or failure.code in TRANSIENT_CODES:
                    retry.append(target)
                else:
                    self.report.add_error(prefix, target.key, failure.code, failure.message, target.version_id)
            if not retry:
                return
            pending = retry
            if round_ < self.settings.retry_rounds:
                # Full jitter, so that workers that failed together do not retry together.
                time.sleep(random.uniform(0, self.settings.retry_base_s * 2**round_))
        for target in pending:
            failure = failures[(target.key, target.version_id)]
            self.report.add_error(prefix, target.key, failure.code, failure.message, target.version_id)


def _listing_failed(report: Report, prefix: str, error: Exception) -> None:
    report.per_prefix[prefix].listing_failed = f"{type(error).__name__}: {' '.join(str(error).split())}"[:300]


def count(
    sources: Sequence[Source],
    prefixes: Sequence[str],
    cutoff: datetime,
    report: Report,
    on_match: Callable[[str, Target, bool], None] | None = None,
) -> None:
    """Pass 1: list every prefix and count what matches. A prefix that fails is recorded and skipped."""
    for prefix in prefixes:
        entry = report.per_prefix[prefix]
        try:
            for source in sources:
                for scanned, selected in source.pages(prefix, cutoff):
                    size = sum(t.size for t in selected)
                    if source.noncurrent:
                        entry.versions_scanned += scanned
                        entry.noncurrent_matched += len(selected)
                        entry.noncurrent_matched_bytes += size
                    else:
                        entry.scanned += scanned
                        entry.matched += len(selected)
                        entry.matched_bytes += size
                    if on_match is not None:
                        for target in selected:
                            on_match(prefix, target, source.noncurrent)
        except Exception as error:  # one bad prefix must not stop the others
            _listing_failed(report, prefix, error)


def delete(
    sources: Sequence[Source], prefixes: Sequence[str], cutoff: datetime, settings: Settings, report: Report
) -> None:
    """Pass 2: list again and delete what (still) matches, in batches, never more than max_deletes."""
    budget = settings.max_deletes
    deleter = _Deleter(settings, report)
    try:
        for prefix in prefixes:
            if report.per_prefix[prefix].listing_failed:
                continue  # its count is unknown, so --max-deletes could not vouch for it
            try:
                for source in sources:
                    batch: list[Target] = []
                    for _, selected in source.pages(prefix, cutoff):
                        for target in selected:
                            if budget == 0:
                                report.notes.append(
                                    f"{prefix}: more objects matched in the delete pass than --max-deletes "
                                    "allowed; stopped at the cap (they were written between the passes)"
                                )
                                raise _BudgetSpent
                            budget -= 1
                            batch.append(target)
                            if len(batch) >= settings.batch_size:
                                deleter.submit(source, prefix, batch)
                                batch = []
                    if batch:
                        deleter.submit(source, prefix, batch)
            except _BudgetSpent:
                if batch:
                    deleter.submit(source, prefix, batch)
                break
            except Exception as error:
                _listing_failed(report, prefix, error)
    finally:
        deleter.close()


class _BudgetSpent(Exception):
    pass


def run(
    sources: Sequence[Source],
    prefixes: Sequence[str],
    cutoff: datetime,
    settings: Settings,
    report: Report,
    on_match: Callable[[str, Target, bool], None] | None = None,
) -> Report:
    started = time.monotonic()
    count(sources, prefixes, cutoff, report, on_match)
    report.count_s = time.monotonic() - started
    if report.would_delete > settings.max_deletes:
        report.aborted = "max-deletes"
        report.notes.append(
            f"{report.would_delete} objects matched, more than --max-deletes={settings.max_deletes}: "
            "nothing was deleted (check --older-than, or raise --max-deletes)"
        )
        return report
    if not settings.dry_run:
        started = time.monotonic()
        delete(sources, prefixes, cutoff, settings, report)
        report.delete_s = time.monotonic() - started
    return report
