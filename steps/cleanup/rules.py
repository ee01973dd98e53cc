"""What may be deleted: durations, prefixes as directories, and the age test.

Pure functions, no I/O: every safety rule of the cleanup lives here so that it can be
property-tested without a store.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from steps.cleanup import params
from steps.common.durations import parse_duration
from steps.common.errors import StepError

MIN_THRESHOLD = timedelta(hours=1)


def duration_flag(text: str, flag: str = "--older-than") -> timedelta:
    """A retention duration given as `flag`; a bad one is the step's one-line error naming the flag."""
    try:
        return parse_duration(text)
    except ValueError as error:
        raise StepError(f"{flag}: {error}") from None


def check_threshold(age: timedelta, force: bool) -> None:
    # A sub-hour threshold is almost always a unit typo (`30m` meant `30d`) and would delete
    # objects that other steps are still writing or reading.
    if age < MIN_THRESHOLD and not force:
        raise StepError(f"--older-than: {age} is under 1 hour; pass --force if that is really meant")


def normalise_prefix(raw: str) -> str:
    try:
        return params.normalise_prefix(raw)
    except ValueError as error:
        raise StepError(f"--prefix: {error}") from None


def normalise_prefixes(raws: Iterable[str], allow_bucket_root: bool) -> tuple[list[str], dict[str, str]]:
    """The prefixes to clean, plus {dropped prefix: the prefix that already covers it}.

    Duplicates and prefixes nested in another one are dropped so that no key is counted (or
    deleted) twice and `per_prefix` adds up to the totals.
    """
    normalised: list[str] = []
    for raw in raws:
        prefix = normalise_prefix(raw)
        if prefix == "" and not allow_bucket_root:
            raise StepError(
                f"--prefix: {raw!r} means the whole bucket; refused (pass --allow-bucket-root if that is really meant)"
            )
        normalised.append(prefix)
    if not normalised:
        raise StepError("--prefix: at least one prefix is required")
    kept: list[str] = []
    covered: dict[str, str] = {}
    # Shortest first, so an outer prefix is kept before the ones nested in it.
    for prefix in sorted(dict.fromkeys(normalised), key=lambda p: (len(p), p)):
        outer = next((k for k in kept if prefix.startswith(k)), None)
        if outer is None:
            kept.append(prefix)
        else:
            covered[prefix] = outer
    order = {p: i for i, p in enumerate(dict.fromkeys(normalised))}
    kept.sort(key=order.__getitem__)
    return kept, covered


def in_prefix(key: str, prefix: str) -> bool:
    """True when `key` lies strictly inside the directory `prefix` (normalised, '' = root).

    The directory marker itself (`uploads/`) is not inside: deleting it would remove the folder
    that the rule names, which is not an object the rule is about.
    """
    return key.startswith(prefix) and len(key) > len(prefix)


def is_expired(last_modified: datetime, cutoff: datetime) -> bool:
    """Strictly older than the cutoff: an object written exactly at the cutoff stays."""
    return last_modified < cutoff


def cutoff_for(now: datetime, age: timedelta) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now - age
