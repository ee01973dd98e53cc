"""What both infer modes (a lane worker, one shard) build from their params the same way: the
storage options, the warmed-up model, the item stores and the per-image pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from steps.common.storage import Store, open_store
from steps.infer.model import LoadedModel, load_model, warm_up
from steps.infer.params import InferParams
from steps.infer.pipeline import ItemResult, Pipeline, PipelineOptions, workers
from steps.infer.shard_files import warm_size


def storage_options(params: InferParams) -> dict[str, Any]:
    return {"s3_endpoint": params.s3_endpoint, "max_attempts": params.s3_max_attempts}


def pool_size(params: InferParams) -> int:
    return sum(workers(params))


def warm_model(params: InferParams) -> LoadedModel:
    """The model, loaded once and run once at its input size, so the first batch pays no set-up."""
    model = load_model(
        params.model_uri,
        params.model_spec,
        device=params.device,
        allow_cpu_fallback=params.allow_cpu_fallback,
        trt_cache_dir=params.trt_cache_dir,
        threads=params.ort_threads,
        pixels=params.normalise_in_graph,
        trt_cache_uri=params.trt_cache_uri,
        store_options=storage_options(params),
    )
    warm_up(model, *warm_size(model))
    return model


def item_stores(params: InferParams) -> tuple[Store, Callable[[str], Store]]:
    """The output store, and one input store per input prefix (made once, reused across shards)."""
    bulk: dict[str, Any] = {"max_pool_connections": pool_size(params) + 2, "bulk_client": params.s3_bulk_client}
    outputs = open_store(params.output_uri, **bulk, **storage_options(params))

    @lru_cache(maxsize=16)
    def inputs(uri: str) -> Store:
        return open_store(uri, **bulk, **storage_options(params))

    return outputs, inputs


def pipeline(
    params: InferParams,
    model: LoadedModel,
    stores: tuple[Store, Callable[[str], Store]],
    *,
    on_result: Callable[[ItemResult], None],
    on_batch: Callable[[int, float], None],
    shard: str,
    resume_after: datetime | None = None,
) -> Pipeline:
    return Pipeline(
        model,
        stores,
        PipelineOptions.from_params(params),
        shard=shard,
        resume_after=resume_after,
        on_result=on_result,
        on_batch=on_batch,
    )
