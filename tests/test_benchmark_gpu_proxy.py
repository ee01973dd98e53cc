"""The infer benchmarks run end to end and print the figures docs/benchmarks.md quotes.

Figures are never checked here (speed lives in the benchmarks, not in timed tests): only that
`benchmarks/infer.py` (each section alone) and `benchmarks/gpu.py --device cpu` complete on a few
images and report every documented key with sane values, so a broken benchmark shows in CI rather
than minutes into a hand-run.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipelines.tools import REPO_ROOT
from tests.fixtures.tools import require_tool


def _json(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_gpu_proxy_section_reports_cpu_per_image_against_decode():
    require_tool("gofakes3")
    out = _json("benchmarks/infer.py", "--json", "--gpu-proxy", "only", "--rounds", "1", "--images", "8")
    proxy = out["gpu_proxy"]
    assert proxy["model"] == "free_ppocr_det.onnx" and out["server"].startswith("gofakes3")
    for key in ("decode_ms_per_image", "cpu_ms_per_image", "cpu_ms_per_image_s3", "model_cpu_ms_per_image"):
        assert proxy[key] > 0, key
    # Each ratio agrees with the printed figures up to their rounding (to 3 places).
    decode = proxy["decode_ms_per_image"]
    assert proxy["ratio_vs_decode"] == pytest.approx(proxy["cpu_ms_per_image"] / decode, abs=2e-3)
    assert proxy["ratio_vs_decode_s3"] == pytest.approx(proxy["cpu_ms_per_image_s3"] / decode, abs=2e-3)
    assert proxy["decode_bound_ips"] == pytest.approx(out["cpu_count"] / decode * 1000, rel=1e-3)
    assert 0 < proxy["throughput_vs_decode_bound"] < 1
    stages = proxy["stages_ms"]
    assert set(stages) == {"read", "decode", "resize", "normalise", "model", "postprocess", "encode", "write"}
    assert all(stages[s] > 0 for s in ("decode", "model", "postprocess", "encode", "write")), stages
    # The same up to rounding (stages to 3 places, the limit to 1).
    assert proxy["work_conserving_ips"] == pytest.approx(out["cpu_count"] / sum(stages.values()) * 1000, rel=1e-3)
    assert proxy["throughput_vs_work_conserving"] == pytest.approx(
        proxy["pipeline_ips"] / proxy["work_conserving_ips"], abs=2e-3
    )
    assert proxy["decode_ms_per_image"] <= proxy["pillow_decode_ms_per_image"]
    # The ceiling of the decode-bound ratio is the work-conserving limit over the decode-bound one.
    assert proxy["throughput_vs_decode_bound_bound"] == pytest.approx(
        proxy["work_conserving_ips"] / proxy["decode_bound_ips"], abs=2e-3
    )
    host = sum(stages.values()) - stages["model"] - stages["normalise"]
    assert proxy["stages_outside_model_vs_decode_host"] == pytest.approx(host / decode, abs=2e-3)
    floor = sum(stages[s] for s in ("read", "decode", "encode", "write")) + proxy["components_ms"]
    assert proxy["stages_floor_vs_decode_host"] == pytest.approx(floor / decode, abs=2e-3)
    assert 0 < proxy["components_ms"] < stages["postprocess"]
    # The S3 server shares the cores: its CPU joins the stages in the S3 runs' limit.
    assert proxy["server_cpu_ms_per_image_s3"] > 0
    with_server = out["cpu_count"] / (sum(stages.values()) + proxy["server_cpu_ms_per_image_s3"]) * 1000
    assert proxy["work_conserving_ips_s3"] == pytest.approx(with_server, rel=1e-3)
    assert proxy["throughput_vs_decode_bound_bound_s3"] < proxy["throughput_vs_decode_bound_bound"]
    rounds = proxy["rounds"]
    assert rounds["put_requests_per_image_s3"] == [2.0] and rounds["get_requests_per_image_s3"] == [1.0]
    assert rounds["put_requests_per_image_s3_per_shard"] == [0.25]  # 2 PUTs for the 8-image shard
    assert proxy["request_usd_per_1k_images"]["per-shard"] < proxy["request_usd_per_1k_images"]["per-image"]


def test_gpu_script_runs_on_the_cpu():
    out = _json("benchmarks/gpu.py", "--json", "--device", "cpu", "--images", "8", "--batch-size", "4", "--repeat", "1")
    for model in ("free", "real"):
        figures = out[model]
        assert figures["raw_ips"]["cpu"] > 0 and figures["pipeline_ips"]["cpu"] > 0
        assert figures["providers_cpu"] == ["CPUExecutionProvider"]
        assert figures["ratio_vs_raw"]["cpu"] == round(figures["pipeline_ips"]["cpu"] / figures["raw_ips"]["cpu"], 3)


def test_real_model_section_reports_its_bound_and_the_servers_latency():
    require_tool("gofakes3")
    out = _json("benchmarks/infer.py", "--json", "--gpu-proxy", "off", "--rounds", "1", "--images", "8")
    assert out["latency_added_by"] == "the S3 server (gofakes3's second port)"
    assert 0 < out["ratio_vs_raw_bound"] <= 1 and out["floor_ms_per_image"] > 0
    # The bound is the cores over raw ORT's CPU plus the floor, against raw ORT's rate (to rounding).
    bound = out["cpu_count"] / ((out["raw_cpu_ms_per_image"] + out["floor_ms_per_image"]) / 1000) / out["raw_ort_ips"]
    assert out["ratio_vs_raw_bound"] == pytest.approx(min(1.0, bound), abs=2e-3)
    assert out["latency_hiding"] == pytest.approx(out["pipeline_ips_s3_latency"] / out["pipeline_ips_s3"], abs=2e-3)
