"""Pre-processing (decode, resize, normalise) and post-processing (mask PNG, boxes, top-k).

Both run in worker threads beside ONNX Runtime. The heavy calls are OpenCV's, which release the GIL
for the whole call and use SIMD (decode, resize, connected components, PNG encoding), so the workers
scale with the cores; Pillow reads the headers (cheap, and its messages name what is wrong) and
decodes what OpenCV cannot, or cannot be trusted with (truncated JPEGs).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from steps.common.images import ImageError, ImageHeader, read_header
from steps.infer.spec import ModelSpec

#: Pixel formats that convert to RGB/L without inventing data; 16-bit, float and CMYK images are
#: rejected rather than silently squashed into 8 bits or the wrong colours.
_CONVERTIBLE = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX"}
MIN_SIDE = 8

# Each worker thread runs its own image: OpenCV's own thread pool inside each call would only
# oversubscribe the cores the workers already share (and ORT's intra-op threads).
cv2.setNumThreads(1)
# OpenCV logs a warning for every input it cannot decode; those fall back to Pillow, whose error
# names what is wrong, so the warnings would only be noise on the step's stderr.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
#: OpenCV flags per (channels, JPEG reduction): RGB or grey, EXIF orientation ignored as Pillow does
#: (the header's size must be the decoded size).
_READ = {
    (3, 1): cv2.IMREAD_COLOR_RGB,
    (3, 2): cv2.IMREAD_REDUCED_COLOR_2 & ~cv2.IMREAD_COLOR | cv2.IMREAD_COLOR_RGB,
    (3, 4): cv2.IMREAD_REDUCED_COLOR_4 & ~cv2.IMREAD_COLOR | cv2.IMREAD_COLOR_RGB,
    (3, 8): cv2.IMREAD_REDUCED_COLOR_8 & ~cv2.IMREAD_COLOR | cv2.IMREAD_COLOR_RGB,
    (1, 1): cv2.IMREAD_GRAYSCALE,
    (1, 2): cv2.IMREAD_REDUCED_GRAYSCALE_2,
    (1, 4): cv2.IMREAD_REDUCED_GRAYSCALE_4,
    (1, 8): cv2.IMREAD_REDUCED_GRAYSCALE_8,
}
#: Where OpenCV's decoders give Pillow's pixels (PNG, JPEG: the same libpng/zlib and libjpeg-turbo
#: decoding); other formats are rare inputs and keep Pillow's behaviour exactly.
_OPENCV_FORMATS = {"png", "jpeg"}
#: A complete JPEG ends with an EOI marker (trailers after it are rare and short); libjpeg pads a
#: truncated one with grey and only warns, so one without is left to Pillow, which refuses it.
_JPEG_EOI = b"\xff\xd9"
_EOI_WINDOW = 1024


@dataclass
class Prepared:
    #: One item without the batch axis: HWC uint8 pixels (`pixels=True`, for a model that
    #: normalises inside its graph) or the model's own layout and dtype, normalised here.
    tensor: np.ndarray
    width: int  # original image size
    height: int


def target_size(spec: ModelSpec, width: int, height: int) -> tuple[int, int]:
    r = spec.resize
    if r.mode == "fixed":
        return r.width, r.height
    if r.mode == "none":
        if (
            (r.width and r.height and (width, height) != (r.width, r.height))
            or width % r.multiple
            or height % r.multiple
        ):
            want = f"{r.width}x{r.height}" if r.width else f"multiples of {r.multiple}"
            raise ImageError(f"wrong size {width}x{height}: the model needs {want}")
        return width, height
    scale = min(1.0, r.max_side / max(width, height))
    m = r.multiple
    return max(m, round(width * scale / m) * m), max(m, round(height * scale / m) * m)


def jpeg_reduction(width: int, height: int, size: tuple[int, int]) -> int:
    """The JPEG DCT scale (1, 2, 4 or 8) that decodes no smaller than `size`, as Pillow's draft()."""
    fits = min(width // size[0], height // size[1])
    return next(k for k in (8, 4, 2, 1) if fits >= k)


def prepare(data: bytes, spec: ModelSpec, *, max_pixels: int = 0, pixels: bool = False) -> Prepared:
    header = read_header(data, max_pixels=max_pixels)
    if header.mode not in _CONVERTIBLE:
        raise ImageError(
            f"unsupported pixel format {header.mode} ({header.format}); the model takes 8-bit {spec.color}"
        )
    if min(header.width, header.height) < MIN_SIDE:
        raise ImageError(f"image too small: {header.width}x{header.height} (minimum side {MIN_SIDE})")
    size = target_size(spec, header.width, header.height)
    array = decode_pixels(data, header, spec.channels, size)
    if (array.shape[1], array.shape[0]) != size:
        array = resize(array, size)
    if array.ndim == 2:
        array = array[:, :, None]
    if pixels:
        return Prepared(array, header.width, header.height)
    return Prepared(to_tensor(array, spec), header.width, header.height)


def decode_pixels(data: bytes, header: ImageHeader, channels: int, size: tuple[int, int]) -> np.ndarray:
    """HWC (RGB) or HW (grey) uint8 pixels; JPEGs at the DCT scale that still covers `size`."""
    reduction = jpeg_reduction(header.width, header.height, size) if header.format == "jpeg" else 1
    if header.format in _OPENCV_FORMATS and (header.format != "jpeg" or _JPEG_EOI in data[-_EOI_WINDOW:]):
        flags = _READ[channels, reduction] | cv2.IMREAD_IGNORE_ORIENTATION
        array = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        if array is not None and array.shape[:2] == (
            -(-header.height // reduction),
            -(-header.width // reduction),
        ):
            return array
    return _pillow_pixels(data, header, channels, size)


def _pillow_pixels(data: bytes, header: ImageHeader, channels: int, size: tuple[int, int]) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image: Image.Image = Image.open(io.BytesIO(data))
            # JPEG can decode at 1/2..1/8 scale directly: megapixel inputs shrink for almost free.
            image.draft("RGB" if channels == 3 else "L", size)
            image.load()
    except Exception as error:
        raise ImageError(f"corrupt {header.format}: {' '.join(str(error).split())[:200]}") from None
    mode = "L" if channels == 1 else "RGB"
    return np.asarray(image if image.mode == mode else image.convert(mode))


def resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear when enlarging; pixel-area averaging when shrinking (antialiased, as Pillow's
    bilinear is when it reduces; plain bilinear would alias text strokes away).
    """
    shrink = size[0] * size[1] < array.shape[0] * array.shape[1]
    return cv2.resize(array, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _lut(spec: ModelSpec) -> np.ndarray:
    """(channels, 256) table of (v*scale - mean) / std: one gather per pixel instead of 3 float passes."""
    values = np.arange(256, dtype=np.float32)[None, :]
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None]
    std = np.asarray(spec.std, dtype=np.float32)[:, None]
    table = (values * np.float32(spec.scale) - mean) / std
    return np.ascontiguousarray(np.broadcast_to(table, (spec.channels, 256)), dtype=spec.dtype)


def to_tensor(pixels: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """HWC (or HW) uint8 -> the model's layout and dtype, normalised as (x*scale - mean) / std."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if spec.color == "BGR":
        pixels = pixels[:, :, ::-1]
    if spec.dtype == "uint8":
        return np.ascontiguousarray(pixels.transpose(2, 0, 1) if spec.layout == "NCHW" else pixels)
    table = _lut(spec)
    height, width, channels = pixels.shape
    if spec.layout == "NCHW":
        out = np.empty((channels, height, width), dtype=table.dtype)
        for c in range(channels):
            np.take(table[c], pixels[:, :, c], out=out[c])
        return out
    # NHWC interleaves channels, so per-channel gathers would stride: plain arithmetic is faster.
    out = pixels.astype(np.float32)
    out *= np.float32(spec.scale) / np.asarray(spec.std, dtype=np.float32)
    out -= np.asarray(spec.mean, dtype=np.float32) / np.asarray(spec.std, dtype=np.float32)
    return out.astype(spec.dtype, copy=False)


# --- post-processing -----------------------------------------------------------------------------


def probability_map(output: np.ndarray) -> np.ndarray:
    """One item's output as an HxW foreground probability (a batch's as NxHxW: one leading axis more)."""
    if output.ndim == 3:
        # (1,H,W) a probability; (2,H,W) background/foreground scores: take the foreground.
        output = output[0] if output.shape[0] == 1 else output[1]
    if output.ndim != 2:
        raise ValueError(f"cannot read a probability map from an output of shape {output.shape}")
    return output


@dataclass
class Thresholded:
    """One item's probability map and its foreground mask, from the batch's one thresholding pass."""

    prob: np.ndarray
    mask: np.ndarray  # prob > threshold, C-contiguous bool
    coverage: float  # foreground fraction


def threshold_batch(outputs: np.ndarray, spec: ModelSpec) -> list[Thresholded] | None:
    """The batch's maps thresholded and counted in one vectorised pass (None for classification);
    the per-item work left is the components and the mask encoding, in the upload threads.
    """
    if spec.postprocess.kind == "classification" or outputs.ndim not in (3, 4):
        return None
    probs = outputs if outputs.ndim == 3 else outputs[:, 0] if outputs.shape[1] == 1 else outputs[:, 1]
    masks = probs > spec.postprocess.threshold
    counts = np.count_nonzero(masks.reshape(len(masks), -1), axis=1).tolist()
    area = probs.shape[1] * probs.shape[2]
    return [Thresholded(probs[i], masks[i], counts[i] / area) for i in range(len(probs))]


def components(mask: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """8-connected components of a boolean mask as (y0, x0, y1, x1, area), end-exclusive.

    OpenCV's block-based labelling (Grana's 2x2 blocks: 0.46 ms on a 512x512 text page, against
    1.2 ms for its default algorithm with statistics and 0.7 ms for our earlier vectorised runs).
    """
    if not mask.any():
        return []
    mask = np.ascontiguousarray(mask)
    _, _, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(mask.view(np.uint8), 8, cv2.CV_32S, cv2.CCL_GRANA)
    x0, y0, w, h, area = stats[1:].T.tolist()
    return [(b, a, b + d, a + c, e) for a, b, c, d, e in zip(x0, y0, w, h, area, strict=True)]


def boxes(prob: np.ndarray, spec: ModelSpec, width: int, height: int, mask: np.ndarray | None = None) -> list[dict]:
    """Boxes of connected foreground regions, DB-style: scored by mean probability, expanded by
    area*unclip_ratio/perimeter, and scaled to the original image. Sorted by score, then position.
    """
    post = spec.postprocess
    found = np.array(components(prob > post.threshold if mask is None else mask), dtype=np.int64).reshape(-1, 5)
    y0, x0, y1, x1, area = found[
        (np.minimum(found[:, 2] - found[:, 0], found[:, 3] - found[:, 1]) >= post.min_box_side)
    ].T
    if len(y0) == 0:
        return []
    score = box_sums(np.ascontiguousarray(prob, dtype=np.float32), y0, x0, y1, x1) / ((y1 - y0) * (x1 - x0))
    keep = score >= post.box_threshold
    y0, x0, y1, x1, area, score = y0[keep], x0[keep], y1[keep], x1[keep], area[keep], score[keep]
    sides = (y1 - y0) + (x1 - x0)
    grow = area * post.unclip_ratio / (2 * sides) if post.unclip_ratio > 0 else np.zeros(len(y0))
    sx, sy = width / prob.shape[1], height / prob.shape[0]
    edges = (
        np.maximum(0, np.floor((x0 - grow) * sx)),
        np.maximum(0, np.floor((y0 - grow) * sy)),
        np.minimum(width, np.ceil((x1 + grow) * sx)),
        np.minimum(height, np.ceil((y1 + grow) * sy)),
    )
    rounded = np.round(score, 4)
    order = np.lexsort((edges[0], edges[1], -rounded))[: post.max_boxes]
    columns = [e[order].astype(np.int64).tolist() for e in edges]
    return [
        {"x0": a, "y0": b, "x1": c, "y1": d, "score": e}
        for a, b, c, d, e in zip(*columns, rounded[order].tolist(), strict=True)
    ]


def box_sums(prob: np.ndarray, y0: np.ndarray, x0: np.ndarray, y1: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """Each box's sum of probabilities, in float64. Text boxes cover a few percent of a page, so
    summing each box's pixels (0.06 ms on a 512x512 page) beats a summed-area table of the whole
    map (0.9 ms); boxes covering more than a quarter of it take the table.
    """
    if int(((y1 - y0) * (x1 - x0)).sum()) * 4 > prob.size:
        table = cv2.integral(prob, sdepth=cv2.CV_64F)
        return table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
    edges = zip(y0.tolist(), x0.tolist(), y1.tolist(), x1.tolist(), strict=True)
    return np.array([cv2.sumElems(prob[a:c, b:d])[0] for a, b, c, d in edges], dtype=np.float64)


def mask_png(mask: np.ndarray, width: int, height: int) -> bytes:
    """The foreground mask at the original image size as a 1-bit PNG (readers get 0/255 with
    Pillow's convert("L")): a quarter of the encode time of an 8-bit mask and a third of the bytes.
    Nearest-neighbour enlarging as Pillow's (OpenCV's INTER_NEAREST samples half a pixel off).
    """
    pixels: np.ndarray = mask.view(np.uint8)
    if pixels.shape != (height, width):
        pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
    ok, png = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_BILEVEL, 1])
    if not ok:
        raise ValueError(f"PNG encoding of a {width}x{height} mask failed")
    return png.tobytes()


def top_k(output: np.ndarray, spec: ModelSpec) -> list[dict]:
    scores = output.reshape(-1).astype(np.float64)
    if spec.postprocess.softmax:
        scores = np.exp(scores - scores.max())
        scores /= scores.sum()
    labels = spec.postprocess.labels
    order = np.argsort(-scores, kind="stable")[: spec.postprocess.top_k]
    return [
        {"index": int(i), "label": labels[i] if i < len(labels) else str(int(i)), "score": round(float(scores[i]), 6)}
        for i in order
    ]


def postprocess(
    output: np.ndarray | Thresholded, spec: ModelSpec, width: int, height: int
) -> tuple[dict, bytes | None]:
    """(result fields, mask PNG or None) for one item's output, or its map from `threshold_batch`."""
    kind = spec.postprocess.kind
    if kind == "classification":
        return {"top_k": top_k(output, spec)}, None  # type: ignore[arg-type]  # threshold_batch gives None
    if not isinstance(output, Thresholded):
        output = threshold_batch(probability_map(output)[None], spec)[0]  # type: ignore[index]
    result: dict = {"boxes": boxes(output.prob, spec, width, height, output.mask)}
    if kind == "detection":
        return result, None
    result["foreground_fraction"] = round(output.coverage, 6)
    return result, mask_png(output.mask, width, height)
