"""Random key sets with sibling prefixes and random ages: exactly the expected keys go, on both stores."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steps.cleanup.main import execute
from steps.cleanup.params import CleanupParams

from .cleanup_seed import new_seeded

# Names chosen to collide: siblings of `uploads` that a naive startswith("uploads") would take.
TOPS = ["uploads", "uploads-archive", "uploads2", "upload", "other"]
ROOT_FILES = ["uploads.png", "uploads_", "uploadsZ"]
SUBS = ["", "2024/", "uploads/", "a-b/"]
NAMES = ["x", "y.png", "z-1"]
PREFIXES = ["uploads", " uploads/ ", "/uploads", "uploads2", "upload", "uploads/2024", "other/uploads", "nothing"]
THRESHOLDS = {"3h": timedelta(hours=3), "1d": timedelta(days=1), "3d": timedelta(days=3)}
# Hours, none within minutes of a threshold: LastModified has one-second resolution on S3.
AGES = [timedelta(hours=h) for h in (0.5, 2, 5, 30, 96, 960)]

KEYS = st.one_of(
    st.builds(lambda t, s, n: f"{t}/{s}{n}", st.sampled_from(TOPS), st.sampled_from(SUBS), st.sampled_from(NAMES)),
    st.sampled_from(ROOT_FILES),
)
OBJECTS = st.dictionaries(KEYS, st.tuples(st.sampled_from(AGES), st.integers(1, 9)), min_size=1, max_size=25)


def expected_keys(objects: dict, prefixes: list[str], threshold: timedelta) -> set[str]:
    """The oracle, written independently of steps.cleanup.rules."""
    dirs = [p.strip().strip("/") + "/" for p in prefixes]
    return {k for k, (age, _) in objects.items() if age > threshold and any(k.startswith(d) for d in dirs)}


def params(case, prefixes: list[str], older_than: str, dry_run: bool, **extra) -> CleanupParams:
    return CleanupParams(
        store=case.uri, s3_endpoint=case.endpoint, prefix=prefixes, older_than=older_than, dry_run=dry_run, **extra
    )


@pytest.mark.parametrize("kind", ["file", "s3"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    objects=OBJECTS,
    prefixes=st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=3),
    older_than=st.sampled_from(sorted(THRESHOLDS)),
)
def test_deleted_set_is_exactly_the_expected_set(request, kind, objects, prefixes, older_than) -> None:
    server = request.getfixturevalue("s3_server") if kind == "s3" else None
    case = new_seeded(kind, server)
    try:
        for key, (age, size) in objects.items():
            case.put(key, age, b"b" * size)
        expected = expected_keys(objects, prefixes, THRESHOLDS[older_than])
        expected_bytes = sum(objects[k][1] for k in expected)

        matched: list[str] = []
        dry = execute(
            params(case, prefixes, older_than, True), on_match=lambda p, t, nc: matched.append(t.key), store=case.store
        )
        assert case.keys() == set(objects), "the dry run deleted something"
        assert sorted(matched) == sorted(expected)  # exactly what would go, each key once
        summary = dry.to_dict()
        assert (summary["would_delete"], summary["would_delete_bytes"], summary["deleted"]) == (
            len(expected),
            expected_bytes,
            0,
        )

        # The dry run listed in this process (on_match); the real run shares key ranges between two
        # worker processes, so both ways of running must pick exactly the expected set.
        real = execute(params(case, prefixes, older_than, False, processes=2), store=case.store).to_dict()
        assert case.keys() == set(objects) - expected
        assert (real["deleted"], real["bytes"], real["error_count"], real["exit_code"]) == (
            len(expected),
            expected_bytes,
            0,
            0,
        )
        assert real["scanned"] == dry.to_dict()["scanned"]
        assert sum(p["deleted"] for p in real["per_prefix"].values()) == len(expected)

        again = execute(params(case, prefixes, older_than, False), store=case.store).to_dict()
        assert again["deleted"] == 0 and case.keys() == set(objects) - expected
    finally:
        case.close()
