"""Compare this sweep with a previous runs.parquet (--baseline) and decide about --fail-on-regression."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pandas as pd

from steps.benchmark.runs import best
from steps.common.errors import StepError
from steps.common.storage import open_store, split_uri

_NEEDED = {"config", "images_per_second", "failed", "processed", "cost_per_1k_images"}


@dataclass
class Regression:
    baseline_uri: str
    baseline_best: str
    baseline_images_per_second: float
    current_best: str
    current_images_per_second: float
    change_pct: float  # negative: slower than the baseline
    per_config: pd.DataFrame

    @property
    def drop_pct(self) -> float:
        return max(0.0, -self.change_pct)

    def as_dict(self) -> dict[str, Any]:
        return {
            "baseline_uri": self.baseline_uri,
            "baseline_best": self.baseline_best,
            "baseline_images_per_second": self.baseline_images_per_second,
            "current_best": self.current_best,
            "current_images_per_second": self.current_images_per_second,
            "change_pct": self.change_pct,
        }


def load_baseline(uri: str, **store_args: Any) -> pd.DataFrame:
    try:
        root, name = split_uri(uri)
        data = open_store(root, **store_args).get_bytes(name)
    except StepError as error:
        raise StepError(f"--baseline: {error}") from None
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except Exception as error:  # pyarrow raises several types for "not parquet"
        raise StepError(f"--baseline {uri!r}: not a readable parquet file: {error}") from None
    missing = _NEEDED - set(frame.columns)
    if missing or not len(frame):
        raise StepError(f"--baseline {uri!r}: not a benchmark runs.parquet (missing {sorted(missing) or 'rows'})")
    return frame


def compare(current: pd.DataFrame, baseline: pd.DataFrame, baseline_uri: str) -> Regression:
    now, then = best(current), best(baseline)
    change = (now["images_per_second"] - then["images_per_second"]) / then["images_per_second"] * 100.0
    per_config = current[["config", "images_per_second"]].merge(
        baseline[["config", "images_per_second"]], on="config", how="outer", suffixes=("", "_baseline")
    )
    per_config["change_pct"] = (
        (per_config["images_per_second"] - per_config["images_per_second_baseline"])
        / per_config["images_per_second_baseline"]
        * 100.0
    )
    return Regression(
        baseline_uri,
        str(then["config"]),
        float(then["images_per_second"]),
        str(now["config"]),
        float(now["images_per_second"]),
        float(change),
        per_config.sort_values("config").reset_index(drop=True),
    )
