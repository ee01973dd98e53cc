"""Writes the reference outputs that test_reference.py compares the infer step's per-image code with.

    uv run python -m tests.steps.infer.reference.make

Made once with the Pillow + numpy code at 84314a9 (before the OpenCV stages) and committed:
`reference.json` holds, per case, the boxes and foreground fraction; `<case>.mask.png` the mask as
that code wrote it. Rerunning it on newer code rewrites them with that code's outputs, which is
only right when a change of outputs is intended (say so in the commit).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image

from testkit import onnx_models as zoo

HERE = Path(__file__).resolve().parent
PPOCR = "package://rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"
WORDS = [(30, 40, "kiosk batch"), (60, 130, "inference 42"), (20, 230, "Argo onnx runtime")]


def _jpeg(data: bytes, quality: int = 90) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _convert(data: bytes, mode: str) -> bytes:
    return zoo.png(Image.open(io.BytesIO(data)).convert(mode))


def _noisy_page(size: int = 512) -> bytes:
    """Text and discs on a light page with sensor-like noise, like benchmarks/infer.py's images."""
    import numpy as np
    from PIL import ImageDraw, ImageFont

    rng = np.random.default_rng(0)
    image = Image.fromarray(np.clip(rng.normal(225, 4, (size, size, 3)), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for line, (_, _, text) in enumerate(WORDS):
        draw.text((32, 51 + line * 102), text, fill=(0, 0, 0), font=ImageFont.load_default(size=25))
    for cx, cy, r in ((100, 400, 30), (380, 300, 20), (420, 440, 12)):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(30, 120, 200))
    return zoo.png(image)


def cases() -> dict[str, tuple[str, bytes]]:
    """Case name -> (model: "blob" or "ppocr", image bytes): sizes that need no resize, a downscale,
    an upscale to the model's multiple, a JPEG at 1/2 scale, palette, RGBA and grey inputs.
    """
    blobs = [(40, 50, 18), (150, 90, 30), (90, 170, 12), (210, 40, 8)]
    text = zoo.text_image((480, 320), WORDS)
    return {
        "blob_256": ("blob", zoo.blob_image((256, 256), blobs)),
        "blob_400x300_down": ("blob", zoo.blob_image((400, 300), [(x * 3 // 2, y, r * 2) for x, y, r in blobs])),
        "blob_250x190_up": ("blob", zoo.blob_image((250, 190), blobs)),
        "blob_palette": ("blob", _convert(zoo.blob_image((256, 256), blobs), "P")),
        "blob_rgba": ("blob", _convert(zoo.blob_image((256, 256), blobs), "RGBA")),
        "blob_jpeg_600": ("blob", _jpeg(zoo.blob_image((600, 560), [(x * 2, y * 2, r * 2) for x, y, r in blobs]))),
        "text_480x320": ("ppocr", text),
        "text_noisy_512": ("ppocr", _noisy_page()),
        "text_grey": ("ppocr", _convert(text, "L")),
        "text_1300x900_down": ("ppocr", zoo.text_image((1300, 900), [(x * 2, y * 3, t) for x, y, t in WORDS], 64)),
        "text_jpeg_2000": ("ppocr", _jpeg(zoo.text_image((2000, 1400), [(x * 4, y * 4, t) for x, y, t in WORDS], 96))),
    }


def models() -> dict[str, str]:
    """Model name -> URI (the blob segmenter is written to a temporary directory)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="kiosk-reference-")) / "blob.onnx"
    path.write_bytes(zoo.blob_segmenter())
    return {"blob": f"file://{path}", "ppocr": PPOCR}


def main() -> None:
    from steps.infer.model import load_model
    from steps.infer.process import postprocess, prepare

    loaded = {name: load_model(uri) for name, uri in models().items()}
    reference = {}
    for name, (model_name, data) in cases().items():
        model = loaded[model_name]
        prepared = prepare(data, model.spec, pixels=model.pixels)
        output = model.run(prepared.tensor[None])[0]
        fields, png = postprocess(output, model.spec, prepared.width, prepared.height)
        reference[name] = {"model": model_name, "width": prepared.width, "height": prepared.height, **fields}
        if png is not None:
            (HERE / f"{name}.mask.png").write_bytes(png)
        print(name, prepared.tensor.shape, len(fields.get("boxes", [])), "boxes")
    (HERE / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")


if __name__ == "__main__":
    main()
