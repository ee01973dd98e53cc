"""The two-pass, streaming cleanup: count everything that matches, then delete it in batches.

Why two passes: `--max-deletes` must abort *before anything is deleted*, and a single streaming
pass cannot know the total until it has already deleted most of it. Remembering the matches
instead would make memory O(bucket). So pass 1 lists and counts (O(page) memory), and pass 2
lists again and deletes as it goes. The price is listing twice and a window between the passes;
pass 2 applies the same cutoff again, so an object rewritten in between is younger than the
cutoff and stays. In pass 2 no task deletes more than pass 1 counted in it, so `--max-deletes`
stays a hard cap.

The work comes as tasks: a prefix, or a key range of one (steps.cleanup.ranges). Each task
returns a Tally that the caller merges into the Report, so the same functions run in this
process or in worker processes (steps.cleanup.workers).
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

from steps.cleanup.ranges import WHOLE, KeyRange
from steps.cleanup.report import Report, Tally
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

    def pages(self, prefix: str, cutoff: datetime, span: KeyRange = WHOLE) -> Iterator[tuple[int, list[Target]]]:
        """(how many entries of `span` the page listed, the expired ones among them), page by page."""
        ...

    def delete(self, targets: Sequence[Target]) -> list[Failure]:
        """Delete up to MAX_BATCH targets in one request; return the per-key failures."""
        ...


class ObjectInfoLike(Protocol):
    # read-only, as ObjectInfo (a frozen dataclass) has them
    @property
    def key(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def last_modified(self) -> datetime: ...


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


@dataclass(frozen=True, slots=True)
class Task:
    """One unit of listing work: a prefix, or a key range of it.

    `noncurrent`: which sources it covers; None: all of them.
    """

    prefix: str
    span: KeyRange = WHOLE
    noncurrent: bool | None = None

    def covers(self, source: Source) -> bool:
        return self.noncurrent is None or self.noncurrent == source.noncurrent


@dataclass(frozen=True, slots=True)
class Budget:
    """How many objects pass 2 may delete in a task: what pass 1 counted there."""

    current: int
    noncurrent: int

    def of(self, source: Source) -> int:
        return self.noncurrent if source.noncurrent else self.current


class _Deleter:
    """Sends batches to a few worker threads, with a bounded number in flight (memory O(workers*batch))."""

    def __init__(self, settings: Settings, tally: Tally) -> None:
        self.settings = settings
        self.tally = tally
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="cleanup-delete")
        self.slots = threading.BoundedSemaphore(settings.workers * 2)
        self.futures: list[Future[None]] = []

    def submit(self, source: Source, batch: list[Target]) -> None:
        self.slots.acquire()
        future = self.pool.submit(self._run, source, batch)
        future.add_done_callback(lambda _: self.slots.release())
        # Only keep unfinished futures: the list stays O(in flight), not O(batches).
        self.futures = [f for f in self.futures if not f.done()] + [future]

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        for future in self.futures:
            future.result()  # a bug in _run must not pass silently

    def _error(self, target: Target, failure: Failure) -> None:
        with self.lock:
            self.tally.add_error(target.key, failure.code, failure.message, target.version_id)

    def _run(self, source: Source, batch: list[Target]) -> None:
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
            with self.lock:
                self.tally.add_deleted(len(done), sum(t.size for t in done), source.noncurrent)
            retry: list[Target] = []
            for target in pending:
                failure = failures.get((target.key, target.version_id))
                if failure is None or failure.code in GONE_CODES:
                    continue
                if transient or failure.code in TRANSIENT_CODES:
                    retry.append(target)
                else:
                    self._error(target, failure)
            if not retry:
                return
            pending = retry
            if round_ < self.settings.retry_rounds:
                # Full jitter, so that workers that failed together do not retry together.
                time.sleep(random.uniform(0, self.settings.retry_base_s * 2**round_))
        for target in pending:
            self._error(target, failures[(target.key, target.version_id)])


def _listing_failed(tally: Tally, task: Task, error: Exception) -> None:
    where = "" if task.span == WHOLE else f" (keys {task.span})"
    tally.counts.listing_failed = f"{type(error).__name__}: {' '.join(str(error).split())}{where}"[:300]


def count(
    sources: Sequence[Source],
    task: Task,
    cutoff: datetime,
    on_match: Callable[[str, Target, bool], None] | None = None,
) -> Tally:
    """Pass 1 for one task: list and count what matches. A listing failure is recorded, not raised."""
    tally = Tally(task.prefix)
    entry = tally.counts
    try:
        for source in filter(task.covers, sources):
            for scanned, selected in source.pages(task.prefix, cutoff, task.span):
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
                        on_match(task.prefix, target, source.noncurrent)
    except Exception as error:  # one bad prefix must not stop the others
        _listing_failed(tally, task, error)
    return tally


def delete(sources: Sequence[Source], task: Task, cutoff: datetime, settings: Settings, limit: Budget) -> Tally:
    """Pass 2 for one task: list again and delete what (still) matches, in batches, within `limit`."""
    tally = Tally(task.prefix)
    deleter = _Deleter(settings, tally)
    try:
        for source in filter(task.covers, sources):
            left = limit.of(source)
            batch: list[Target] = []
            try:
                for _, selected in source.pages(task.prefix, cutoff, task.span):
                    for target in selected:
                        if left == 0:
                            tally.notes.append(
                                f"{task.prefix}: more objects matched in the delete pass than the count pass "
                                "found; stopped at that count (they were written between the passes)"
                            )
                            raise _BudgetSpent
                        left -= 1
                        batch.append(target)
                        if len(batch) >= settings.batch_size:
                            deleter.submit(source, batch)
                            batch = []
            except _BudgetSpent:
                pass
            except Exception as error:
                _listing_failed(tally, task, error)
                break
            finally:
                if batch:
                    deleter.submit(source, batch)
    finally:
        deleter.close()
    return tally


class _BudgetSpent(Exception):
    pass


class Runner(Protocol):
    """Runs the tasks of a pass, here or in worker processes; tallies come back in task order."""

    def count(self, tasks: Sequence[Task], cutoff: datetime) -> Iterable[Tally]: ...

    def delete(self, jobs: Sequence[tuple[Task, Budget]], cutoff: datetime, settings: Settings) -> Iterable[Tally]: ...


@dataclass
class InProcess:
    """The tasks one after another in this process; the only runner that can call `on_match`."""

    sources: Sequence[Source]
    on_match: Callable[[str, Target, bool], None] | None = None

    def count(self, tasks: Sequence[Task], cutoff: datetime) -> Iterator[Tally]:
        return (count(self.sources, task, cutoff, self.on_match) for task in tasks)

    def delete(self, jobs: Sequence[tuple[Task, Budget]], cutoff: datetime, settings: Settings) -> Iterator[Tally]:
        return (delete(self.sources, task, cutoff, settings, limit) for task, limit in jobs)


def run(tasks: Sequence[Task], runner: Runner, cutoff: datetime, settings: Settings, report: Report) -> Report:
    started = time.monotonic()
    counted = []
    for task, tally in zip(tasks, runner.count(tasks, cutoff), strict=True):
        report.merge(tally)
        counted.append((task, Budget(tally.counts.matched, tally.counts.noncurrent_matched)))
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
        # A prefix whose count is incomplete is left alone: --max-deletes could not vouch for it.
        jobs = [(task, limit) for task, limit in counted if not report.per_prefix[task.prefix].listing_failed]
        jobs = [(task, limit) for task, limit in jobs if limit.current or limit.noncurrent]
        for tally in runner.delete(jobs, cutoff, settings):
            report.merge(tally)
        report.delete_s = time.monotonic() - started
    return report
