"""Find a sweep's runs under --runs-uri and turn their report summaries into one table.

A run is any `<name>/report/summary.json`; its configuration comes from explicit summary fields
when present, else from the name `bs{batch}-ss{shard}-p{parallelism}` the benchmark template uses.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from steps.common.errors import StepError

SUMMARY = "report/summary.json"
STAGES = ("download", "decode", "infer", "upload")
_NAME = re.compile(r"(?:^|[^a-z])bs(?P<batch_size>\d+)-ss(?P<shard_size>\d+)-p(?P<parallelism>\d+)$")
# infer writes one line per item to results/shard-*.jsonl (with latency_ms); older or other
# producers may put a latencies_ms list into metrics/shard-*.json instead. Either feeds the CDF.
_SHARD_RESULTS = re.compile(r"^results/shard-[^/]*\.jsonl$")
_SHARD_METRICS = re.compile(r"^metrics/shard-[^/]*\.json$")


@dataclass
class Run:
    row: dict[str, Any]
    latencies_ms: np.ndarray = field(default_factory=lambda: np.empty(0))


def _key(item: Any) -> str:
    return item if isinstance(item, str) else item.key


def parse_time(value: Any, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise StepError(f"{where}: not an ISO-8601 time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _config(name: str, summary: dict, where: str) -> dict[str, int]:
    match = _NAME.search(name)
    parsed = {k: int(v) for k, v in match.groupdict().items()} if match else {}
    config = {}
    for key in ("batch_size", "shard_size", "parallelism"):
        value = summary.get(key)
        # The report step writes batch_size 0 for a run without shards: the name knows better then.
        if not isinstance(value, int) or value <= 0:
            value = parsed.get(key)
        if value is None:
            raise StepError(f"{where}: no {key}: name the run bs<N>-ss<N>-p<N> or put {key} in the summary")
        config[key] = int(value)
    return config


def _number(summary: dict, key: str, where: str, default: float | None = None) -> float:
    value = summary.get(key, default)
    if value is None:
        raise StepError(f"{where}: missing {key!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise StepError(f"{where}: {key!r} is not a number: {value!r}") from None


def _result_latencies(text: str) -> list[float]:
    values = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue  # a torn line only costs the CDF a point
        # "resumed" items were done by an earlier attempt: their latency is not this run's.
        if isinstance(item, dict) and item.get("status") == "ok" and item.get("latency_ms") is not None:
            values.append(float(item["latency_ms"]))
    return values


def _metrics_latencies(text: str) -> list[float]:
    try:
        metrics = json.loads(text)
    except ValueError:
        return []
    values = metrics.get("latencies_ms") if isinstance(metrics, dict) else None
    return [float(v) for v in values if v is not None] if isinstance(values, list) else []


def _latencies(store: Any, name: str, keys: list[str]) -> np.ndarray:
    """Per-item latencies of a run, from its shard results (preferred) or shard metrics; empty if none."""
    mine = [k[len(name) + 1 :] for k in keys if k.startswith(name + "/")]
    for pattern, parse in ((_SHARD_RESULTS, _result_latencies), (_SHARD_METRICS, _metrics_latencies)):
        texts = [store.get_bytes(f"{name}/{k}").decode("utf-8", "replace") for k in mine if pattern.match(k)]
        values = [v for text in texts for v in parse(text)]
        if values:
            return np.asarray(values, dtype=float)
    return np.empty(0)


def _float(value: Any) -> float:
    """A number from a summary field that may be null (e.g. latency of a run with no images)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _row(name: str, uri: str, summary: dict, where: str) -> dict[str, Any]:
    config = _config(name, summary, where)
    processed = _number(summary, "processed", where)
    wall = _number(summary, "wall_seconds", where)
    started = parse_time(summary.get("started_at"), where + " started_at")
    finished = parse_time(summary.get("finished_at"), where + " finished_at")
    latency = summary.get("latency_ms") or {}
    stages = summary.get("stage_seconds") or {}
    providers = summary.get("providers") or []
    row: dict[str, Any] = {
        "config": f"bs{config['batch_size']}-ss{config['shard_size']}-p{config['parallelism']}",
        **config,
        "processed": int(processed),
        "failed": int(_number(summary, "failed", where, 0)),
        "rejected": int(_number(summary, "rejected", where, 0)),
        "wall_seconds": wall,
        "images_per_second": _number(summary, "images_per_second", where, processed / wall if wall > 0 else 0.0),
        "latency_p50_ms": _float(latency.get("p50")),
        "latency_p95_ms": _float(latency.get("p95")),
        "latency_p99_ms": _float(latency.get("p99")),
        **{f"stage_{s}_seconds": _float(stages.get(s)) for s in STAGES},
        "providers": ",".join(str(p) for p in providers) if isinstance(providers, list) else str(providers),
        "shards": int(_number(summary, "shards", where, 0)),
        "num_jobs": int(_number(summary, "num_jobs", where, processed)),
        "time_elapsed": _number(summary, "time_elapsed", where, wall),
        "started_at": pd.Timestamp(started),
        "finished_at": pd.Timestamp(finished),
        **{f"requests_{k.lower()}": int((summary.get("requests") or {}).get(k, 0)) for k in ("GET", "PUT", "LIST")},
        "run_name": name,
        "run_uri": str(summary.get("run_uri") or uri),
    }
    return row


def load_runs(store: Any) -> list[Run]:
    """Every run under the store's root, sorted by configuration; a StepError when there is none."""
    keys = [_key(k) for k in store.list("")]
    names = sorted({k[: -len(SUMMARY) - 1] for k in keys if k.endswith("/" + SUMMARY)})
    if not names:
        raise StepError(f"--runs-uri {store.uri!r}: no runs found (expected <run>/{SUMMARY})")
    runs = []
    for name in names:
        where = store.uri_for(f"{name}/{SUMMARY}")
        try:
            summary = json.loads(store.get_bytes(f"{name}/{SUMMARY}"))
        except (ValueError, UnicodeDecodeError) as error:
            raise StepError(f"{where}: not valid JSON: {error}") from None
        if not isinstance(summary, dict):
            raise StepError(f"{where}: expected a JSON object")
        runs.append(Run(_row(name, store.uri_for(name), summary, where), _latencies(store, name, keys)))
    seen: dict[str, str] = {}
    for run in runs:
        other = seen.setdefault(run.row["config"], run.row["run_name"])
        if other != run.row["run_name"]:
            raise StepError(
                f"--runs-uri {store.uri!r}: runs {other!r} and {run.row['run_name']!r} are both "
                f"configuration {run.row['config']}: one report compares distinct configurations"
            )
    runs.sort(key=lambda r: (r.row["shard_size"], r.row["parallelism"], r.row["batch_size"], r.row["run_name"]))
    return runs


def best(frame: pd.DataFrame) -> pd.Series:
    """Highest throughput among runs without failures (all runs when each had some), cheaper first on ties."""
    clean = frame[(frame["failed"] == 0) & (frame["processed"] > 0)]
    pool = clean if len(clean) else frame
    ordered = pool.sort_values(["images_per_second", "cost_per_1k_images"], ascending=[False, True])
    return ordered.iloc[0]
