"""Versioned buckets on the S3 emulator: delete markers by default, --purge-noncurrent for old versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from steps.cleanup.main import execute
from steps.cleanup.params import CleanupParams
from steps.common.storage.s3_versions import list_version_pages

from .cleanup_seed import emulator_clock, new_seeded

DAY = timedelta(days=1)
# key -> its history, oldest first: (age, version size) or (age, None) for a delete marker.
HISTORY = {
    "uploads/a": [(10 * DAY, 1), (8 * DAY, 2)],  # current is old -> marker; v1 noncurrent since 8d -> purged
    "uploads/b": [(10 * DAY, 1), (1 * DAY, 2)],  # current is young; v1 noncurrent only since 1d -> kept
    "uploads/c": [(10 * DAY, 1), (5 * DAY, 2), (4 * DAY, 3)],  # v1, v2 purged; v3 -> marker
    "uploads/d": [(10 * DAY, 1), (6 * DAY, None)],  # already deleted 6d ago: v1 purged, the marker stays
    "uploads/e": [(2 * DAY, 1)],
    "uploads-archive/a": [(10 * DAY, 1), (9 * DAY, 2)],  # a sibling: untouched
}


@pytest.fixture
def versioned(s3_server):
    case = new_seeded("s3", s3_server, versioned=True)
    for key, history in HISTORY.items():
        for age, size in history:
            with emulator_clock(datetime.now(UTC) - age):
                if size is None:
                    case.store.delete_many([key])
                else:
                    case.store.put_bytes(key, b"v" * size)
    yield case
    case.close()


def versions(case) -> set[tuple[str, int, bool, bool]]:
    """(key, size, is delete marker, is latest) of every version in the bucket."""
    return {
        (v.key, v.size, v.is_delete_marker, v.is_latest)
        for page in list_version_pages(case.store, "")  # type: ignore[arg-type]
        for v in page
    }


def run(case, purge: bool, dry_run: bool = False) -> dict:
    params = CleanupParams(
        store=case.uri,
        s3_endpoint=case.endpoint,
        prefix=["uploads"],
        older_than="3d",
        dry_run=dry_run,
        purge_noncurrent=purge,
    )
    return execute(params, store=case.store).to_dict()


def test_listing_reconstructs_history(versioned) -> None:
    assert versions(versioned) == {
        (key, size or 0, size is None, i == len(history) - 1)
        for key, history in HISTORY.items()
        for i, (_, size) in enumerate(history)
    }


def test_default_adds_delete_markers_and_says_so(versioned) -> None:
    before = versions(versioned)
    report = run(versioned, purge=False)
    assert report["versioning"] == "Enabled" and "delete markers" in report["notes"][0]
    assert (report["deleted"], report["exit_code"]) == (2, 0)
    assert versioned.keys() == {"uploads/b", "uploads/e", "uploads-archive/a"}
    after = versions(versioned)
    # Nothing was removed: the two old objects became noncurrent under new markers.
    assert {(k, s, m) for k, s, m, _ in before} <= {(k, s, m) for k, s, m, _ in after}
    assert after - before == {
        ("uploads/a", 0, True, True),
        ("uploads/c", 0, True, True),
        ("uploads/a", 2, False, False),
        ("uploads/c", 3, False, False),
    }


def test_purge_noncurrent_removes_versions_noncurrent_longer_than_the_threshold(versioned) -> None:
    dry = run(versioned, purge=True, dry_run=True)
    before = versions(versioned)
    assert sum(p["noncurrent_matched"] for p in dry["per_prefix"].values()) == 4
    assert dry["would_delete"] == 6 and dry["deleted"] == 0

    report = run(versioned, purge=True)
    assert (report["deleted"], report["exit_code"], report["error_count"]) == (6, 0, 0)
    assert report["per_prefix"]["uploads/"]["noncurrent_deleted"] == 4
    assert report["per_prefix"]["uploads/"]["noncurrent_bytes"] == 1 + 1 + 2 + 1
    assert versions(versioned) == {
        ("uploads/a", 2, False, False),
        ("uploads/a", 0, True, True),
        ("uploads/b", 1, False, False),
        ("uploads/b", 2, False, True),
        ("uploads/c", 3, False, False),
        ("uploads/c", 0, True, True),
        ("uploads/d", 0, True, True),
        ("uploads/e", 1, False, True),
        ("uploads-archive/a", 1, False, False),
        ("uploads-archive/a", 2, False, True),
    }
    assert before - versions(versioned) == {
        ("uploads/a", 1, False, False),
        ("uploads/c", 1, False, False),
        ("uploads/c", 2, False, False),
        ("uploads/d", 1, False, False),
        ("uploads/a", 2, False, True),
        ("uploads/c", 3, False, True),
    }
    # A rerun finds nothing more: what was current a moment ago is noncurrent only since now.
    assert run(versioned, purge=True)["deleted"] == 0


def test_version_pages_carry_history_across_page_boundaries(versioned) -> None:
    whole = [v for page in list_version_pages(versioned.store, "uploads") for v in page]  # type: ignore[arg-type]
    paged = [v for page in list_version_pages(versioned.store, "uploads", page_size=1) for v in page]  # type: ignore[arg-type]
    assert paged == whole and len(whole) == 10


def test_versions_written_in_the_same_second_are_never_purged_early(s3_server) -> None:
    # v1 and v2 share a LastModified second, so the listing cannot tell which replaced which:
    # v2 (replaced by v3 only 2 days ago) must stay; v1 stays too, until v3 is older than the threshold.
    case = new_seeded("s3", s3_server, versioned=True)
    try:
        same_second = datetime.now(UTC) - 5 * DAY
        with emulator_clock(same_second):
            case.store.put_bytes("uploads/t", b"v")
            case.store.put_bytes("uploads/t", b"vv")
        with emulator_clock(datetime.now(UTC) - 2 * DAY):
            case.store.put_bytes("uploads/t", b"vvv")
        report = run(case, purge=True)
        assert (report["deleted"], report["exit_code"]) == (0, 0)
        assert versions(case) == {
            ("uploads/t", 1, False, False),
            ("uploads/t", 2, False, False),
            ("uploads/t", 3, False, True),
        }
    finally:
        case.close()
