"""The synth step: N deterministic images with known text and blobs, plus their ground truth.

Images go to --output-uri; the truth goes elsewhere (ingest rejects non-images in the image prefix).
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from steps.common.errors import StepError
from steps.common.outputs import write_outputs
from steps.common.storage import open_store
from steps.synth.draw import draw_image
from steps.synth.params import SynthParams

# Images drawn per batch: bounds memory (a batch of 512x512 PNGs is ~16 MB) for any --count.
_BATCH = 64


def image_name(seed: int, index: int, image_format: str) -> str:
    return f"synth-{seed}-{index:06d}.{'png' if image_format == 'png' else 'jpg'}"


def default_truth_uri(output_uri: str) -> str:
    """`<parent of output-uri>/truth`, or an error when output-uri is a bucket or filesystem root."""
    stripped = output_uri.rstrip("/")
    scheme, sep, path = stripped.partition("://")
    parent, slash, _ = path.rpartition("/")
    if not sep or not slash or parent in {"", "/"} or (scheme == "s3" and "/" not in path):
        raise StepError(f"--output-uri {output_uri!r} has no parent prefix for the truth: pass --truth-uri")
    return f"{scheme}://{parent}/truth"


def _check_truth_outside(output_uri: str, truth_uri: str) -> None:
    out, truth = output_uri.rstrip("/") + "/", truth_uri.rstrip("/") + "/"
    if truth.startswith(out) or out.startswith(truth):
        raise StepError(f"--truth-uri {truth_uri!r} must not overlap --output-uri {output_uri!r}")


def _drawn(params: SynthParams, workers: int) -> Iterator[tuple[int, bytes, dict]]:
    args = (params.seed, params.width, params.height, params.image_format)
    if workers == 1:
        for index in range(params.count):
            yield index, *draw_image(args[0], index, *args[1:])
        return
    # forkserver: the parent holds storage client threads, which fork() would copy half-locked.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["steps.synth.draw"])
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for start in range(0, params.count, _BATCH):
            indexes = range(start, min(start + _BATCH, params.count))
            results = pool.map(draw_image, *zip(*[(args[0], i, *args[1:]) for i in indexes], strict=True), chunksize=4)
            for index, (data, truth) in zip(indexes, results, strict=True):
                yield index, data, truth


def run(params: SynthParams) -> int:
    truth_uri = params.truth_uri or default_truth_uri(params.output_uri)
    _check_truth_outside(params.output_uri, truth_uri)
    store_args: dict[str, Any] = {"s3_endpoint": params.s3_endpoint, "max_attempts": params.s3_max_attempts}
    images = open_store(params.output_uri, **store_args)
    truths = open_store(truth_uri, **store_args)
    workers = params.workers or os.cpu_count() or 1
    workers = max(1, min(workers, (params.count + 3) // 4))
    content_type = "image/png" if params.image_format == "png" else "image/jpeg"

    def put(index: int, data: bytes, truth: dict) -> None:
        name = image_name(params.seed, index, params.image_format)
        images.put_bytes(name, data, content_type=content_type)
        truth = {"image": images.uri_for(name), **truth}
        truths.put_bytes(name.rsplit(".", 1)[0] + ".json", json.dumps(truth).encode(), content_type="application/json")

    with ThreadPoolExecutor(max_workers=8) as uploads:
        pending: list[Future] = []
        for item in _drawn(params, workers):
            pending.append(uploads.submit(put, *item))
            if len(pending) >= _BATCH:  # a slow store must not make drawn bytes pile up
                pending.pop(0).result()
        for future in pending:
            future.result()
    manifest = {
        "images_uri": params.output_uri,
        "count": params.count,
        "width": params.width,
        "height": params.height,
        "image_format": params.image_format,
        "seed": params.seed,
    }
    truths.put_bytes("manifest.json", json.dumps(manifest, indent=2).encode(), content_type="application/json")
    write_outputs(params.outputs_dir, {"count": str(params.count), "uri": params.output_uri})
    print(f"synth: wrote {params.count} images to {params.output_uri} and their truth to {truth_uri}")
    return 0
