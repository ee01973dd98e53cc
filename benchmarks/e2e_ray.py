"""Ray Data peer for benchmarks/e2e.py, run in its own environment with Ray pinned:

    uv run --with 'ray[data]==2.60.0' python benchmarks/e2e_ray.py --input DIR --output DIR --model URI

read_binary_files -> map(prepare) -> map_batches(actor holding the model) -> map(post-process +
write), with the same prepare/post-process functions and model as the infer step. Prints one JSON
line: {"ips": images per second from the first read to the last write (ray.init excluded)}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


class _Model:
    def __init__(self, model_uri: str, spec: str) -> None:
        from steps.infer.model import load_model

        self.model = load_model(model_uri, spec)

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        outputs = self.model.run(np.stack(list(batch["tensor"])))
        return {"output": list(outputs), "width": batch["width"], "height": batch["height"], "path": batch["path"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--spec", default="")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()

    import ray

    from steps.infer.model import load_model
    from steps.infer.process import postprocess, prepare

    model = load_model(args.model, args.spec)
    spec, pixels = model.spec, model.pixels
    del model
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)

    def prep(row: dict) -> dict:
        prepared = prepare(row["bytes"], spec, pixels=pixels)
        return {"tensor": prepared.tensor, "width": prepared.width, "height": prepared.height, "path": row["path"]}

    def post(row: dict) -> dict:
        fields, png = postprocess(row["output"], spec, int(row["width"]), int(row["height"]))
        name = Path(str(row["path"])).name
        if png is not None:
            (out / f"{name}.mask.png").write_bytes(png)
        (out / f"{name}.json").write_text(json.dumps(fields))
        return {"path": row["path"]}

    start = time.perf_counter()
    ds = ray.data.read_binary_files(args.input, include_paths=True)
    ds = ds.map(prep)
    ds = ds.map_batches(_Model, batch_size=args.batch_size, concurrency=1, fn_constructor_args=(args.model, args.spec))
    count = ds.map(post).count()
    elapsed = time.perf_counter() - start
    ray.shutdown()
    print(json.dumps({"ips": count / elapsed, "images": count, "seconds": elapsed, "ray": ray.__version__}))


if __name__ == "__main__":
    main()
