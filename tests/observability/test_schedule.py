"""The cron period behind "no successful retention run for N schedule periods"."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipelines.observability.schedule import period, union_period

H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 3 * * *", 24 * H),
        ("*/15 * * * *", timedelta(minutes=15)),
        ("0 */6 * * *", 6 * H),
        ("0 3 * * 1-5", 72 * H),  # Friday 03:00 to Monday 03:00
        ("0 3 * * 0,3", 4 * 24 * H),  # Wednesday to Sunday
        ("30 1,13 * * *", 12 * H),
        ("@weekly", 7 * 24 * H),
        ("@daily", 24 * H),
    ],
)
def test_period(expression: str, expected: timedelta) -> None:
    assert period(expression) == expected


@pytest.mark.parametrize("bad", ["0 3 * *", "61 * * * *", "0 3 1 * *", "*/0 * * * *"])
def test_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="cron"):
        period(bad)


def test_union_is_bounded_by_the_most_frequent() -> None:
    assert union_period(["0 3 * * *", "0 */6 * * *"]) == 6 * H
