"""The container's CPU limit, read from cgroup files in the kernel's own formats (v2 and v1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from steps.common import cpus
from steps.infer import model


def _v2(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text(text + "\n")
    return root


def _v1(root: Path, quota: int, period: int) -> Path:
    (root / "cpu").mkdir(parents=True)
    (root / "cpu" / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text(f"{period}\n")
    return root


@pytest.mark.parametrize(("text", "expected"), [("200000 100000", 2), ("150000 100000", 2), ("50000 100000", 1)])
def test_v2_quota_rounds_up_to_whole_cpus(tmp_path, text, expected):
    assert cpus.quota_cpus(_v2(tmp_path, text)) == expected


def test_v2_without_a_limit_is_none(tmp_path):
    assert cpus.quota_cpus(_v2(tmp_path, "max 100000")) is None


def test_v1_quota_and_no_limit(tmp_path):
    assert cpus.quota_cpus(_v1(tmp_path / "a", 400000, 100000)) == 4
    assert cpus.quota_cpus(_v1(tmp_path / "b", -1, 100000)) is None


def test_no_cgroup_files_is_none(tmp_path):
    assert cpus.quota_cpus(tmp_path) is None


def test_ort_threads_follow_the_limit_unless_given(tmp_path, monkeypatch):
    monkeypatch.setattr(cpus, "CGROUP", _v2(tmp_path / "limited", "300000 100000"))
    assert model._options(0).intra_op_num_threads == 3
    assert model._options(5).intra_op_num_threads == 5
    monkeypatch.setattr(cpus, "CGROUP", _v2(tmp_path / "free", "max 100000"))
    assert model._options(0).intra_op_num_threads == 0  # ORT's own default: one per core
