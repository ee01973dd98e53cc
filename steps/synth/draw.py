"""Draw one synthetic image with known content: dark text lines and solid blobs on a light,
lightly noisy background, plus its ground truth (boxes). Pure function of (seed, index, size).

Each image gets its own generator seeded with (seed, index), so the bytes do not depend on how
many workers draw them or in which order.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Letters and digits only: the detector is trained on printed text, and the truth must be
# unambiguous for people reading it back.
_ALPHABET = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"))


def _find_font() -> str:
    # Shipped with matplotlib, so nothing is downloaded and every machine draws the same glyphs.
    from matplotlib import font_manager

    return font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"), fallback_to_default=True)


# Resolved at import (matplotlib's font manager takes ~1 s to load): the synth step preloads this
# module in its forkserver, so worker processes inherit the answer instead of each paying for it.
_FONT_PATH = _find_font()


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(_FONT_PATH, size)


def _words(rng: np.random.Generator, count: int) -> list[str]:
    return ["".join(rng.choice(_ALPHABET, size=int(rng.integers(3, 8)))) for _ in range(count)]


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    base = (rng.integers(205, 237) + rng.integers(-6, 7, size=3)).astype(np.uint8)
    # Raw random bytes mod 13 are ~5x faster than rng.integers and uniform enough for light noise
    # (0..12 added to a base of at most 245, so no clipping); one grey plane shared by the channels.
    noise = (np.frombuffer(rng.bytes(width * height), dtype=np.uint8) % 13).reshape(height, width, 1)
    return base[None, None, :] + noise


def _text_lines(draw: ImageDraw.ImageDraw, rng: np.random.Generator, width: int, band: float, lines: int) -> list:
    truth = []
    margin = max(2, width // 32)
    for row in range(lines):
        size = int(np.clip(rng.integers(int(band * 0.45), int(band * 0.8) + 1), 8, 400))
        font = _font(size)
        words = _words(rng, int(rng.integers(1, 5)))
        # Drop words until the line fits: a clipped word would make the truth box wrong.
        while True:
            text = " ".join(words)
            x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
            if x1 - x0 <= width - 2 * margin or len(words) == 1:
                break
            words.pop()
        text_w, text_h = x1 - x0, y1 - y0
        left = int(rng.integers(margin, max(margin + 1, width - margin - text_w)))  # type: ignore[call-overload]  # numpy takes float bounds
        top = int(row * band + rng.integers(0, max(1, int(band - text_h))))
        color = tuple(int(c) for c in rng.integers(0, 61, size=3))
        # textbbox is offset from the anchor by the font's bearing: shift so the ink starts at (left, top).
        draw.text((left - x0, top - y0), text, font=font, fill=color)
        box = draw.textbbox((left - x0, top - y0), text, font=font)
        truth.append({"text": text, "box": [int(v) for v in box], "font_size": size})
    return truth


def _blobs(draw: ImageDraw.ImageDraw, rng: np.random.Generator, width: int, top: float, band: float) -> list:
    truth = []
    count = int(rng.integers(1, 4))
    slot = width / count
    for i in range(count):
        w = int(rng.integers(max(4, slot * 0.25), max(5, slot * 0.7)))  # type: ignore[call-overload]  # numpy takes float bounds
        h = int(rng.integers(max(4, band * 0.3), max(5, band * 0.8)))  # type: ignore[call-overload]  # numpy takes float bounds
        x0 = int(i * slot + rng.integers(0, max(1, int(slot - w))))
        y0 = int(top + rng.integers(0, max(1, int(band - h))))
        shape = "ellipse" if rng.integers(0, 2) else "rectangle"
        color = tuple(int(c) for c in rng.integers(20, 101, size=3))
        box = [x0, y0, x0 + w - 1, y0 + h - 1]
        (draw.ellipse if shape == "ellipse" else draw.rectangle)(box, fill=color)
        truth.append({"shape": shape, "box": box})
    return truth


def draw_image(seed: int, index: int, width: int, height: int, image_format: str) -> tuple[bytes, dict[str, Any]]:
    """Encoded image bytes and its ground truth for image `index` of the set drawn with `seed`."""
    rng = np.random.default_rng([seed, index])
    image = Image.fromarray(_background(rng, width, height), "RGB")
    draw = ImageDraw.Draw(image)
    lines = int(rng.integers(2, 5))
    band = height / (lines + 1)  # one band per text line, the last band for the blobs
    text = _text_lines(draw, rng, width, band, lines)
    blobs = _blobs(draw, rng, width, lines * band, band)
    out = io.BytesIO()
    if image_format == "png":
        # Level 1: noise barely compresses anyway, and level 6 costs ~3x the time for ~5% bytes.
        image.save(out, format="PNG", compress_level=1)
    else:
        image.save(out, format="JPEG", quality=90)
    truth = {"width": width, "height": height, "seed": seed, "index": index, "text": text, "blobs": blobs}
    return out.getvalue(), truth
