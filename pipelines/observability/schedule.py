"""The longest gap between two firings of a cron schedule: what "N schedule periods" means in alerts.

Standard five-field cron (minute hour day-of-month month day-of-week) with `*`, `*/n`, `a-b`,
`a-b/n`, lists and numbers, as CronWorkflows accept. Walking two weeks minute by minute is exact for
every schedule that fires at least once a week, and fast enough (~20k steps) not to need a library.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
}


def _field(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            start, end = (int(x) for x in base.split("-", 1))
        else:
            start = int(base)
            end = high if step_text else start
        if step < 1 or not low <= start <= end <= high + (1 if high == 6 else 0):
            raise ValueError(f"cron field {text!r} is out of range {low}-{high}")
        values.update(v % 7 if high == 6 else v for v in range(start, end + 1, step))
    return values


def period(expression: str) -> timedelta:
    """The longest interval between consecutive firings, e.g. `0 3 * * *` -> 1 day."""
    fields = _MACROS.get(expression.strip(), expression).split()
    if len(fields) != 5:
        raise ValueError(f"cron expression {expression!r}: expected 5 fields")
    minute, hour, dom, month, dow = (_field(f, lo, hi) for f, (lo, hi) in zip(fields, _RANGES, strict=True))
    dom_any, dow_any = fields[2] == "*", fields[4] == "*"
    start = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday; the year has no leap day or DST in UTC
    fires = []
    for step in range(14 * 24 * 60):
        t = start + timedelta(minutes=step)
        if t.minute not in minute or t.hour not in hour or t.month not in month:
            continue
        day_ok, weekday_ok = t.day in dom, (t.isoweekday() % 7) in dow
        # cron's rule: with both day fields restricted, either one matching is enough.
        if (day_ok or weekday_ok) if not (dom_any or dow_any) else (day_ok and weekday_ok):
            fires.append(t)
    if len(fires) < 2:
        raise ValueError(f"cron expression {expression!r} fires less than once a week: give the period explicitly")
    return max(b - a for a, b in itertools.pairwise(fires))


def union_period(expressions: list[str]) -> timedelta:
    """Several schedules fire as one: the gaps of their union are at most the shortest period (a bound)."""
    return min(period(e) for e in expressions)
