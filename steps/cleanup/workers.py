"""Run the cleanup's tasks in worker processes, each with its own store client.

Threads cannot share the listing work: botocore parses pages in Python under the GIL, and that
parsing is most of the cleanup's CPU (steps.cleanup.ranges). Each worker process opens its own
client once and then takes tasks (key ranges) from a ProcessPoolExecutor, which keeps all of
them busy even when the ranges differ in size.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
import resource
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

from steps.cleanup import passes
from steps.cleanup.report import Tally
from steps.cleanup.sources import sources_for
from steps.common.storage import open_store

#: Key ranges per process: enough for the pool to even out ranges of different sizes, few
#: enough that the extra LIST requests at their edges do not matter.
RANGES_PER_PROCESS = 4
AUTO_MAX = 8


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota.

    A Kubernetes CPU limit is a CFS quota, which neither os.cpu_count() nor the affinity shows.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def resolve_processes(requested: int) -> int:
    """`--processes`: 0 means one per available CPU (at most AUTO_MAX)."""
    return requested if requested > 0 else min(AUTO_MAX, available_cpus())


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def settle_heap() -> None:
    """Exempt every object alive now from the cyclic GC, for good; call it once the client is made.

    Most of them are botocore's service model (~70k objects), which lives until the process ends.
    Each listing page makes thousands of short-lived containers, and the collections they trigger
    walked those long-lived objects again each time: about 30% of the listing CPU, measured
    (the gc docs recommend the same before fork(): https://docs.python.org/3/library/gc.html#gc.freeze).
    """
    gc.freeze()


@dataclass(frozen=True)
class StoreSpec:
    """What a worker needs to open the same store as the parent (a client cannot be pickled)."""

    uri: str
    s3_endpoint: str
    max_attempts: int
    max_pool_connections: int
    purge_noncurrent: bool


_worker: dict[str, object] = {}


def _start(spec: StoreSpec) -> None:
    store = open_store(
        spec.uri,
        s3_endpoint=spec.s3_endpoint,
        max_attempts=spec.max_attempts,
        max_pool_connections=spec.max_pool_connections,
    )
    _worker["sources"] = sources_for(store, spec.purge_noncurrent)
    settle_heap()


def _signed(tally: Tally) -> Tally:
    tally.worker = (os.getpid(), peak_rss_mb())
    return tally


def _count(cutoff: datetime, task: passes.Task) -> Tally:
    return _signed(passes.count(_worker["sources"], task, cutoff))  # type: ignore[arg-type]


def _delete(cutoff: datetime, settings: passes.Settings, job: tuple[passes.Task, passes.Budget]) -> Tally:
    task, limit = job
    return _signed(passes.delete(_worker["sources"], task, cutoff, settings, limit))  # type: ignore[arg-type]


def _context() -> multiprocessing.context.BaseContext:
    # fork starts a worker in milliseconds with boto3 already imported, but it is only safe while
    # no other thread exists: a lock held by another thread at fork time stays held in the child
    # forever. A step run by Argo has none here; an embedding process (tests) may.
    if sys.platform == "linux" and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


class ProcessPool:
    """passes.Runner over a ProcessPoolExecutor; tallies come back in task order."""

    def __init__(self, spec: StoreSpec, processes: int) -> None:
        self.processes = processes
        self.pool = ProcessPoolExecutor(
            max_workers=processes, mp_context=_context(), initializer=_start, initargs=(spec,)
        )

    def __enter__(self) -> ProcessPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _map(self, function: Callable[..., Tally], items: Sequence) -> Iterator[Tally]:
        try:
            # map submits everything up front: a few tasks per process, each O(1) to hold.
            yield from self.pool.map(function, items)
        except BrokenProcessPool:
            raise RuntimeError(
                "a cleanup worker process died (killed for memory?); "
                "the run stopped part way, and a rerun is safe and finishes it"
            ) from None

    def count(self, tasks: Sequence[passes.Task], cutoff: datetime) -> Iterator[Tally]:
        return self._map(partial(_count, cutoff), tasks)

    def delete(
        self, jobs: Sequence[tuple[passes.Task, passes.Budget]], cutoff: datetime, settings: passes.Settings
    ) -> Iterator[Tally]:
        return self._map(partial(_delete, cutoff, settings), jobs)
