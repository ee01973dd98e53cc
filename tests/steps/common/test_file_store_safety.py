"""The file store stays inside its root through symlinks, fsyncs what it commits, and removes stale temp files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipelines.tools import REPO_ROOT
from steps.common.storage import StorageError, open_store
from steps.common.storage.file import TMP_MAX_AGE_S, TMP_PREFIX
from tests.fixtures.tools import require_tool


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its content; links are not followed."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def escape(tmp_path):
    """A store whose `out` is a symlinked directory, and `out.png` a symlinked file, both outside its root."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "dir" / "secret.png").write_bytes(b"outside")
    (outside / "file.png").write_bytes(b"outside")
    root = tmp_path / "store"
    root.mkdir()
    (root / "out").symlink_to(outside / "dir")
    (root / "out.png").symlink_to(outside / "file.png")
    store = open_store(f"file://{root}")
    store.put_bytes("in/a.png", b"inside")
    return store, outside


_ESCAPING = ["out/secret.png", "out.png", "out/new.png"]


@pytest.mark.parametrize("key", _ESCAPING)
def test_file_store_symlink_out_of_root_refused(escape, key):
    store, outside = escape
    before = _tree(outside)
    for action in (
        lambda: store.get_bytes(key),
        lambda: store.head(key),
        lambda: store.put_bytes(key, b"overwritten"),
        lambda: store.create_bytes(key, b"created"),
        lambda: store.download_file(key, os.devnull),
    ):
        with pytest.raises(StorageError, match=r"outside the store root") as caught:
            action()
        assert "\n" not in str(caught.value)
    (error,) = store.delete_many([key])
    assert error.code == "InvalidKey" and "outside the store root" in error.message
    assert _tree(outside) == before


def test_file_store_listing_skips_symlinks_out_of_root(escape):
    store, _outside = escape
    assert [o.key for o in store.list()] == ["in/a.png"]
    assert store.list_dirs() == ["in/"]
    with pytest.raises(StorageError, match=r"outside the store root"):
        list(store.list("out"))


def test_file_store_symlink_inside_root_followed(tmp_path):
    store = open_store(f"file://{tmp_path}/store")
    store.put_bytes("real/a.png", b"a")
    (tmp_path / "store" / "alias").symlink_to(tmp_path / "store" / "real")
    (tmp_path / "store" / "b.png").symlink_to(tmp_path / "store" / "real" / "a.png")
    assert store.get_bytes("alias/a.png") == b"a" and store.get_bytes("b.png") == b"a"
    assert [o.key for o in store.list("alias")] == ["alias/a.png"]
    # The root's listing does not descend into the linked directory: each object is listed once.
    assert [o.key for o in store.list()] == ["b.png", "real/a.png"]


def test_file_store_root_behind_a_symlink_works(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    store = open_store(f"file://{tmp_path}/link")
    store.put_bytes("a/b.png", b"b")
    assert store.get_bytes("a/b.png") == b"b" and [o.key for o in store.list()] == ["a/b.png"]


_PUT = """
import sys
from steps.common.storage import open_store
store = open_store("file://" + sys.argv[1])
store.put_bytes("new/dir/a.json", b"{}")
assert store.create_bytes("new/dir/b.json", b"{}")
"""


def test_file_store_commit_fsyncs_file_then_directory(tmp_path):
    strace = require_tool("strace")
    log = tmp_path / "strace.log"
    root = tmp_path / "store"
    command = [str(strace), "-f", "-y", "-qq", "-o", str(log), "-e", "trace=fsync,rename,link"]
    subprocess.run([*command, sys.executable, "-c", _PUT, str(root)], cwd=REPO_ROOT, check=True, timeout=120)
    calls = [
        re.sub(r"^\d+\s+", "", line) for line in log.read_text().splitlines() if "kiosk" in line or "store" in line
    ]
    directory = f"{root}/new/dir"

    def first(pattern: str) -> int:
        return next(i for i, call in enumerate(calls) if re.match(pattern, call))

    for target, verb in (("a.json", "rename"), ("b.json", "link")):
        placed = first(rf"{verb}\(\"{directory}/{TMP_PREFIX}\w+\", \"{directory}/{target}\"")
        temp = re.search(rf"{TMP_PREFIX}\w+", calls[placed]).group()  # type: ignore[union-attr]
        assert first(rf"fsync\(\d+<{directory}/{temp}>\)") < placed, calls
        assert any(re.match(rf"fsync\(\d+<{directory}>\)", c) for c in calls[placed + 1 :]), calls
    # The directories it made are durable in their parents too.
    assert first(rf"fsync\(\d+<{root}/new>\)") < first(rf"rename\(\"{directory}/")
    assert first(rf"fsync\(\d+<{root}>\)") < first(rf"rename\(\"{directory}/")


def test_file_store_write_removes_day_old_temp_files(tmp_path):
    directory = tmp_path / "store" / "results"
    directory.mkdir(parents=True)
    stale, fresh = directory / f"{TMP_PREFIX}crashed", directory / f"{TMP_PREFIX}writing"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    past = time.time() - TMP_MAX_AGE_S - 60
    os.utime(stale, (past, past))
    store = open_store(f"file://{tmp_path}/store")
    assert [o.key for o in store.list()] == []  # hidden from listings, and a listing removes nothing
    assert stale.exists()
    store.put_bytes("results/a.json", b"{}")
    assert not stale.exists() and fresh.exists()
    assert sorted(p.name for p in directory.iterdir()) == sorted(["a.json", fresh.name])


def test_file_store_write_survives_concurrent_prunes(tmp_path):
    # Each writer's delete prunes the directories it emptied, up to the shared `staging/`; a write
    # in a sibling must then remake what it needs, never fail with "No such file or directory".
    store = open_store(f"file://{tmp_path}/store")

    def churn(writer: int) -> int:
        for i in range(400):
            key = f"staging/w{writer}-{i}/g0000/x.json"
            store.put_bytes(key, b"{}")
            assert store.get_bytes(key) == b"{}"
            assert store.delete_many([key]) == []
        return writer

    with ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(churn, range(4))) == [0, 1, 2, 3]
    assert list(store.list()) == []
