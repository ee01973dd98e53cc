"""Injected failures (5xx, resets, per-key errors, a denied prefix): reruns converge, nothing else is touched."""

from __future__ import annotations

from datetime import timedelta

import pytest

from steps.cleanup.main import execute
from steps.cleanup.params import CleanupParams

from .cleanup_seed import Seeded, new_seeded
from .keyfault_proxy import KeyFaultProxy

OLD, YOUNG = timedelta(days=5), timedelta(hours=1)
DOOMED = [f"uploads/{i:02d}" for i in range(12)] + [f"uploads/deep/{i}" for i in range(3)]
KEPT = ["uploads/young", "uploads-archive/a", "uploads2/a", "uploads.png", "denied/young"]


def seed(case: Seeded) -> None:
    for key in DOOMED:
        case.put(key, OLD, b"abc")
    for key in KEPT:
        case.put(key, YOUNG if "young" in key else OLD, b"keep")
    case.put("denied/old", OLD)


def params(case: Seeded, endpoint: str, prefixes: list[str], attempts: int = 1) -> CleanupParams:
    # One attempt per request by default, so that the step's own per-key retries are what is tested.
    return CleanupParams(
        store=case.uri,
        s3_endpoint=endpoint,
        prefix=prefixes,
        older_than="3d",
        dry_run=False,
        s3_max_attempts=attempts,
        workers=3,
    )


def converge(case: Seeded, endpoint: str, prefixes: list[str], runs: int = 4, attempts: int = 1) -> list[dict]:
    """Run until a run exits 0 (bounded); after every run nothing outside the rule may be gone."""
    reports = []
    for _ in range(runs):
        reports.append(execute(params(case, endpoint, prefixes, attempts)).to_dict())
        assert set(KEPT) <= case.keys(), "a key outside the rule was deleted"
        if reports[-1]["exit_code"] == 0:
            break
    return reports


@pytest.fixture
def s3_case(s3_server):
    case = new_seeded("s3", s3_server)
    seed(case)
    yield case
    case.close()


def test_per_key_errors_are_retried_reported_and_converge(s3_server, s3_case) -> None:
    with KeyFaultProxy(s3_server.endpoint) as proxy:
        proxy.fail_key("uploads/03", "InternalError", "SlowDown")  # transient: resolved within the run
        proxy.fail_key("uploads/05", "AccessDenied")  # permanent: reported, not retried
        proxy.fail_key("uploads/deep/1", *["ServiceUnavailable"] * 6)  # outlasts the run's retries
        reports = converge(s3_case, proxy.url, ["uploads"])
        first = reports[0]
        assert first["exit_code"] == 1
        assert sorted((e["key"], e["code"]) for e in first["errors"]) == [
            ("uploads/05", "AccessDenied"),
            ("uploads/deep/1", "ServiceUnavailable"),
        ]
        assert first["deleted"] == len(DOOMED) - 2 and first["error_count"] == 2
        assert [r["exit_code"] for r in reports[1:]] == [0]
        assert reports[1]["deleted"] == 2
        assert proxy.injected == 9
        assert set(proxy.deletes_forwarded) <= set(DOOMED)
    assert s3_case.keys() == set(KEPT) | {"denied/old"}


@pytest.mark.parametrize("kind", ["503", "reset", "reset-after", "truncate"])
def test_request_failures_converge(s3_server, s3_case, faulty_s3, kind: str) -> None:
    proxy = faulty_s3.proxy
    proxy.fail_every(3, kind)
    # botocore's standard retries (the step's default 5 attempts) absorb failed requests.
    reports = converge(s3_case, faulty_s3.endpoint, ["uploads"], runs=3, attempts=5)
    assert reports[-1]["exit_code"] == 0, reports
    assert proxy.injected > 0
    assert s3_case.keys() == set(KEPT) | {"denied/old"}
    assert sum(r["deleted"] for r in reports) == len(DOOMED)


def test_one_bad_prefix_does_not_stop_the_others(s3_server, s3_case) -> None:
    with KeyFaultProxy(s3_server.endpoint) as proxy:
        proxy.denied_list_prefixes.add("denied/")
        report = execute(params(s3_case, proxy.url, ["denied", "uploads"])).to_dict()
    assert report["exit_code"] == 1
    assert report["per_prefix"]["denied/"]["listing_failed"].startswith("StorageError: access denied")
    assert report["per_prefix"]["uploads/"]["deleted"] == len(DOOMED)
    assert s3_case.keys() == set(KEPT) | {"denied/old"}
    # Once the prefix can be listed again, a rerun finishes the job.
    report = execute(params(s3_case, s3_server.endpoint, ["denied", "uploads"])).to_dict()
    assert (report["exit_code"], report["deleted"]) == (0, 1)
    assert s3_case.keys() == set(KEPT)
