"""Range queries over each run's window through prometheus-api-client.

Unreachable Prometheus: the report still renders and says "no Prometheus data". Reachable but a
query fails (malformed PromQL, unknown function): a StepError naming the query, because a report
that silently drops a metric someone configured would be read as "the GPU was idle".
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from steps.common.errors import StepError

_BARE_NAME = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$")
# Points per run window: enough for a utilisation curve, few enough for one small response.
_POINTS = 240


@dataclass
class PromData:
    available: bool
    note: str
    queries: dict[str, str] = field(default_factory=dict)
    per_run: dict[str, dict[str, float]] = field(default_factory=dict)
    series: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["config", "name", "seconds", "value"]))


def build_queries(
    gpu_metric: str, gpu_memory_metric: str, cpu_query: str, step_queries: str, namespace: str
) -> dict[str, str]:
    """NAME -> PromQL. A bare metric name is aggregated over its series; anything else is used as given."""

    def wrap(expression: str, aggregation: str) -> str:
        return f"{aggregation}({expression})" if _BARE_NAME.match(expression.strip()) else expression

    queries = {
        "gpu_util": wrap(gpu_metric, "avg"),
        "gpu_mem_mib": wrap(gpu_memory_metric, "sum"),
        "cpu_cores": cpu_query,
    }
    try:
        extra = json.loads(step_queries) if step_queries.strip() else {}
    except ValueError as error:
        raise StepError(f"--step-queries: not JSON ({error}): {step_queries!r}") from None
    if not isinstance(extra, dict) or not all(isinstance(q, str) for q in extra.values()):
        raise StepError(f'--step-queries: expected a JSON object {{"NAME": "PromQL"}}, got {step_queries!r}')
    for name, query in extra.items():
        if not _BARE_NAME.match(name) or name in queries:
            raise StepError(f"--step-queries: {name!r} is not a free metric-style name")
        queries[name] = query
    return {name: query.replace("$namespace", namespace) for name, query in queries.items() if query.strip()}


def _error_text(error: Exception) -> str:
    text = str(error)
    # The client wraps the body as b'{...}': show Prometheus' own message when there is one.
    match = re.search(r"\{.*\}", text)
    if match:
        try:
            body = json.loads(match.group(0).encode().decode("unicode_escape"))
            text = f"{body.get('errorType', '')}: {body.get('error', text)}".strip(": ")
        except ValueError:
            pass
    return " ".join(text.split())


def window(started: pd.Timestamp, finished: pd.Timestamp) -> tuple[datetime, datetime]:
    """The run's window widened to whole seconds (the API client rounds to the nearest second,
    which could cut a sub-second run down to one instant before it started).
    """
    start = started.floor("s").to_pydatetime()
    end = finished.ceil("s").to_pydatetime()
    return start, max(end, start + timedelta(seconds=1))


def _wait_until_past(frame: pd.DataFrame, lag: float) -> None:
    """Sleep until the last window's end (finished + lag) has passed: the lag is there for a scrape
    that comes after the run ends, and a query sent before then cannot see it yet.
    """
    if not lag or frame.empty:
        return
    end = (frame["finished_at"].max() + pd.Timedelta(seconds=lag)).ceil("s")
    remaining = (end - pd.Timestamp.now(tz="UTC")).total_seconds()
    if remaining > 0:
        time.sleep(min(remaining, lag))


def _step_seconds(window: float) -> float:
    return max(1.0, math.ceil(window / _POINTS))


def collect(
    url: str, frame: pd.DataFrame, queries: dict[str, str], timeout: float = 30.0, lag: float = 0.0
) -> PromData:
    """Per-run mean/max of each query over [started_at, finished_at], and the raw points."""
    if not url:
        return PromData(False, "no Prometheus data (no --prometheus-url given)", queries)
    # No retries on connection errors: an unreachable server should cost one refused connect, not 7 s.
    retry = Retry(total=2, connect=0, read=1, backoff_factor=0.5, status_forcelist=[429, 502, 503, 504])
    client = PrometheusConnect(url=url.rstrip("/"), disable_ssl=False, retry=retry, timeout=timeout)
    try:
        reachable = client.check_prometheus_connection()
        why = "" if reachable else "it did not answer 200"
    except requests.RequestException as error:
        reachable, why = False, " ".join(str(error).split())[:200]
    if not reachable:
        return PromData(False, f"no Prometheus data ({url} unreachable: {why})", queries)

    _wait_until_past(frame, lag)
    per_run: dict[str, dict[str, float]] = {}
    points: list[tuple[Any, str, float, float]] = []
    for _, run in frame.iterrows():
        start, end = window(run["started_at"], run["finished_at"] + pd.Timedelta(seconds=lag))
        step = _step_seconds((end - start).total_seconds())
        values: dict[str, float] = {}
        for name, template in queries.items():
            # $run: the run's directory name, for metrics pushed with a per-run grouping key.
            query = template.replace("$run", str(run["run_name"]))
            try:
                result = client.custom_query_range(query, start_time=start, end_time=end, step=f"{step:g}")
            except (PrometheusApiClientException, requests.RequestException) as error:
                raise StepError(f"Prometheus query {name} failed: {query!r}: {_error_text(error)}") from None
            samples = [(float(t), float(v)) for series in result for t, v in series.get("values", [])]
            finite = [v for _, v in samples if math.isfinite(v)]
            values[f"{name}_mean"] = sum(finite) / len(finite) if finite else math.nan
            values[f"{name}_max"] = max(finite) if finite else math.nan
            t0 = start.timestamp()
            points.extend((run["config"], name, t - t0, v) for t, v in samples)
        per_run[run["config"]] = values
    series = pd.DataFrame(points, columns=["config", "name", "seconds", "value"])
    empty = [n for n in queries if all(math.isnan(v[f"{n}_mean"]) for v in per_run.values())]
    note = f"Prometheus at {url}."
    if empty:
        note += f" No samples in the runs' windows for: {', '.join(empty)}."
    client.close()
    return PromData(True, note, queries, per_run, series)
