"""The report's PNG plots (matplotlib, Agg backend: no display in pods or CI)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from steps.benchmark.runs import STAGES


def _png(figure: plt.Figure) -> bytes:
    out = io.BytesIO()
    figure.tight_layout()
    # metadata={"Software": None}: no matplotlib version in the bytes, so equal data gives equal files.
    figure.savefig(out, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return out.getvalue()


def throughput(frame: pd.DataFrame) -> bytes:
    figure, axes = plt.subplots(figsize=(7, 4))
    for (shard, parallelism), group in frame.groupby(["shard_size", "parallelism"], sort=True):
        group = group.sort_values("batch_size")
        label = f"shard {shard}, parallelism {parallelism}"
        axes.plot(group["batch_size"], group["images_per_second"], marker="o", label=label)
    axes.set_xscale("log", base=2)
    axes.set_xticks(sorted(frame["batch_size"].unique()), labels=[str(b) for b in sorted(frame["batch_size"].unique())])
    axes.set_xlabel("batch size")
    axes.set_ylabel("images/s")
    axes.set_ylim(0, frame["images_per_second"].max() * 1.12 or 1)  # headroom: the best point is the one to see
    axes.set_title("Throughput vs batch size")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _png(figure)


def latency_cdf(frame: pd.DataFrame, latencies: dict[str, np.ndarray]) -> bytes:
    figure, axes = plt.subplots(figsize=(7, 4))
    for _, run in frame.iterrows():
        values = np.sort(latencies.get(run["config"], np.empty(0)))
        if len(values):
            axes.step(values, np.arange(1, len(values) + 1) / len(values), where="post", label=run["config"])
        else:
            # Without per-item latencies the summary's percentiles are the only points we have.
            marks = [run["latency_p50_ms"], run["latency_p95_ms"], run["latency_p99_ms"]]
            axes.plot(marks, [0.5, 0.95, 0.99], marker="o", linestyle=":", label=f"{run['config']} (p50/p95/p99)")
    axes.set_xlabel("per-image latency (ms)")
    axes.set_ylabel("fraction of images")
    axes.set_ylim(0, 1.02)
    axes.set_title("Latency CDF")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _png(figure)


def stages(frame: pd.DataFrame) -> bytes:
    figure, axes = plt.subplots(figsize=(7, 0.5 * len(frame) + 2.2))
    per_image = {
        stage: (frame[f"stage_{stage}_seconds"] * 1000 / frame["processed"].where(frame["processed"] > 0)).fillna(0)
        for stage in STAGES
    }
    left = np.zeros(len(frame))
    for stage in STAGES:
        axes.barh(frame["config"], per_image[stage], left=left, label=stage)
        left += per_image[stage].to_numpy()
    axes.set_xlabel("ms per image (stage time / images processed)")
    axes.set_title("Stage-time breakdown")
    axes.invert_yaxis()
    # Below the axes: inside, it would hide the end of the longest bar.
    axes.legend(fontsize="small", ncols=4, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    return _png(figure)


def gpu_utilisation(series: pd.DataFrame) -> bytes | None:
    util = series[(series["name"] == "gpu_util") & series["value"].notna()] if len(series) else series
    if not len(util):
        return None
    figure, axes = plt.subplots(figsize=(7, 4))
    for config, group in util.groupby("config", sort=True):
        mean = group.groupby("seconds")["value"].mean()  # several GPUs: their average per instant
        axes.plot(mean.index, mean.to_numpy(), marker=".", label=config)
    axes.set_xlabel("seconds since run start")
    axes.set_ylabel("GPU utilisation (%)")
    axes.set_ylim(bottom=0)
    axes.set_title("GPU utilisation over time")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _png(figure)
