"""Durations, read by one parser in the dialect of whoever wrote them.

Config, step flags, Argo manifests and Prometheus rules all write durations as a number and a unit
(`90m`, `1m30s`), but each allows a different subset, and the subset is a rule: the cleanup refuses
`1h30m` or a bare `3` as likely typos, where Argo reads a bare number as seconds. A `Dialect` names
that subset; `parse_duration` reads every one of them.

It lives in `steps/common/` (stdlib only) because both sides read durations: the cleanup step, and in
`pipelines/` the local runner, the alert rules and `kiosk lifecycle`; `steps` never imports
`pipelines`, and `pipelines` imports from `steps` only params models and these shared, light modules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400}


@dataclass(frozen=True, kw_only=True)
class Dialect:
    """Which durations a reader accepts."""

    #: The units allowed, from `ms s m h d`.
    units: tuple[str, ...]
    #: The regular expression a term's number must match (fractions, leading zeros, zero).
    number: str
    #: Whether terms may follow each other (`1h30m`).
    compound: bool = False
    #: Whether a bare number means seconds (`30`).
    bare_seconds: bool = False
    #: What the error message offers as valid examples.
    examples: str


#: Retention thresholds and margins: one positive whole number of minutes, hours or days.
RETENTION = Dialect(units=("m", "h", "d"), number=r"[1-9][0-9]{0,6}", examples="90m, 36h, 3d")
#: Argo's (Go's) durations, as `retryStrategy.backoff` and `timeout` take them.
ARGO = Dialect(
    units=("ms", "s", "m", "h"),
    number=r"[0-9]+(?:\.[0-9]+)?",
    compound=True,
    bare_seconds=True,
    examples="30, 30s, 1m30s, 500ms",
)
#: The durations of our alert rules' `for:` and windows.
PROMETHEUS = Dialect(units=("s", "m", "h", "d"), number=r"[1-9][0-9]*", examples="30s, 15m, 6h, 2d")


def parse_duration(text: str, dialect: Dialect = RETENTION) -> timedelta:
    """`text` in `dialect` as a timedelta; ValueError saying what is expected for anything else."""
    stripped = text.strip()
    if dialect.bare_seconds and re.fullmatch(dialect.number, stripped):
        return timedelta(seconds=float(stripped))
    # Longest unit first, so that `ms` is never read as `m` followed by garbage.
    units = "|".join(sorted(dialect.units, key=len, reverse=True))
    terms = re.findall(rf"({dialect.number})({units})", stripped)
    written = "".join(number + unit for number, unit in terms)
    if not terms or written != stripped or (len(terms) > 1 and not dialect.compound):
        raise ValueError(f"expected a duration such as {dialect.examples} (got {text!r})")
    return timedelta(seconds=sum(float(number) * _SECONDS[unit] for number, unit in terms))
