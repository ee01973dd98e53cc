"""The infer step's per-image code against the reference outputs of the code before it (see
reference/make.py): same boxes and masks on the same images, through the same model.

Decoding is lossless for PNG, so where no resize happens the outputs must match exactly. Where the
image is resized (OpenCV's area/bilinear against Pillow's bilinear) or JPEG-decoded, pixel values
move by a grey level or so: box edges may move by a pixel or two of the original image and mask
pixels may differ only along component edges.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from steps.infer.model import load_model
from steps.infer.process import postprocess, prepare, threshold_batch
from tests.steps.infer.reference import make

HERE = Path(__file__).resolve().parent / "reference"
REFERENCE = json.loads((HERE / "reference.json").read_text())
CASES = make.cases()
#: Cases decoded and fed to the model at their own size: no resize, lossless decode.
EXACT = {name for name in REFERENCE if "_down" not in name and "_up" not in name and "jpeg" not in name}


@pytest.fixture(scope="module")
def models():
    return {name: load_model(uri) for name, uri in make.models().items()}


def _run(models, name: str, batched: bool):
    model_name, data = CASES[name]
    model = models[model_name]
    prepared = prepare(data, model.spec, pixels=model.pixels)
    output = model.run(prepared.tensor[None])
    item = threshold_batch(output, model.spec)[0] if batched else output[0]  # type: ignore[index]
    return postprocess(item, model.spec, prepared.width, prepared.height)


def _mask(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L")) > 0


def _grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    return cv2.dilate(mask.view(np.uint8), np.ones((3, 3), np.uint8), iterations=pixels).view(bool)


def _edges(mask: np.ndarray) -> np.ndarray:
    """Pixels within one pixel of a component edge."""
    inner = cv2.erode(mask.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    return _grow(mask, 1) & ~inner


def test_reference_cases_cover_every_image():
    assert set(REFERENCE) == set(CASES) and EXACT and set(REFERENCE) - EXACT


@pytest.mark.parametrize("name", sorted(EXACT))
@pytest.mark.parametrize("batched", [False, True])
def test_outputs_match_the_reference_exactly_without_resize(models, name, batched):
    fields, png = _run(models, name, batched)
    want = REFERENCE[name]
    key = lambda b: (-b["score"], b["y0"], b["x0"])  # noqa: E731  # ties were in component order before
    assert sorted(fields["boxes"], key=key) == sorted(want["boxes"], key=key)
    assert fields["foreground_fraction"] == want["foreground_fraction"]
    assert np.array_equal(_mask(png), _mask((HERE / f"{name}.mask.png").read_bytes()))


@pytest.mark.parametrize("name", sorted(set(REFERENCE) - EXACT))
def test_outputs_match_the_reference_within_a_pixel_when_resized(models, name):
    fields, png = _run(models, name, batched=True)
    want = REFERENCE[name]
    scale = max(want["width"], want["height"]) / (256 if want["model"] == "blob" else 960)
    tolerance = 2 * max(1.0, scale)  # one model-input pixel either side of the box, in image pixels
    got = sorted(fields["boxes"], key=lambda b: (b["y0"], b["x0"]))
    expected = sorted(want["boxes"], key=lambda b: (b["y0"], b["x0"]))
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert max(abs(a[k] - b[k]) for k in ("x0", "y0", "x1", "y1")) <= tolerance, (a, b)
        assert abs(a["score"] - b["score"]) < 0.05
    mine, theirs = _mask(png), _mask((HERE / f"{name}.mask.png").read_bytes())
    differ = mine != theirs
    # Differences only where either mask has an edge, grown by the model-input pixel's size.
    near = _grow(_edges(mine) | _edges(theirs), int(np.ceil(scale)))
    assert not (differ & ~near).any()
    assert abs(fields["foreground_fraction"] - want["foreground_fraction"]) < 0.01
