"""The report step: aggregate a run's shard metrics into summary.json/csv/md and Argo outputs."""

from __future__ import annotations

import contextlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from steps.common import runlayout
from steps.common.errors import StepError
from steps.common.outputs import write_outputs
from steps.common.storage import NotFound, Store, open_store
from steps.infer.claims import COMMIT, claims_prefix
from steps.report.params import ReportParams

STAGES = ("download", "decode", "infer", "upload")
MAX_LISTED = 1000  # failures listed in summary.json; failures.csv has them all


def _read_all(store: Store, folder: str, suffix: str, workers: int = 8) -> dict[str, bytes]:
    return _read_all_keys(store, [o.key for o in store.list(folder) if o.key.endswith(suffix)], workers)


def _read_all_keys(store: Store, keys: list[str], workers: int = 8) -> dict[str, bytes]:
    def get(key: str) -> bytes | None:
        try:
            return store.get_bytes(key)
        except NotFound:
            return None

    with ThreadPoolExecutor(workers) as pool:
        return {k: v for k, v in zip(keys, pool.map(get, keys), strict=True) if v is not None}


def _jsonl(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def _percentiles(values: np.ndarray) -> dict[str, float | None]:
    if not len(values):
        return {"p50": None, "p95": None, "p99": None}
    return {f"p{q}": round(float(np.percentile(values, q)), 2) for q in (50, 95, 99)}


def _requests(store: Store) -> dict[str, int]:
    """S3 requests of the run by price class: every lane process's own count plus ingest's."""
    total = dict.fromkeys(("GET", "PUT", "LIST", "DELETE"), 0)
    docs = [json.loads(v) for v in _read_all(store, runlayout.LANES_DIR, ".json").values()]
    with contextlib.suppress(NotFound):
        docs.append(json.loads(store.get_bytes(runlayout.SHARD_INDEX)))
    for doc in docs:
        for kind, count in (doc.get("requests") or {}).items():
            if kind in total:
                total[kind] += int(count)
    return total


@dataclass
class _Shards:
    """Each shard's metrics document and result records, from its commit where it has one."""

    docs: list[dict]
    results: list[dict]
    failed: list[dict]  # {"shard", "reason"} of shards committed as failed


def _failed_shard(store: Store, commit: dict) -> tuple[dict, list[dict]]:
    """A shard committed as failed (every allowed generation died): all its items count as failed."""
    shard, reason = str(commit.get("shard", "")), f"shard failed: {commit.get('reason', '')}"
    try:
        keys = [row["key"] for row in _jsonl(store.get_bytes(f"{runlayout.SHARDS_DIR}/{shard}.jsonl"))]
    except (NotFound, ValueError, KeyError):
        keys = []
    at = commit.get("committed_at") or datetime.now(UTC).isoformat()
    doc = {
        "shard": shard,
        "status": "failed",
        "items": int(commit.get("items") or len(keys)),
        "processed": 0,
        "processed_now": 0,
        "resumed": 0,
        "failed": int(commit.get("items") or len(keys)),
        "started_at": at,
        "finished_at": at,
        "stage_seconds": {},
        "latency_ms": {"p50": None, "p95": None},
        "reason": reason,
    }
    return doc, [{"key": key, "status": "failed", "reason": reason} for key in keys]


def _commits(store: Store) -> list[dict]:
    keys = [o.key for o in store.list(claims_prefix()) if o.key.endswith("/" + COMMIT)]
    return [json.loads(v) for v in _read_all_keys(store, keys).values()]


def _shards(store: Store) -> _Shards:
    """Committed shards (lanes) first; the rest from results/ and metrics/ (single-shard mode)."""
    out = _Shards([], [], [])
    for commit in _commits(store):
        if commit.get("status") == "failed":
            doc, rows = _failed_shard(store, commit)
            out.failed.append({"shard": doc["shard"], "reason": doc["reason"]})
        else:
            doc, rows = commit["metrics"], commit["results"]
        out.docs.append(doc)
        out.results += rows
    committed = {d["shard"] for d in out.docs}
    for doc in (json.loads(v) for v in _read_all(store, runlayout.METRICS_DIR, ".json").values()):
        if doc.get("shard") not in committed:
            out.docs.append(doc)
    for key, value in _read_all(store, runlayout.RESULTS_DIR, ".jsonl").items():
        if runlayout.shard_name(key) not in committed:
            out.results += _jsonl(value)
    return out


def _totals(docs: list[dict], shards: pd.DataFrame, now: datetime) -> dict[str, Any]:
    if not len(shards):
        return {
            "started": now,
            "finished": now,
            "stage_seconds": dict.fromkeys(STAGES, 0.0),
            "providers": [],
            "batch_size": 0,
            **dict.fromkeys(("processed", "failed", "processed_now", "resumed"), 0),
        }
    batch_sizes = shards["batch_size"].dropna().mode() if "batch_size" in shards else pd.Series([], dtype=float)
    return {
        "started": pd.to_datetime(shards["started_at"], utc=True).min().to_pydatetime(),
        "finished": pd.to_datetime(shards["finished_at"], utc=True).max().to_pydatetime(),
        "stage_seconds": {s: round(float(sum(d["stage_seconds"].get(s, 0.0) for d in docs)), 4) for s in STAGES},
        "providers": sorted({p for d in docs for p in d.get("providers", [])}),
        "batch_size": int(batch_sizes.iloc[0]) if len(batch_sizes) else 0,
        **{k: int(shards[k].sum()) for k in ("processed", "failed", "processed_now", "resumed")},
    }


def _shard_rows(docs: list[dict]) -> pd.DataFrame:
    columns = (
        "shard",
        "items",
        "processed",
        "processed_now",
        "resumed",
        "failed",
        "wall_seconds",
        "images_per_second",
        "batch_size",
        "started_at",
        "finished_at",
    )
    rows = [
        {
            **{k: d.get(k) for k in columns},
            **{f"{s}_seconds": d["stage_seconds"].get(s, 0.0) for s in STAGES},
            "latency_p50_ms": d["latency_ms"]["p50"],
            "latency_p95_ms": d["latency_ms"]["p95"],
            "providers": " ".join(d.get("providers", [])),
        }
        for d in sorted(docs, key=lambda d: d["shard"])
    ]
    return pd.DataFrame(rows)


def summarize(store: Store, run_uri: str, output_uri: str) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """(summary, per-shard table, failures table) of the run under `store`."""
    found = _shards(store)
    docs, results = found.docs, found.results
    shards = pd.DataFrame(docs)
    try:
        rejects = _jsonl(store.get_bytes(runlayout.REJECTED))
    except NotFound:
        rejects = []
    expected = sorted(runlayout.shard_name(o.key) for o in store.list(runlayout.SHARDS_DIR))
    missing = sorted(set(expected) - set(shards["shard"] if len(shards) else []))
    failures = pd.DataFrame(
        [{"key": r["key"], "stage": "infer", "reason": r["reason"]} for r in results if r["status"] == "failed"]
        + [{"key": r["key"], "stage": "ingest", "reason": r["reason"]} for r in rejects],
        columns=["key", "stage", "reason"],
    )
    latencies = np.array([r["latency_ms"] for r in results if r["status"] == "ok"], dtype=float)
    now = datetime.now(UTC)
    t = _totals(docs, shards, now)
    wall = max((t["finished"] - t["started"]).total_seconds(), 0.0)
    infer_failures = failures[failures["stage"] == "infer"]
    summary = {
        "run_uri": run_uri,
        "output_uri": output_uri,
        "processed": t["processed"],
        "failed": t["failed"],
        "rejected": len(rejects),
        "resumed": t["resumed"],
        "images_per_second": round(t["processed_now"] / wall, 3) if wall > 0 else 0.0,
        "wall_seconds": round(wall, 3),
        "started_at": t["started"].isoformat(),
        "finished_at": t["finished"].isoformat(),
        "latency_ms": _percentiles(latencies),
        "stage_seconds": t["stage_seconds"],
        "providers": t["providers"],
        "shards": len(docs),
        "shards_expected": len(expected),
        "missing_shards": missing,
        "failed_shards": sorted(found.failed, key=lambda f: f["shard"]),
        "batch_size": t["batch_size"],
        "requests": _requests(store),
        "failures": infer_failures[["key", "reason"]].head(MAX_LISTED).to_dict("records"),
        "failures_truncated": len(infer_failures) > MAX_LISTED,
        # The old kiosk's benchmark names, kept for its dashboards.
        "time_elapsed": round(wall, 3),
        "num_jobs": t["processed"] + t["failed"],
        "generated_at": now.isoformat(),
    }
    return summary, _shard_rows(docs), failures


def markdown(summary: dict, table: pd.DataFrame, failures: pd.DataFrame, listed: int = 20) -> str:
    lat = summary["latency_ms"]
    lines = [
        f"# Inference run `{summary['run_uri']}`",
        "",
        f"- **{summary['processed']} processed**, {summary['failed']} failed, {summary['rejected']} rejected at "
        f"ingest ({summary['resumed']} resumed after a retry)",
        f"- {summary['images_per_second']} images/s over {summary['wall_seconds']} s "
        f"({summary['started_at']} .. {summary['finished_at']}), {summary['shards']} shards, "
        f"batch size {summary['batch_size']}, on {', '.join(summary['providers']) or 'n/a'}",
        f"- latency p50/p95/p99: {lat['p50']} / {lat['p95']} / {lat['p99']} ms",
        "- busy seconds per stage: " + ", ".join(f"{k} {v}" for k, v in summary["stage_seconds"].items()),
    ]
    for failed in summary.get("failed_shards", []):
        lines.append(f"- **shard {failed['shard']} failed**: {failed['reason']}")
    if summary["missing_shards"]:
        lines.append(f"- **shards without metrics** (crashed or still running): {', '.join(summary['missing_shards'])}")
    if len(failures):
        lines += ["", f"## Failures ({len(failures)})", "", "| key | stage | reason |", "|---|---|---|"]
        for row in failures.head(listed).itertuples():
            lines.append(f"| `{row.key}` | {row.stage} | {str(row.reason).replace('|', '/')} |")
        if len(failures) > listed:
            lines.append(f"| ... | | {len(failures) - listed} more in failures.csv |")
    return "\n".join(lines) + "\n"


def _require_a_run(store: Store, run_uri: str) -> None:
    """A run ingest never wrote (a wrong --run-uri, a typo) is an error, not an empty report; an
    empty run still has ingest's shard index.
    """
    if store.head(runlayout.SHARD_INDEX) is not None:
        return
    if any(True for folder in (runlayout.SHARDS_DIR, runlayout.METRICS_DIR) for _ in store.list(folder)):
        return
    raise StepError(f"--run-uri: no run at {run_uri}: no {runlayout.SHARD_INDEX}, shards or shard metrics")


def run(params: ReportParams) -> int:
    storage: dict[str, Any] = {"s3_endpoint": params.s3_endpoint, "max_attempts": params.s3_max_attempts}
    store = open_store(params.run_uri, max_pool_connections=10, **storage)
    _require_a_run(store, params.run_uri)
    target = open_store(params.summary_uri, **storage) if params.summary_uri else store
    prefix = "" if params.summary_uri else f"{runlayout.REPORT_DIR}/"

    summary, table, failures = summarize(store, params.run_uri.rstrip("/"), params.output_uri.rstrip("/"))
    target.put_bytes(f"{prefix}summary.csv", table.to_csv(index=False).encode(), content_type="text/csv")
    target.put_bytes(f"{prefix}failures.csv", failures.to_csv(index=False).encode(), content_type="text/csv")
    target.put_bytes(f"{prefix}summary.md", markdown(summary, table, failures).encode(), content_type="text/markdown")
    # summary.json last: its presence means the report is complete.
    target.put_bytes(f"{prefix}summary.json", json.dumps(summary, indent=1).encode(), content_type="application/json")
    summary_uri = target.uri_for(f"{prefix}summary.json")
    write_outputs(
        params.outputs_dir,
        {
            "processed": str(summary["processed"]),
            "failed": str(summary["failed"]),
            "throughput": str(summary["images_per_second"]),
            "summary-uri": summary_uri,
        },
    )
    print(
        f"steps.report: {summary['processed']} processed, {summary['failed']} failed, {summary['rejected']} rejected, "
        f"{summary['images_per_second']} images/s -> {summary_uri}",
        file=sys.stderr,
    )
    return 0
