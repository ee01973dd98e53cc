"""The model spec: how to feed a model (input, layout, dtype, colour, normalisation, resize) and how
to read its output (segmentation mask, detection boxes, classification top-k).

Sources, later ones filling only what earlier ones left out:
  1. `--model-spec` (JSON text, or a URI of a JSON file),
  2. a sidecar `<model>.spec.json` next to the model,
  3. the model's metadata property `kiosk.spec` (JSON),
  4. a built-in spec keyed by the model's file name (models whose files we cannot annotate),
  5. the model's input signature: input/output names, layout, dtype and static height/width.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from steps.common.errors import StepError

METADATA_KEY = "kiosk.spec"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resize(_Strict):
    #: fixed: exactly width x height; max_side: shrink so the long side <= max_side (never enlarge);
    #: none: the image must already have the model's size. Both sides then round to `multiple`.
    mode: Literal["fixed", "max_side", "none"] = "max_side"
    width: int = Field(0, ge=0)
    height: int = Field(0, ge=0)
    max_side: int = Field(960, ge=8)
    multiple: int = Field(1, ge=1)


class PostProcess(_Strict):
    kind: Literal["segmentation", "detection", "classification"]
    threshold: float = Field(0.3, description="Probability above which a pixel is foreground.")
    box_threshold: float = Field(0.5, description="Minimum mean probability inside a detected box.")
    unclip_ratio: float = Field(1.6, description="DB-style box expansion (models that predict shrunk regions).")
    min_box_side: int = Field(3, ge=1)
    max_boxes: int = Field(1000, ge=1)
    top_k: int = Field(5, ge=1)
    labels: list[str] = Field(default_factory=list)
    softmax: bool = Field(False, description="Apply softmax to classification logits.")


class ModelSpec(_Strict):
    input_name: str = ""
    output_name: str = ""
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    dtype: Literal["float32", "float16", "uint8"] = "float32"
    color: Literal["RGB", "BGR", "L"] = "RGB"
    scale: float = 1 / 255
    mean: list[float] = Field(default_factory=lambda: [0.0])
    std: list[float] = Field(default_factory=lambda: [1.0])
    resize: Resize = Field(default_factory=Resize)
    postprocess: PostProcess

    @model_validator(mode="after")
    def _channels(self) -> ModelSpec:
        channels = 1 if self.color == "L" else 3
        for name in ("mean", "std"):
            if len(getattr(self, name)) not in (1, channels):
                raise ValueError(f"{name} needs 1 or {channels} values for color {self.color}")
        if any(s == 0 for s in self.std):
            raise ValueError("std must not contain 0")
        return self

    @property
    def channels(self) -> int:
        return 1 if self.color == "L" else 3


#: Built-in specs for models we cannot annotate (files shipped inside other packages), keyed by
#: file name. PP-OCRv4 det (PaddleOCR's DB text detector): NCHW float32, ImageNet mean/std over
#: RGB, sides a multiple of 32 (its FPN downsamples 32x), output a text-probability map;
#: thresholds are PaddleOCR's DB post-processing defaults (det_db_thresh/box_thresh/unclip_ratio).
BUILTIN: dict[str, dict] = {
    "ch_PP-OCRv4_det_infer.onnx": {
        "input_name": "x",
        "layout": "NCHW",
        "dtype": "float32",
        "color": "RGB",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "resize": {"mode": "max_side", "max_side": 960, "multiple": 32},
        "postprocess": {"kind": "segmentation", "threshold": 0.3, "box_threshold": 0.5, "unclip_ratio": 1.6},
    },
}


def parse_json(text: str, source: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise StepError(f"model spec from {source} is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise StepError(f"model spec from {source} must be a JSON object")
    return value


def merge(*layers: dict) -> dict:
    """Earlier layers win; nested objects (resize, postprocess) merge key by key."""
    out: dict = {}
    for layer in reversed(layers):
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = {**out[key], **value}
            else:
                out[key] = value
    return out


def from_signature(inputs: list, outputs: list) -> dict:
    """What the ONNX input signature says: names, layout, dtype and static height/width."""
    if not inputs or not outputs:
        return {}
    first = inputs[0]
    layer: dict = {"input_name": first.name, "output_name": outputs[0].name}
    dtype = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8"}.get(first.type)
    if dtype:
        layer["dtype"] = dtype
    shape = list(first.shape)
    if len(shape) == 4:
        nhwc = shape[3] in (1, 3) and shape[1] not in (1, 3)
        layer["layout"] = "NHWC" if nhwc else "NCHW"
        channels = shape[3] if nhwc else shape[1]
        if channels == 1:
            layer["color"] = "L"
        h, w = (shape[1], shape[2]) if nhwc else (shape[2], shape[3])
        if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
            layer["resize"] = {"mode": "fixed", "width": w, "height": h}
    return layer


def resolve(model_uri: str, layers: list[tuple[str, dict]]) -> ModelSpec:
    """Validate the merged spec; every error names the model URI and where the bad value came from."""
    merged = merge(*(layer for _, layer in layers))
    if "postprocess" not in merged:
        raise StepError(
            f"no model spec for {model_uri}: pass --model-spec, add a sidecar .spec.json or the ONNX "
            f'metadata property {METADATA_KEY!r} (at least {{"postprocess": {{"kind": ...}}}})'
        )
    try:
        return ModelSpec.model_validate(merged)
    except ValidationError as error:
        where = ", ".join(source for source, layer in layers if layer) or "defaults"
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise StepError(f"invalid model spec for {model_uri} (from {where}): {problems}") from None
