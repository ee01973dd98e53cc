"""Image checks shared by ingest and infer: type by magic bytes, header facts, safe decoding."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image

# Pillow refuses >178 MP with a warning-turned-error; we check pixels ourselves with a clear reason.
Image.MAX_IMAGE_PIXELS = None

#: (magic prefix, offset, format). Only formats Pillow decodes without plugins outside the wheel.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"\xff\xd8\xff", 0, "jpeg"),
    (b"GIF87a", 0, "gif"),
    (b"GIF89a", 0, "gif"),
    (b"BM", 0, "bmp"),
    (b"II*\x00", 0, "tiff"),
    (b"MM\x00*", 0, "tiff"),
    (b"WEBP", 8, "webp"),
)
#: How many leading bytes a header check reads: enough for every header above except JPEGs with
#: huge EXIF blocks, which fall back to reading the whole object.
HEADER_BYTES = 64 * 1024


class ImageError(ValueError):
    """An input that cannot be used; str() is the per-item reason."""


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int
    height: int
    mode: str  # Pillow mode: RGB, RGBA, L, I;16, CMYK, ...


def sniff(data: bytes) -> str | None:
    """The image format from magic bytes, or None."""
    for magic, offset, name in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            if name == "webp" and data[:4] != b"RIFF":
                continue
            return name
    return None


def read_header(data: bytes, *, max_pixels: int = 0) -> ImageHeader:
    """Format, size and mode without decoding pixels; ImageError with a reason when unusable."""
    kind = sniff(data)
    if kind is None:
        raise ImageError("not a known image type (magic bytes)" if data else "empty object")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
            header = ImageHeader(kind, image.width, image.height, image.mode)
    except Exception as error:  # Pillow raises many types for bad headers
        raise ImageError(f"unreadable {kind} header: {_short(error)}") from None
    if header.width < 1 or header.height < 1:
        raise ImageError(f"empty {kind} image ({header.width}x{header.height})")
    if max_pixels and header.width * header.height > max_pixels:
        raise ImageError(f"too many pixels: {header.width}x{header.height} > {max_pixels}")
    return header


def decode(data: bytes, *, max_pixels: int = 0) -> Image.Image:
    """Fully decode; truncated or corrupt data is an ImageError, never a partial image."""
    header = read_header(data, max_pixels=max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
            image.load()
    except Exception as error:
        raise ImageError(f"corrupt {header.format}: {_short(error)}") from None
    return image


def _short(error: Exception) -> str:
    return " ".join(str(error).split())[:200] or type(error).__name__
