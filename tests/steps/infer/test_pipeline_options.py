"""The pipeline's options from the step's params: thread counts sized to the pod's CPUs."""

from __future__ import annotations

from pathlib import Path

import pytest

from steps.common import cpus
from steps.infer.params import InferParams
from steps.infer.pipeline import PipelineOptions, workers


def _params(**fields) -> InferParams:
    return InferParams(model_uri="file:///m.onnx", output_uri="file:///out", shard_uri="file:///s.jsonl", **fields)


@pytest.fixture
def pod_cpus(tmp_path: Path, monkeypatch):
    def limit(count: int) -> None:
        (tmp_path / "cpu.max").write_text(f"{count * 100000} 100000\n")
        monkeypatch.setattr(cpus, "CGROUP", tmp_path)

    return limit


@pytest.mark.parametrize(("count", "expected"), [(1, (8, 4)), (4, (8, 4)), (6, (12, 6)), (16, (32, 16))])
def test_workers_scale_with_the_pod_cpus(pod_cpus, count, expected):
    pod_cpus(count)
    assert workers(_params()) == expected


def test_workers_given_are_kept(pod_cpus):
    pod_cpus(16)
    assert workers(_params(prefetch_workers=3, upload_workers=2)) == (3, 2)


def test_options_from_params_carry_every_setting(pod_cpus):
    pod_cpus(2)
    options = PipelineOptions.from_params(
        _params(batch_size=4, queue_depth=16, max_pixels=1000, output_layout="per-shard", upload_workers=1)
    )
    assert options == PipelineOptions(
        batch_size=4, prefetch_workers=8, upload_workers=1, queue_depth=16, max_pixels=1000, output_layout="per-shard"
    )
