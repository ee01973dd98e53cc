"""synth: deterministic bytes, truth outside the image prefix, and content the default model sees."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from steps.common.errors import StepError
from steps.common.storage import open_store
from steps.synth.main import default_truth_uri, run
from steps.synth.params import SynthParams
from tests.steps.benchmark.bench_workload import decode, session


def _synth(tmp_path, name: str, **fields) -> dict[str, bytes]:
    uri = f"file://{tmp_path}/{name}/images"
    run(SynthParams(output_uri=uri, outputs_dir=str(tmp_path / name / "out"), **fields))
    store = open_store(f"file://{tmp_path}/{name}")
    return {info.key: store.get_bytes(info.key) for info in store.list()}


@pytest.mark.parametrize("image_format", ["png", "jpeg"])
def test_same_seed_same_bytes_whatever_the_workers(tmp_path, image_format):
    common = {"count": 6, "width": 96, "height": 80, "image_format": image_format}
    one = _synth(tmp_path, "one", seed=3, workers=1, **common)
    two = _synth(tmp_path, "two", seed=3, workers=2, **common)
    other = _synth(tmp_path, "other", seed=4, workers=1, **common)
    images = sorted(k for k in one if k.startswith("images/"))
    assert len(images) == 6 and len([k for k in one if k.startswith("truth/")]) == 6 + 1  # + manifest
    assert one.keys() == two.keys()
    assert [one[k] for k in images] == [two[k] for k in images]
    assert {k: json.loads(v)["text"] for k, v in one.items() if k.startswith("truth/synth")} == {
        k: json.loads(v)["text"] for k, v in two.items() if k.startswith("truth/synth")
    }
    assert all(one[k] != other[k.replace("-3-", "-4-")] for k in images)


def test_outputs_and_truth_layout(tmp_path):
    files = _synth(tmp_path, "run", count=3, width=64, height=64, seed=1, workers=1)
    assert (tmp_path / "run" / "out" / "count").read_text() == "3"
    assert (tmp_path / "run" / "out" / "uri").read_text() == f"file://{tmp_path}/run/images"
    # Only images in the image prefix: ingest rejects anything else found there.
    assert sorted(k for k in files if k.startswith("images/")) == [f"images/synth-1-{i:06d}.png" for i in range(3)]
    truth = json.loads(files["truth/synth-1-000002.json"])
    assert truth["image"] == f"file://{tmp_path}/run/images/synth-1-000002.png"
    for item in truth["text"] + truth["blobs"]:
        x0, y0, x1, y1 = item["box"]
        assert 0 <= x0 < x1 < 64 and 0 <= y0 < y1 < 64


def test_truth_uri_rules():
    assert default_truth_uri("s3://bucket/bench/images/") == "s3://bucket/bench/truth"
    assert default_truth_uri("file:///data/images") == "file:///data/truth"
    for root in ("s3://bucket", "file:///images"):
        with pytest.raises(StepError, match="--truth-uri"):
            default_truth_uri(root)


def test_overlapping_truth_is_a_one_line_error(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "steps.synth",
            f"--output-uri=file://{tmp_path}/images",
            f"--truth-uri=file://{tmp_path}/images/truth",
            f"--outputs-dir={tmp_path}/out",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "must not overlap" in result.stderr
    assert not (tmp_path / "images").exists()


def test_default_model_finds_the_text_and_not_the_background(tmp_path):
    """PP-OCRv4 detection (the default model) on a synth image: text boxes light up, background does not."""
    files = _synth(tmp_path, "model", count=2, width=256, height=256, seed=11, workers=1)
    model = session()
    for index in range(2):
        image = files[f"images/synth-11-{index:06d}.png"]
        truth = json.loads(files[f"truth/synth-11-{index:06d}.json"])
        probability = model.run(None, {"x": decode(image)[None]})[0][0, 0]
        near = np.zeros(probability.shape, bool)  # text and blobs with a margin: DB maps spill over edges
        for item in truth["text"] + truth["blobs"]:
            x0, y0, x1, y1 = item["box"]
            near[max(0, y0 - 8) : y1 + 8, max(0, x0 - 8) : x1 + 8] = True
        for line in truth["text"]:
            x0, y0, x1, y1 = line["box"]
            region = probability[y0:y1, x0:x1]
            # DB-style maps mark a shrunk core of each word, so a line is "found" well below full cover.
            assert region.max() > 0.9 and (region > 0.3).mean() > 0.15, (index, line)
        assert (probability[~near] > 0.3).mean() < 0.005, index
