"""The infer step: a lane worker (steps/infer/lane.py) or one shard through the model, writing
per-item outputs and shard metrics.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from steps.common import runlayout
from steps.common.errors import StepError
from steps.common.outputs import write_outputs
from steps.common.storage import ObjectInfo, Store, open_store, split_uri
from steps.infer import wiring
from steps.infer.metrics import Metrics, shard_summary
from steps.infer.params import InferParams
from steps.infer.pipeline import Item
from steps.infer.shard_files import exit_code, read_shard, result_records, write_shard_results


def run(params: InferParams) -> int:
    if problem := params.mode_error():
        raise StepError(f"invalid arguments: {problem}")
    if params.lanes:
        from steps.infer.lane import run_lane

        return run_lane(params)
    return run_shard(params)


@dataclass
class _Shard:
    """The one shard of single-shard mode: where it is read from and written to."""

    name: str
    items: list[Item]
    info: ObjectInfo
    run_uri: str


def _read(params: InferParams) -> _Shard:
    storage = wiring.storage_options(params)
    shard_parent, shard_file = split_uri(params.shard_uri)
    shard_store = open_store(shard_parent, **storage)
    info = shard_store.head(shard_file)
    if info is None:
        raise StepError(f"shard not found: {params.shard_uri}")
    items = read_shard(shard_store, shard_file, params.shard_uri)
    run_uri = params.run_uri or runlayout.run_uri_of(params.shard_uri) or shard_parent
    return _Shard(runlayout.shard_name(params.shard_uri), items, info, run_uri)


def _resume_after(run_store: Store, shard: _Shard, started: datetime) -> datetime | None:
    """A shard that started before may have finished items: those whose result is newer than the
    shard file were written by this run and are skipped. First attempts skip the lookups.
    """
    attempt_key = f"{runlayout.ATTEMPTS_DIR}/{shard.name}.json"
    previous = run_store.head(attempt_key)
    run_store.put_bytes(attempt_key, json.dumps({"started_at": started.isoformat(), "pid": os.getpid()}).encode())
    return shard.info.last_modified if previous is not None else None


def run_shard(params: InferParams) -> int:
    """Single-shard mode (--shard-uri): one shard, then exit."""
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    shard = _read(params)
    run_store = open_store(shard.run_uri, **wiring.storage_options(params))
    model = wiring.warm_model(params)
    resume_after = _resume_after(run_store, shard, started)

    stores = wiring.item_stores(params)
    for uri in {item.input_uri for item in shard.items}:  # clients are made before the clock starts
        stores[1](uri)
    metrics = Metrics(shard.name, model.providers, run=shard.run_uri.rstrip("/").rsplit("/", 1)[-1], env=params.env)
    pipeline = wiring.pipeline(
        params,
        model,
        stores,
        on_result=metrics.record,
        on_batch=metrics.record_batch,
        shard=shard.name,
        resume_after=resume_after,
    )
    run_t0, cpu_t0 = time.perf_counter(), time.process_time()
    results = pipeline.run(shard.items)
    wall, cpu = time.perf_counter() - run_t0, time.process_time() - cpu_t0
    doc = shard_summary(
        results,
        params,
        shard=shard.name,
        shard_uri=params.shard_uri,
        postprocess=model.spec.postprocess.kind,
        providers=model.providers,
        started=started,
        wall_s=wall,
        batches=pipeline.batches,
        startup_seconds=round(run_t0 - t0, 4),
        cpu_seconds=round(cpu, 4),  # all threads: with wall_seconds, how busy the pod's cores were
        output_layout=params.output_layout,
        requests=pipeline.requests,  # storage requests for items: S3 bills each
    )
    metrics.record_requests(pipeline.requests)
    metrics.ips.set(doc["images_per_second"])
    metrics.seconds.set(doc["startup_seconds"] + doc["wall_seconds"])  # H15: cost per 1k images
    write_shard_results(run_store, shard.name, result_records(results), doc)
    write_outputs(params.outputs_dir, {"processed": str(doc["processed"]), "failed": str(doc["failed"])})
    if params.pushgateway:
        metrics.push(params.pushgateway)
    return _verdict(params, shard, doc, results, model.providers)


def _verdict(params: InferParams, shard: _Shard, doc: dict, results: list, providers: list[str]) -> int:
    print(
        f"steps.infer: {shard.name}: {doc['processed']} processed ({doc['resumed']} resumed), {doc['failed']} failed, "
        f"{doc['images_per_second']} images/s on {', '.join(providers)}",
        file=sys.stderr,
    )
    ratio = doc["failed"] / len(shard.items) if shard.items else 0.0
    if ratio > params.max_failure_ratio:
        print(
            f"steps.infer: error: {doc['failed']}/{len(shard.items)} items failed in {params.shard_uri} "
            f"({ratio:.1%} > --max-failure-ratio={params.max_failure_ratio}); first: {doc['failures'][0]['key']}: "
            f"{doc['failures'][0]['reason']}",
            file=sys.stderr,
        )
        return exit_code(results)
    return 0
