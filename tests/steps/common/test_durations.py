"""The one duration parser, in each dialect: what it reads, and what it refuses with a clear message."""

from __future__ import annotations

from datetime import timedelta

import pytest

from steps.common.durations import ARGO, PROMETHEUS, RETENTION, Dialect, parse_duration


@pytest.mark.parametrize(
    ("text", "dialect", "expected"),
    [
        ("90m", RETENTION, timedelta(minutes=90)),
        (" 3d ", RETENTION, timedelta(days=3)),
        ("30", ARGO, timedelta(seconds=30)),
        ("0", ARGO, timedelta(0)),
        ("1m30s", ARGO, timedelta(seconds=90)),
        ("500ms", ARGO, timedelta(milliseconds=500)),
        ("1.5h", ARGO, timedelta(minutes=90)),
        ("2h500ms", ARGO, timedelta(hours=2, milliseconds=500)),
        ("15m", PROMETHEUS, timedelta(minutes=15)),
        ("2d", PROMETHEUS, timedelta(days=2)),
    ],
)
def test_parse_duration_reads_its_dialect(text: str, dialect: Dialect, expected: timedelta) -> None:
    assert parse_duration(text, dialect) == expected


@pytest.mark.parametrize(
    ("text", "dialect"),
    [
        ("1h30m", RETENTION),
        ("30s", RETENTION),
        ("3", RETENTION),
        ("2d", ARGO),
        ("1m 30s", ARGO),
        ("m", ARGO),
        ("1h30m", PROMETHEUS),
        ("0s", PROMETHEUS),
        ("30", PROMETHEUS),
        ("500ms", PROMETHEUS),
    ],
)
def test_parse_duration_refuses_what_its_dialect_does_not_allow(text: str, dialect: Dialect) -> None:
    with pytest.raises(ValueError, match=rf"expected a duration such as {dialect.examples} \(got '{text}'\)"):
        parse_duration(text, dialect)
