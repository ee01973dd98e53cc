"""The infer step: a lane worker (steps/infer/lane.py) or one shard through the model, writing
per-item outputs and shard metrics.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime

from steps.common import runlayout
from steps.common.errors import StepError
from steps.common.outputs import write_outputs
from steps.common.storage import open_store, split_uri
from steps.infer import wiring
from steps.infer.metrics import Metrics, summary
from steps.infer.params import InferParams
from steps.infer.shard_files import exit_code, read_shard, write_shard_results


def run(params: InferParams) -> int:
    if problem := params.mode_error():
        raise StepError(f"invalid arguments: {problem}")
    if params.lanes:
        from steps.infer.lane import run_lane

        return run_lane(params)
    return run_shard(params)


def run_shard(params: InferParams) -> int:
    """Single-shard mode (--shard-uri): one shard, then exit."""
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    storage = wiring.storage_options(params)

    shard_parent, shard_file = split_uri(params.shard_uri)
    shard_store = open_store(shard_parent, **storage)
    shard_info = shard_store.head(shard_file)
    if shard_info is None:
        raise StepError(f"shard not found: {params.shard_uri}")
    items = read_shard(shard_store, shard_file, params.shard_uri)

    run_uri = params.run_uri or runlayout.run_uri_of(params.shard_uri) or shard_parent
    run_store = open_store(run_uri, **storage)
    name = runlayout.shard_name(params.shard_uri)

    model = wiring.warm_model(params)

    # A shard that started before may have finished items: those whose result is newer than the
    # shard file were written by this run and are skipped. First attempts skip the lookups.
    attempt_key = f"{runlayout.ATTEMPTS_DIR}/{name}.json"
    previous = run_store.head(attempt_key)
    resume_after = shard_info.last_modified if previous is not None else None
    run_store.put_bytes(attempt_key, json.dumps({"started_at": started.isoformat(), "pid": os.getpid()}).encode())

    stores = wiring.item_stores(params)
    inputs = stores[1]

    for uri in {item.input_uri for item in items}:  # clients are made before the clock starts
        inputs(uri)
    metrics = Metrics(name, model.providers, run=run_uri.rstrip("/").rsplit("/", 1)[-1])
    pipeline = wiring.pipeline(
        params,
        model,
        stores,
        on_result=metrics.record,
        on_batch=metrics.record_batch,
        shard=name,
        resume_after=resume_after,
    )
    run_t0, cpu_t0 = time.perf_counter(), time.process_time()
    results = pipeline.run(items)
    wall, cpu = time.perf_counter() - run_t0, time.process_time() - cpu_t0
    finished = datetime.now(UTC)

    doc = summary(
        results,
        started=started,
        finished=finished,
        wall_s=wall,
        shard=name,
        shard_uri=params.shard_uri,
        output_uri=params.output_uri,
        model_uri=params.model_uri,
        postprocess=model.spec.postprocess.kind,
        device=params.device,
        providers=model.providers,
        batch_size=params.batch_size,
        batches=pipeline.batches,
        startup_seconds=round(run_t0 - t0, 4),
        cpu_seconds=round(cpu, 4),  # all threads: with wall_seconds, how busy the pod's cores were
        output_layout=params.output_layout,
        requests=pipeline.requests,  # storage requests for items: S3 bills each
    )
    metrics.record_requests(pipeline.requests)
    metrics.ips.set(doc["images_per_second"])
    metrics.seconds.set(doc["startup_seconds"] + doc["wall_seconds"])  # H15: cost per 1k images
    write_shard_results(run_store, name, results, doc)
    write_outputs(params.outputs_dir, {"processed": str(doc["processed"]), "failed": str(doc["failed"])})
    if params.pushgateway:
        metrics.push(params.pushgateway)

    ratio = doc["failed"] / len(items) if items else 0.0
    print(
        f"steps.infer: {name}: {doc['processed']} processed ({doc['resumed']} resumed), {doc['failed']} failed, "
        f"{doc['images_per_second']} images/s on {', '.join(model.providers)}",
        file=sys.stderr,
    )
    if ratio > params.max_failure_ratio:
        print(
            f"steps.infer: error: {doc['failed']}/{len(items)} items failed in {params.shard_uri} "
            f"({ratio:.1%} > --max-failure-ratio={params.max_failure_ratio}); first: {doc['failures'][0]['key']}: "
            f"{doc['failures'][0]['reason']}",
            file=sys.stderr,
        )
        return exit_code(results)
    return 0
