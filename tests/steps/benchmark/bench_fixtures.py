"""Helpers for the benchmark tests: synth images and a real measured sweep (the `sweep` fixture is in
this directory's conftest.py; Prometheus is tests/fixtures/prometheus.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from steps.common.storage import open_store
from steps.synth.main import run as synth
from steps.synth.params import SynthParams
from tests.steps.benchmark.bench_workload import RunStores, SweepPoint, run_sweep_point, session

# Small on purpose: the CI machine is 2 shared cores. Three configurations give the plots lines.
SWEEP = [(2, 6, 1), (4, 6, 1), (4, 6, 2)]
IMAGES, SIZE = 12, 128


@dataclass(frozen=True)
class Sweep:
    root: Path
    runs_uri: str
    summaries: dict[str, dict]  # config name -> the summary the run wrote


def make_images(root: Path, count: int = IMAGES, size: int = SIZE, seed: int = 7) -> tuple[str, list[str]]:
    uri = f"file://{root}/images"
    synth(
        SynthParams(
            output_uri=uri,
            count=count,
            width=size,
            height=size,
            seed=seed,
            workers=1,
            outputs_dir=str(root / "synth-outputs"),
        )
    )
    return uri, sorted(info.key for info in open_store(uri).list())


def make_sweep(root: Path, points=SWEEP, pusher=None, count: int = IMAGES, size: int = SIZE) -> Sweep:
    images_uri, keys = make_images(root, count, size)
    images, model = open_store(images_uri), session()
    summaries = {}
    for batch, shard, parallelism in points:
        name = f"bs{batch}-ss{shard}-p{parallelism}"
        stores = RunStores(
            images=images,
            run=open_store(f"file://{root}/runs/{name}"),
            outputs=open_store(f"file://{root}/outputs/{name}"),
        )
        summaries[name] = run_sweep_point(stores, keys, model, SweepPoint(batch, shard, parallelism), pusher=pusher)
    return Sweep(root, f"file://{root}/runs", summaries)
