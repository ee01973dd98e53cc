"""The naive baseline the infer and e2e benchmarks measure kiosk against: a classic queue consumer."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steps.infer.model import LoadedModel


def naive_loop(
    model: LoadedModel, keys: list[str], read: Callable[[str], bytes], write: Callable[[str, bytes], None]
) -> float:
    """The classic queue consumer, timed (images/s): one image at a time, download -> decode -> infer
    (batch 1) -> post-process -> upload of `<key>.mask.png` (where there is a mask) and `<key>.json`.
    """
    from steps.infer.process import postprocess, prepare

    start = time.perf_counter()
    for key in keys:
        prepared = prepare(read(key), model.spec, pixels=model.pixels)
        output = model.run(prepared.tensor[None])[0]
        fields, png = postprocess(output, model.spec, prepared.width, prepared.height)
        if png is not None:
            write(f"{key}.mask.png", png)
        write(f"{key}.json", json.dumps(fields).encode())
    return len(keys) / (time.perf_counter() - start)
