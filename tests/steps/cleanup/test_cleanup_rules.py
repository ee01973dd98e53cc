"""The safety rules, property-tested without a store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steps.cleanup.rules import (
    check_threshold,
    duration_flag,
    in_prefix,
    is_expired,
    normalise_prefix,
    normalise_prefixes,
)
from steps.common.errors import StepError

SEGMENT = st.text(alphabet="abcxyz-_.0129", min_size=1, max_size=6).filter(lambda s: s not in {".", ".."})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("36h", timedelta(hours=36)),
        ("3d", timedelta(days=3)),
        (" 7d ", timedelta(days=7)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert duration_flag(text) == expected


@pytest.mark.parametrize("text", ["", "0d", "3", "d", "1.5h", "-1h", "3 days", "3D", "3w", "1h30m", "01h"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(StepError, match="--older-than"):
        duration_flag(text)


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["m", "h", "d"]))
def test_duration_round_trip(n: int, unit: str) -> None:
    seconds = {"m": 60, "h": 3600, "d": 86400}[unit]
    assert duration_flag(f"{n}{unit}").total_seconds() == n * seconds


def test_sub_hour_threshold_needs_force() -> None:
    with pytest.raises(StepError, match="under 1 hour"):
        check_threshold(duration_flag("59m"), force=False)
    check_threshold(duration_flag("59m"), force=True)
    check_threshold(duration_flag("60m"), force=False)


@given(st.lists(SEGMENT, min_size=1, max_size=4), st.text(" \t\n", max_size=2), st.booleans(), st.booleans())
def test_prefix_is_always_one_directory(segments: list[str], space: str, lead: bool, trail: bool) -> None:
    raw = space + ("/" if lead else "") + "/".join(segments) + ("/" if trail else "") + space
    assert normalise_prefix(raw) == "/".join(segments) + "/"


@given(st.lists(SEGMENT, min_size=1, max_size=3), SEGMENT, st.text(alphabet="abc-_.0129/", max_size=8))
def test_prefix_never_matches_siblings(segments: list[str], tail: str, rest: str) -> None:
    prefix = normalise_prefix("/".join(segments))
    base = prefix[:-1]
    # Everything that shares the name but is not inside the directory.
    for sibling in (base + tail, base + "-archive/" + rest, base + "2/" + rest, base + ".png", base, prefix):
        assert not in_prefix(sibling, prefix), sibling
    assert in_prefix(prefix + tail + rest, prefix)


def test_issue_examples() -> None:
    prefix = normalise_prefix(" uploads ")
    assert prefix == "uploads/"
    assert in_prefix("uploads/a.png", prefix)
    assert in_prefix("uploads/deep/er/a.png", prefix)
    for key in ("uploads-archive/a.png", "uploads2/a.png", "uploads.png", "uploads", "uploads/"):
        assert not in_prefix(key, prefix)


@pytest.mark.parametrize("raw", ["", " ", "/", "//", " / "])
def test_bucket_root_is_refused(raw: str) -> None:
    with pytest.raises(StepError, match="whole bucket"):
        normalise_prefixes([raw], allow_bucket_root=False)
    assert normalise_prefixes([raw], allow_bucket_root=True) == ([""], {})


@pytest.mark.parametrize("raw", ["a/../b", "./a", "a/."])
def test_dot_segments_are_refused(raw: str) -> None:
    with pytest.raises(StepError, match="--prefix"):
        normalise_prefix(raw)


def test_nested_and_duplicate_prefixes_collapse() -> None:
    kept, covered = normalise_prefixes(["b/x", "a", "a/", "b", "a/deep/er", "ab"], allow_bucket_root=False)
    assert kept == ["a/", "b/", "ab/"]
    assert covered == {"b/x/": "b/", "a/deep/er/": "a/"}


@given(
    st.lists(st.lists(SEGMENT, min_size=1, max_size=3).map("/".join), min_size=1, max_size=6),
    st.lists(st.lists(SEGMENT, min_size=1, max_size=4).map("/".join), max_size=20),
)
def test_collapsing_keeps_the_same_keys_and_counts_none_twice(raws: list[str], keys: list[str]) -> None:
    kept, covered = normalise_prefixes(raws, allow_bucket_root=False)
    wanted = {k for k in keys if any(in_prefix(k, normalise_prefix(r)) for r in raws)}
    for key in keys:
        assert sum(in_prefix(key, p) for p in kept) <= 1
    assert {k for k in keys if any(in_prefix(k, p) for p in kept)} == wanted
    assert set(kept) | set(covered) == {normalise_prefix(r) for r in raws}


def test_age_is_strict() -> None:
    cutoff = datetime(2026, 1, 1, tzinfo=UTC)
    assert is_expired(cutoff - timedelta(microseconds=1), cutoff)
    assert not is_expired(cutoff, cutoff)
