"""Post-processing pieces checked against simple reference implementations."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from steps.infer.process import box_sums, components, to_tensor
from steps.infer.spec import ModelSpec


def _flood_fill(mask: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """8-connected components by a plain flood fill: slow, obviously right."""
    height, width = mask.shape
    seen = np.zeros_like(mask)
    found = []
    for y, x in zip(*np.nonzero(mask), strict=True):
        if seen[y, x]:
            continue
        stack, ys, xs = [(y, x)], [], []
        seen[y, x] = True
        while stack:
            a, b = stack.pop()
            ys.append(a)
            xs.append(b)
            for c in range(max(a - 1, 0), min(a + 2, height)):
                for d in range(max(b - 1, 0), min(b + 2, width)):
                    if mask[c, d] and not seen[c, d]:
                        seen[c, d] = True
                        stack.append((c, d))
        found.append((min(ys), min(xs), max(ys) + 1, max(xs) + 1, len(ys)))
    return sorted(found)


@settings(max_examples=150, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 24), st.integers(1, 24))))
def test_components_match_flood_fill(mask):
    assert sorted(components(mask)) == _flood_fill(mask)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9), st.just(3))),
    st.sampled_from(["RGB", "BGR"]),
    st.sampled_from(["NCHW", "NHWC"]),
)
def test_normalisation_matches_the_formula(pixels, color, layout):
    spec = ModelSpec.model_validate(
        {
            "color": color,
            "layout": layout,
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "postprocess": {"kind": "segmentation"},
        }
    )
    source = pixels[:, :, ::-1] if color == "BGR" else pixels
    expected = (source.astype(np.float32) / 255 - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)
    expected = expected.transpose(2, 0, 1) if layout == "NCHW" else expected
    np.testing.assert_allclose(to_tensor(pixels, spec), expected, rtol=1e-5, atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float32, st.tuples(st.integers(2, 20), st.integers(2, 20)), elements=st.floats(0, 1, width=32)),
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=6),
)
def testbox_sums_equal_the_slices_sums_whichever_way_they_are_summed(prob, corners):
    height, width = prob.shape
    edges = []
    for a, b, c, d in corners:
        y0, x0 = int(a * (height - 1)), int(b * (width - 1))
        edges.append((y0, x0, y0 + 1 + int(c * (height - 1 - y0)), x0 + 1 + int(d * (width - 1 - x0))))
    y0, x0, y1, x1 = (np.array(column, dtype=np.int64) for column in zip(*edges, strict=True))
    # Boxes over a quarter of the map are summed from a summed-area table, smaller ones box by box.
    want = [float(prob[a:c, b:d].sum(dtype=np.float64)) for a, b, c, d in edges]
    np.testing.assert_allclose(box_sums(prob, y0, x0, y1, x1), want, rtol=1e-9, atol=1e-9)
