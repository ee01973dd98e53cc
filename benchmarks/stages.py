"""The infer step's per-image work, stage by stage: single-threaded CPU per image and the machine's
work-conserving limit, cores / the sum of those costs.

    uv run python benchmarks/stages.py --json [--model URI] [--images 16] [--size 512]

Each stage runs alone over the same images on this thread, with the step's own functions, and
costs `time.process_time` per image (the best of `--repeats` passes: the neighbours on a shared
machine only ever add). The model runs with one intra-op thread, batched as the step batches.
No schedule can process images faster than the limit on these cores, so throughput is quoted as a
fraction of it: what the pipeline's threading loses, not what the work costs.

`host_outside_model_vs_decode` is the host's CPU outside the model (the in-graph normalisation
left with the model, as on a GPU) over decode; `host_floor_vs_decode` the part of it no code can
skip: read, decode, the components, the mask PNG and the durable writes.

- read: the input's bytes from a file store (a temporary directory);
- decode: header check and pixels (`process.decode_pixels`; JPEGs at their DCT scale);
- resize: to the model's input size (0 where the images already have it);
- normalise: the in-graph normalisation the step uses by default (the wrapped model's CPU less
  the plain model's; on a GPU it runs on the device); `normalise_host_ms` is the host's instead;
- model: the plain model on normalised batches;
- postprocess: the batch's thresholding pass and each item's boxes (or top-k); `components_ms` is
  the connected-component labelling inside it alone;
- encode: each item's mask PNG;
- write: the result JSON built and both objects written to the file store.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

STAGES = ("read", "decode", "resize", "normalise", "model", "postprocess", "encode", "write")


def cores() -> int:
    from steps.common import cpus

    return cpus.available()


class _Clock:
    def __init__(self, count: int, repeats: int) -> None:
        self.count, self.repeats = count, repeats
        self.ms: dict[str, float] = {}

    def __call__(self, name: str, work: Callable[[], list]) -> list:
        best, out = float("inf"), []
        for _ in range(self.repeats):
            start = time.process_time()
            out = work()
            best = min(best, time.process_time() - start)
        self.ms[name] = best / self.count * 1000
        return out


def _batches(items: Sequence[np.ndarray], size: int) -> list[np.ndarray]:
    return [np.stack(items[i : i + size]) for i in range(0, len(items), size)]


def stage_costs(model_uri: str, images: list[bytes], *, batch_size: int = 8, repeats: int = 3) -> dict:
    """{stage: ms per image} for STAGES, plus normalise_host_ms, total_ms and work_conserving_ips."""
    from steps.common.images import read_header
    from steps.common.storage import open_store
    from steps.infer import process
    from steps.infer.model import load_model, warm_up

    plain, wrapped = (load_model(model_uri, threads=1, pixels=p) for p in (False, True))
    spec, n = plain.spec, len(images)
    store = open_store(f"file://{tempfile.mkdtemp(prefix='kiosk-stages-')}")
    for i, data in enumerate(images):
        store.put_bytes(f"in/{i:06d}", data)
    clock = _Clock(n, repeats)
    blobs = clock("read", lambda: [store.get_bytes(f"in/{i:06d}") for i in range(n)])
    headers = [read_header(data) for data in blobs]
    sizes = [process.target_size(spec, h.width, h.height) for h in headers]
    decoded = clock(
        "decode",
        lambda: [process.decode_pixels(d, read_header(d), spec.channels, s) for d, s in zip(blobs, sizes, strict=True)],
    )
    resized = clock(
        "resize",
        lambda: [
            a if (a.shape[1], a.shape[0]) == s else process.resize(a, s) for a, s in zip(decoded, sizes, strict=True)
        ],
    )
    pixels = [a if a.ndim == 3 else a[:, :, None] for a in resized]
    tensors = clock("normalise_host", lambda: [process.to_tensor(p, spec) for p in pixels])
    plain_in, wrapped_in = _batches(tensors, batch_size), _batches(pixels, batch_size)
    warm_up(plain, *tensors[0].shape[-2:])
    warm_up(wrapped, *pixels[0].shape[:2])
    outputs = clock("model", lambda: [plain.run(b) for b in plain_in])
    clock("wrapped", lambda: [wrapped.run(b) for b in wrapped_in])
    _post_stages(clock, spec, outputs, headers, store)
    ms = clock.ms
    ms["normalise"] = max(0.0, ms.pop("wrapped") - ms["model"])
    ms["normalise_host_ms"] = ms.pop("normalise_host")
    total = sum(ms[s] for s in STAGES)
    # What the host must spend per image whatever the code: read, decode, the components, the mask
    # PNG and the durable writes (the model and its in-graph normalisation go to the device).
    floor = sum(ms.get(s, 0.0) for s in ("read", "decode", "components", "encode", "write"))
    return {
        **{s: round(ms.get(s, 0.0), 3) for s in STAGES},
        "components_ms": round(ms.get("components", 0.0), 3),
        "host_floor_ms": round(floor, 3),
        "host_outside_model_vs_decode": round((total - ms["model"] - ms["normalise"]) / ms["decode"], 3),
        "host_floor_vs_decode": round(floor / ms["decode"], 3),
        "normalise_host_ms": round(ms["normalise_host_ms"], 3),
        "total_ms": round(total, 3),
        "outside_model_ms": round(total - ms["model"], 3),
        "cores": cores(),
        "work_conserving_ips": round(cores() / total * 1000, 1),
    }


def _post_stages(clock: _Clock, spec, outputs: list[np.ndarray], headers: list, store) -> None:
    """postprocess, encode and write, as the upload threads do them after the batch pass."""
    from steps.infer import process

    sizes = [(h.width, h.height) for h in headers]
    if spec.postprocess.kind == "classification":
        flat = [o for batch in outputs for o in batch]
        fields = clock("postprocess", lambda: [{"top_k": process.top_k(o, spec)} for o in flat])
        clock.ms["encode"] = 0.0
        masks: list[bytes | None] = [None] * len(flat)
    else:

        def post() -> list:
            maps = [m for batch in outputs for m in process.threshold_batch(batch, spec) or []]
            return [(m, process.boxes(m.prob, spec, w, h, m.mask)) for m, (w, h) in zip(maps, sizes, strict=True)]

        found = clock("postprocess", post)
        # The connected components alone: the part of postprocess any box-finding must pay.
        clock("components", lambda: [process.components(m.mask) for m, _ in found])
        fields = [{"boxes": b, "foreground_fraction": round(m.coverage, 6)} for m, b in found]
        masks = clock(
            "encode", lambda: [process.mask_png(m.mask, w, h) for (m, _), (w, h) in zip(found, sizes, strict=True)]
        )

    def write() -> list:
        for i, (f, mask) in enumerate(zip(fields, masks, strict=True)):
            record = {"key": f"{i:06d}", "input": store.uri_for(f"in/{i:06d}"), "width": sizes[i][0], **f}
            if mask is not None:
                store.put_bytes(f"out/{i:06d}.mask.png", mask)
            store.put_bytes(f"out/{i:06d}.json", json.dumps(record).encode())
        return []

    clock("write", write)


def table(costs: dict) -> str:
    """One line: each stage's ms per image, the sum and the limit."""
    stages = ", ".join(f"{s} {costs[s]:.2f}" for s in STAGES)
    limit = f"{costs['work_conserving_ips']:.0f} images/s on {costs['cores']} cores"
    return f"{stages}; sum {costs['total_ms']:.2f} ms -> {limit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON line (the default output)")
    parser.add_argument("--model", default="", help="model URI (default: benchmarks/free_model.py's free model)")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from benchmarks import free_model
    from benchmarks.infer import make_images

    model = args.model or f"file://{free_model.write(Path(tempfile.mkdtemp()) / 'free_ppocr_det.onnx')}"
    costs = stage_costs(model, make_images(args.images, args.size), batch_size=args.batch_size, repeats=args.repeats)
    print(table(costs), file=sys.stderr)
    print(json.dumps({**costs, "model_uri": model, "load_avg_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
