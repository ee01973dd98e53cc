"""report.md and report.html from the runs table, plots, Prometheus notes and regression result.

The HTML is self-contained (CSS inline, plots as data: URIs) so it can be mailed, attached to a PR
check or opened from a bucket without the plots next to it.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from steps.benchmark.regression import Regression

# (column, header, format); columns absent from the frame (no Prometheus data) are left out.
_COLUMNS = [
    ("config", "config", "{}"),
    ("processed", "images", "{:d}"),
    ("failed", "failed", "{:d}"),
    ("wall_seconds", "wall s", "{:.2f}"),
    ("images_per_second", "images/s", "{:.2f}"),
    ("latency_p50_ms", "p50 ms", "{:.1f}"),
    ("latency_p95_ms", "p95 ms", "{:.1f}"),
    ("latency_p99_ms", "p99 ms", "{:.1f}"),
    ("gpu_util_mean", "GPU util % (mean)", "{:.1f}"),
    ("gpu_mem_mib_max", "GPU mem MiB (max)", "{:.0f}"),
    ("cpu_cores_mean", "CPU cores (mean)", "{:.2f}"),
    ("cost_per_1k_images", "$ per 1k images", "{:.4g}"),
    ("providers", "provider", "{}"),
]


@dataclass
class Report:
    title: str
    verdict: str
    runs: pd.DataFrame
    prometheus_note: str
    queries: dict[str, str]
    cost_note: str
    plots: dict[str, bytes]  # file name -> PNG
    step_columns: list[str] = field(default_factory=list)
    regression: Regression | None = None
    regression_note: str = ""


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    try:
        return fmt.format(int(value) if fmt == "{:d}" else value)
    except (TypeError, ValueError):
        return str(value)


# Filled from Prometheus: left out of the table when no run has a value (e.g. no DCGM exporter).
_PROMETHEUS_COLUMNS = {"gpu_util_mean", "gpu_mem_mib_max", "cpu_cores_mean"}


def summary_table(report: Report) -> tuple[list[str], list[list[str]]]:
    runs = report.runs
    columns = [(c, c.removesuffix("_mean") + " (mean)", "{:.3g}") for c in report.step_columns]
    columns = [
        c
        for c in _COLUMNS[:-1] + columns + _COLUMNS[-1:]
        if c[0] in runs.columns
        and not ((c[0] in _PROMETHEUS_COLUMNS or c[0] in report.step_columns) and runs[c[0]].isna().all())
    ]
    headers = [header for _, header, _ in columns]
    rows = [[_cell(run[name], fmt) for name, _, fmt in columns] for _, run in runs.iterrows()]
    return headers, rows


def _regression_rows(regression: Regression) -> tuple[list[str], list[list[str]]]:
    headers = ["config", "images/s", "baseline images/s", "change %"]
    rows = [
        [
            str(r["config"]),
            _cell(r["images_per_second"], "{:.2f}"),
            _cell(r["images_per_second_baseline"], "{:.2f}"),
            _cell(r["change_pct"], "{:+.1f}"),
        ]
        for _, r in regression.per_config.iterrows()
    ]
    return headers, rows


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *(line(r) for r in rows)])


def markdown(report: Report) -> str:
    parts = [f"# {report.title}", "", f"**{report.verdict}**", "", "## Runs", "", _md_table(*summary_table(report)), ""]
    parts += ["## Cost", "", report.cost_note, "", "## Prometheus", "", report.prometheus_note, ""]
    if report.queries:
        parts += [f"- `{name}`: `{query}`" for name, query in report.queries.items()] + [""]
    parts += ["## Regression", ""]
    if report.regression is not None:
        parts += [report.regression_note, "", _md_table(*_regression_rows(report.regression)), ""]
    else:
        parts += [report.regression_note or "No baseline given.", ""]
    parts += ["## Plots", ""] + [f"![{name}](plots/{name})" for name in report.plots] + [""]
    return "\n".join(parts)


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1d1d1f;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
.verdict{background:#eef6ee;border-left:4px solid #2e7d32;padding:8px 12px;font-weight:600}
table{border-collapse:collapse;font-size:.85em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}code{background:#f5f5f5;padding:0 3px}
.plots img{max-width:100%;margin:8px 0;border:1px solid #eee}.note{color:#555}
"""


def html_page(report: Report) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(report.title)}</h1><p class='verdict'>{esc(report.verdict)}</p>",
        "<h2>Runs</h2>",
        _html_table(*summary_table(report)),
        "<h2>Cost</h2>",
        f"<p class='note'>{esc(report.cost_note)}</p>",
        "<h2>Prometheus</h2>",
        f"<p class='note'>{esc(report.prometheus_note)}</p>",
    ]
    if report.queries:
        items = "".join(f"<li>{esc(n)}: <code>{esc(q)}</code></li>" for n, q in report.queries.items())
        parts.append(f"<ul>{items}</ul>")
    parts.append("<h2>Regression</h2>")
    if report.regression is not None:
        parts += [f"<p>{esc(report.regression_note)}</p>", _html_table(*_regression_rows(report.regression))]
    else:
        parts.append(f"<p class='note'>{esc(report.regression_note or 'No baseline given.')}</p>")
    parts.append("<h2>Plots</h2><div class='plots'>")
    for name, png in report.plots.items():
        data = base64.b64encode(png).decode()
        parts.append(f"<figure><img alt='{esc(name)}' src='data:image/png;base64,{data}'></figure>")
    parts.append("</div></body></html>")
    return "\n".join(parts)
