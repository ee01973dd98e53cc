"""The benchmarks' bounds: the S3 server's delayed port and the e2e ceilings' arithmetic."""

from __future__ import annotations

import time
import urllib.request

import pytest

from benchmarks import e2e, s3server
from tests.fixtures.tools import require_tool


def _request(url: str, method: str = "GET", data: bytes | None = None) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method), timeout=30) as response:
        return response.read()


def test_gofakes3_slow_endpoint_serves_the_same_objects_after_its_latency():
    server = s3server.GoFakeS3Process(require_tool("gofakes3"), latency_s=0.25)
    try:
        assert server.slow_endpoint.startswith("http://") and server.slow_endpoint != server.endpoint
        _request(f"{server.endpoint}/bucket", "PUT")
        _request(f"{server.endpoint}/bucket/key", "PUT", b"payload")
        start = time.monotonic()
        assert _request(f"{server.slow_endpoint}/bucket/key") == b"payload"
        assert time.monotonic() - start >= 0.25  # the delay is the feature under test, not a speed
        assert _request(f"{server.endpoint}/bucket/key") == b"payload"
    finally:
        server.close()


def test_gofakes3_without_latency_has_no_slow_endpoint():
    server = s3server.GoFakeS3Process(require_tool("gofakes3"))
    try:
        assert server.slow_endpoint == ""
    finally:
        server.close()


def _run(workflow_s: float, in_step_s: float) -> dict:
    return {"workflow_seconds": workflow_s, "in_step_seconds": in_step_s, "processed": 640}


def test_e2e_bounds_take_the_least_fixed_cost_of_all_rounds():
    rounds = e2e.Rounds(kiosk_p1=[_run(40, 34), _run(41, 33)], kiosk_p2=[_run(38, 33)])
    got = e2e.bounds(rounds, limit=20.0, ray=8.0)
    assert got["workflow_fixed_seconds"] == 5.0
    assert got["e2e_vs_work_conserving_bound"] == pytest.approx(32 / 37, abs=1e-3)
    assert got["e2e_vs_ray_bound"] == 2.5


def test_e2e_bounds_without_ray_leave_its_bound_out():
    got = e2e.bounds(e2e.Rounds(kiosk_p1=[_run(10, 10)]), limit=64.0, ray=None)
    assert got["e2e_vs_ray_bound"] is None and got["e2e_vs_work_conserving_bound"] == 1.0
