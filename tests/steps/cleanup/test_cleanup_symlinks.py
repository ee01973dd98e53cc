"""A real (not dry) cleanup of a file store never deletes outside the store root through a symlink."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from pipelines.tools import REPO_ROOT

_OLD_S = 5 * 24 * 3600


def _old_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"12345")
    past = time.time() - _OLD_S
    os.utime(path, (past, past))


def _tree(root: Path) -> list[str]:
    """Every file and link under `root`, links not followed."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _cleanup(store: Path, prefix: str) -> subprocess.CompletedProcess[str]:
    args = [f"--store=file://{store}", f"--prefix={prefix}", "--older-than=3d", "--dry-run=false"]
    return subprocess.run(
        [sys.executable, "-m", "steps.cleanup", *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )


def test_cleanup_prefix_symlinked_out_of_root_refused(tmp_path):
    outside = tmp_path / "outside"
    _old_file(outside / "precious.png")
    _old_file(tmp_path / "store" / "other" / "old.png")
    (tmp_path / "store" / "uploads").symlink_to(outside)
    before, outside_before = _tree(tmp_path / "store"), _tree(outside)

    done = _cleanup(tmp_path / "store", "uploads")

    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("steps.cleanup: error: "), lines
    assert "outside the store root" in lines[0] and "uploads" in lines[0]
    assert _tree(tmp_path / "store") == before and _tree(outside) == outside_before


def test_cleanup_links_out_of_root_inside_a_prefix_skipped(tmp_path):
    outside = tmp_path / "outside"
    _old_file(outside / "dir" / "precious.png")
    _old_file(outside / "file.png")
    store = tmp_path / "store"
    _old_file(store / "uploads" / "old.png")
    (store / "uploads" / "linked-dir").symlink_to(outside / "dir")
    (store / "uploads" / "linked-file.png").symlink_to(outside / "file.png")
    outside_before = _tree(outside)

    done = _cleanup(store, "uploads")

    assert done.returncode == 0, done.stderr
    assert "deleted 1 objects" in done.stderr
    assert _tree(store) == ["uploads", "uploads/linked-dir", "uploads/linked-file.png"]
    assert _tree(outside) == outside_before
