"""Key ranges: however a prefix is cut, the ranges list every key exactly once, in order, on both
stores (and every version, on a versioned bucket); and a run in worker processes deletes exactly
what a run in one process deletes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steps.cleanup import passes, ranges
from steps.cleanup.main import execute
from steps.cleanup.params import CleanupParams
from steps.cleanup.ranges import WHOLE, KeyRange, clip, plan
from steps.cleanup.report import Tally
from steps.cleanup.sources import CurrentObjects
from steps.common.storage.s3_versions import list_version_pages

from .cleanup_seed import emulator_clock, new_seeded

# Segments that sort around '/' ('-' and '.' before it, 'Z' and '_' after): a range cut at a
# directory must still not split or lose the keys that sort next to that directory.
SEGMENTS = ["a", "a-b", "a.png", "a/b", "aZ", "a_", "b", "b/c/d", "z"]
TOPS = ["uploads", "uploads/x", "uploads-x"]
KEYS = st.builds(lambda top, seg: f"{top}/{seg}", st.sampled_from(TOPS), st.sampled_from(SEGMENTS))
OLD, YOUNG = timedelta(days=10), timedelta(hours=1)


def storable(keys: set[str]) -> bool:
    """A file store cannot hold `a` as a file and as a directory (`a/b`) at once."""
    return not any(other.startswith(key + "/") for key in keys for other in keys)


def listed(store, prefix: str, span: KeyRange, page_size: int) -> list[str]:
    return [o.key for page in clip(store.list_pages(prefix, page_size, start_after=span.after), span) for o in page]


@pytest.mark.parametrize("kind", ["file", "s3"])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keys=st.sets(KEYS, min_size=1, max_size=20).filter(storable),
    parts=st.integers(1, 8),
    page_size=st.sampled_from([1, 2, 1000]),
    prefix=st.sampled_from(["uploads", "uploads/x", ""]),
)
def test_ranges_list_every_key_exactly_once(request, kind, keys, parts, page_size, prefix) -> None:
    case = new_seeded(kind, request.getfixturevalue("s3_server") if kind == "s3" else None)
    try:
        for key in keys:
            case.put(key, OLD)
        whole = listed(case.store, prefix, WHOLE, 1000)
        assert whole == sorted(k for k in keys if k.startswith(prefix + "/" if prefix else ""))
        spans = plan(case.store, prefix, parts)
        assert len(spans) <= max(parts, 1)
        assert spans[0].after == "" and spans[-1].upto is None
        assert all(a.upto == b.after for a, b in pairwise(spans))  # contiguous
        pieces = [listed(case.store, prefix, span, page_size) for span in spans]
        assert [k for piece in pieces for k in piece] == whole
    finally:
        case.close()


class Dirs:
    def __init__(self, dirs: list[str]) -> None:
        self.dirs = dirs
        self.asked: list[str] = []

    def list_dirs(self, prefix: str = "", limit: int = 1000) -> list[str]:
        self.asked.append(prefix)
        inside = [d[len(prefix) :] for d in self.dirs if d.startswith(prefix) and d != prefix]
        return [prefix + d for d in inside if d.count("/") == 1][:limit]


def test_plan_cuts_at_evenly_spaced_directories_and_descends_single_ones() -> None:
    tree = Dirs(["u/2026/"] + [f"u/2026/{m:02d}/" for m in range(1, 13)])
    spans = plan(tree, "u/", 4)
    assert tree.asked == ["u/", "u/2026/"]
    assert spans == [
        KeyRange("", "u/2026/04/"),
        KeyRange("u/2026/04/", "u/2026/07/"),
        KeyRange("u/2026/07/", "u/2026/10/"),
        KeyRange("u/2026/10/", None),
    ]
    assert plan(tree, "u/", 100) == [KeyRange("", "u/2026/02/")] + [
        KeyRange(f"u/2026/{m:02d}/", f"u/2026/{m + 1:02d}/") for m in range(2, 12)
    ] + [KeyRange("u/2026/12/", None)]
    assert plan(Dirs([]), "u/", 4) == [WHOLE]  # a flat prefix is one range
    assert plan(tree, "u/", 1) == [WHOLE]


def test_a_task_deletes_no_more_than_its_count_pass_found() -> None:
    case = new_seeded("file", None)
    try:
        for key in ("uploads/a", "uploads/b", "uploads/c"):
            case.put(key, OLD)
        task = passes.Task("uploads/")
        settings_ = passes.Settings(dry_run=False, max_deletes=10)
        tally = passes.delete([CurrentObjects(case.store)], task, datetime.now(UTC), settings_, passes.Budget(2, 0))
        assert (tally.counts.deleted, case.keys()) == (2, {"uploads/c"})
        assert tally.notes and "stopped at that count" in tally.notes[0]
    finally:
        case.close()


def params(case, processes: int, older_than: str = "1d", **extra) -> CleanupParams:
    return CleanupParams(
        store=case.uri,
        s3_endpoint=case.endpoint,
        prefix=["uploads", "other"],
        older_than=older_than,
        dry_run=False,
        processes=processes,
        **extra,
    )


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_worker_processes_delete_exactly_what_one_process_deletes(request, kind) -> None:
    server = request.getfixturevalue("s3_server") if kind == "s3" else None
    layout = {
        f"{top}/{d}/{n}": (OLD if (i + n) % 3 else YOUNG)
        for top in ("uploads", "other", "uploads-x")
        for i, d in enumerate("abcdefgh")
        for n in range(4)
    }
    layout |= {"uploads/flat": OLD, "uploads/b.png": OLD, "other/zz": YOUNG}
    results = {}
    for processes in (1, 3):
        case = new_seeded(kind, server)
        try:
            for key, age in layout.items():
                case.put(key, age, b"123")
            report = execute(params(case, processes), store=case.store).to_dict()
            kept = ("deleted", "bytes", "scanned", "per_prefix", "exit_code")
            results[processes] = (case.keys(), {k: v for k, v in report.items() if k in kept})
            assert report["processes"] == processes
            # One process lists each prefix whole; three share key ranges of them.
            assert report["ranges"] == 2 if processes == 1 else report["ranges"] > 2, report
            assert report["peak_rss_mb"] > 0
        finally:
            case.close()
    expected = {k for k, age in layout.items() if age == YOUNG or k.startswith("uploads-x/")}
    assert results[1][0] == results[3][0] == expected
    assert results[1][1] == results[3][1]


def test_versions_are_purged_alike_by_worker_processes(s3_server) -> None:
    results = []
    for processes in (1, 2):
        case = new_seeded("s3", s3_server, versioned=True)
        try:
            for d in "abcdef":
                for age_days in (9, 5, 2):
                    with emulator_clock(datetime.now(UTC) - timedelta(days=age_days)):
                        case.store.put_bytes(f"uploads/{d}/k", b"v" * age_days)
            report = execute(params(case, processes, "3d", purge_noncurrent=True), store=case.store).to_dict()
            left = [(v.key, v.size) for page in list_version_pages(case.store, "uploads") for v in page]  # type: ignore[arg-type]
            results.append((report["per_prefix"]["uploads/"], sorted(left)))
            # Two processes: uploads/ in 6 key ranges (one per directory) and other/ whole, plus
            # one task per prefix for its versions.
            assert (report["processes"], report["ranges"]) == ((1, 2) if processes == 1 else (2, 6 + 1 + 1 + 1))
        finally:
            case.close()
    # Per key: v(9d), noncurrent since 5d ago, is purged; v(5d), since 2d, stays; v(2d) is current.
    assert results[0][0]["noncurrent_deleted"] == 6 and results[0][0]["deleted"] == 0
    assert results[0][1] == sorted((f"uploads/{d}/k", s) for d in "abcdef" for s in (2, 5))
    assert results[0] == results[1]


def test_tallies_merge_into_the_report() -> None:
    from steps.cleanup.report import PrefixReport, Report

    report = Report("s3://b", "1d", "c", False, 10, per_prefix={"u/": PrefixReport()})
    for pid, rss in ((11, 50.0), (12, 60.0), (11, 55.0)):
        tally = Tally("u/", worker=(pid, rss))
        tally.counts.matched = 2
        tally.add_deleted(2, 20, noncurrent=False)
        tally.add_error("u/x", "AccessDenied", "no")
        report.merge(tally)
    assert (report.per_prefix["u/"].deleted, report.per_prefix["u/"].bytes, report.error_count) == (6, 60, 3)
    assert report.would_delete == 6 and len(report.errors) == 3
    assert report.worker_rss_mb == {11: 55.0, 12: 60.0}
    assert KeyRange("", None) == ranges.WHOLE
