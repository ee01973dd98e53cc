"""What a sweep's runs cost: billed lane time and S3 requests, x the configured prices."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from steps.benchmark.billing import Billed
from steps.benchmark.params import BenchmarkParams


@dataclass(frozen=True, kw_only=True)
class Prices:
    """The prices a run is charged at, from configuration: keyword-only, so none can be swapped."""

    gpu_per_hour: float = 0.0
    cpu_per_hour: float = 0.0
    gpus_per_task: int = 1
    s3_get_per_1k: float = 0.0
    s3_put_per_1k: float = 0.0

    @classmethod
    def from_params(cls, params: BenchmarkParams) -> Prices:
        return cls(
            gpu_per_hour=params.gpu_price_per_hour,
            cpu_per_hour=params.cpu_price_per_hour,
            gpus_per_task=params.gpus_per_task,
            s3_get_per_1k=params.s3_get_price_per_1k,
            s3_put_per_1k=params.s3_put_price_per_1k,
        )

    def formula(self) -> str:
        """The report's sentence for how $ per 1k images is computed, with these prices."""
        return (
            f"$ per 1k images = 1000 x (lane pod seconds x ({self.gpus_per_task} GPU x ${self.gpu_per_hour:g}/h "
            f"+ ${self.cpu_per_hour:g}/h per lane node) / 3600 + GET requests x ${self.s3_get_per_1k:g}/1k "
            f"+ PUT and LIST requests x ${self.s3_put_per_1k:g}/1k) / images processed."
        )


def add_costs(frame: pd.DataFrame, prices: Prices, billed: dict[str, Billed] | None = None) -> pd.DataFrame:
    """What the cluster bills, x configured prices.

    With the Workflow status (`billed`: run name -> steps.benchmark.billing.Billed), each run is
    charged its lane pods' lifetimes (pod start to finish, model load and idle waits included), and
    its throughput is images over the lanes' span (first start to last finish): what a user waits
    and pays for, not in-step seconds. Without it, each of `parallelism` lanes is charged the
    run's in-step wall time (an estimate). Each lane holds `prices.gpus_per_task` GPUs plus its CPU host.
    S3 requests add GET x get price + (PUT + LIST) x put price.
    """
    out = frame.copy()
    billed = billed or {}
    lane_s = out["run_name"].map(lambda n: billed[n].lane_seconds if n in billed else math.nan).astype(float)
    span_s = out["run_name"].map(lambda n: billed[n].span_seconds if n in billed else math.nan).astype(float)
    known = lane_s.notna()
    out["billing_source"] = np.where(known, "workflow status", "in-step estimate")
    out["billed_lane_seconds"] = lane_s.where(known, out["wall_seconds"] * out["parallelism"])
    out["billed_wall_seconds"] = span_s.where(known, out["wall_seconds"])
    out["images_per_second_in_step"] = out["images_per_second"]
    billed_ips = out["processed"] / out["billed_wall_seconds"].where(out["billed_wall_seconds"] > 0)
    out["images_per_second"] = billed_ips.where(known, out["images_per_second"]).fillna(0.0)
    node_hours = out["billed_lane_seconds"] / 3600.0
    out["cpu_node_hours"] = node_hours
    out["gpu_hours"] = node_hours * prices.gpus_per_task
    out["cpu_node_cost"] = out["cpu_node_hours"] * prices.cpu_per_hour
    out["gpu_node_cost"] = out["gpu_hours"] * prices.gpu_per_hour
    gets = out.get("requests_get", 0)
    puts = out.get("requests_put", 0) + out.get("requests_list", 0)
    out["request_cost"] = (gets * prices.s3_get_per_1k + puts * prices.s3_put_per_1k) / 1000.0
    out["total_cost"] = out["cpu_node_cost"] + out["gpu_node_cost"] + out["request_cost"]
    per_image = out["total_cost"] / out["processed"].where(out["processed"] > 0)
    out["cost_per_1k_images"] = per_image * 1000.0
    return out
