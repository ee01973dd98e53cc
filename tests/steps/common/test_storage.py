"""The storage API, run the same way on the file store and over real HTTP on the S3 emulator."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from steps.cleanup.main import check_clock
from steps.common.errors import StepError
from steps.common.storage import NotFound, StorageError, StorageUnavailable, open_store, split_uri


def _open(case, root: str = "", **kwargs):
    uri = case.uri + (f"/{root}" if root else "")
    return open_store(uri, s3_endpoint=case.endpoint, **kwargs)


def test_put_get_head_roundtrip(store_case):
    store = _open(store_case)
    assert store.head("a/b.bin") is None and not store.exists("a/b.bin")
    store.put_bytes("a/b.bin", b"hello", content_type="application/octet-stream")
    store.put_bytes("a/b.bin", b"hello world")  # overwrite replaces the whole object
    assert store.get_bytes("a/b.bin") == b"hello world"
    info = store.head("a/b.bin")
    assert info is not None and info.key == "a/b.bin" and info.size == 11 and info.etag
    assert info.last_modified.tzinfo is not None
    assert abs(info.last_modified - datetime.now(UTC)) < timedelta(minutes=5)
    assert store.exists("a/b.bin") and not store.exists("a")
    with pytest.raises(NotFound, match=r"missing\.bin"):
        store.get_bytes("a/missing.bin")


def test_listing_is_ordered_paginated_and_prefixes_are_directories(store_case):
    store = _open(store_case, "root")
    keys = ["uploads/a.png", "uploads/sub/b.png", "uploads/c.png", "uploads2/x.png", "uploads.png", "up/z"]
    for key in keys:
        store.put_bytes(key, key.encode())
    _open(store_case).put_bytes("outside.png", b"not under root")

    expected = sorted(k for k in keys if k.startswith("uploads/"))
    for prefix in ("uploads", "uploads/", "/uploads/"):
        assert [o.key for o in store.list(prefix)] == expected
    assert [o.key for o in store.list()] == sorted(keys)
    assert [o.size for o in store.list("uploads")] == [len(k) for k in expected]
    pages = list(store.list_pages("", page_size=4))
    assert [len(p) for p in pages] == [4, 2]
    assert [o.key for page in pages for o in page] == sorted(keys)
    assert list(store.list("nothing-here")) == []


def test_file_store_order_matches_s3_key_order(tmp_path):
    # '-' sorts before '/', so a depth-first walk by directory name would put 'a/x' first.
    store = open_store(f"file://{tmp_path}")
    for key in ["a/x", "a-b", "a.c/y", "a0"]:
        store.put_bytes(key, b"1")
    assert [o.key for o in store.list()] == sorted(["a/x", "a-b", "a.c/y", "a0"])


def test_delete_many_deletes_and_reports_bad_keys(store_case):
    store = _open(store_case, "p")
    for i in range(5):
        store.put_bytes(f"d/{i}.txt", b"x")
    errors = store.delete_many(["d/0.txt", "d/1.txt", "d/never-existed", "../escape"])
    assert [(e.key, e.code) for e in errors] == [("../escape", "InvalidKey")]
    assert [o.key for o in store.list("d")] == ["d/2.txt", "d/3.txt", "d/4.txt"]
    assert store.delete_many([f"d/{i}.txt" for i in range(2, 5)]) == []
    assert list(store.list()) == []


def test_delete_many_batches_by_1000(faulty_s3):
    store = open_store(faulty_s3.uri, s3_endpoint=faulty_s3.endpoint)
    store.put_bytes("k/0", b"x")
    before = faulty_s3.proxy.requests
    assert store.delete_many([f"k/{i}" for i in range(2001)]) == []
    assert faulty_s3.proxy.requests - before == 3
    assert not store.exists("k/0")


def test_server_time_is_the_clock_that_stamps_last_modified(store_case):
    """What retention relies on: ages are server_time() - last_modified, so a just-written object is
    about 0 s old by the store's own clock (S3's Date header and LastModified have 1 s resolution).
    """
    store = _open(store_case)
    store.put_bytes("fresh.bin", b"x")
    written = store.head("fresh.bin").last_modified
    age = store.server_time() - written
    assert written.tzinfo is not None and timedelta(seconds=-1) <= age < timedelta(seconds=5), age


@pytest.mark.parametrize("skew", [timedelta(minutes=10), -timedelta(minutes=10)])
def test_a_node_clock_off_from_the_stores_fails_the_cleanup_check(store_case, skew):
    """check_clock compares the node's clock with the store's: a node running ahead (or behind) would
    see every object older (or younger) than it is, and deletes the wrong ones.
    """
    store = _open(store_case)
    assert check_clock(store, timedelta(minutes=1)) - datetime.now(UTC) < timedelta(minutes=1)
    with pytest.raises(StepError, match=r"^clock skew: .* more than --clock-skew-margin=0:01:00"):
        check_clock(store, timedelta(minutes=1), clock=lambda: datetime.now(UTC) + skew)


def test_uri_for_reopens_the_object(store_case):
    store = _open(store_case, "nested/root")
    store.put_bytes("x/y.txt", b"payload")
    uri = store.uri_for("x/y.txt")
    assert uri.endswith("/nested/root/x/y.txt")
    parent, key = split_uri(uri)
    assert open_store(parent, s3_endpoint=store_case.endpoint).get_bytes(key) == b"payload"


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/./b", "", "dir/"])
def test_invalid_keys_are_rejected(store_case, key):
    with pytest.raises(StorageError, match="invalid object key"):
        _open(store_case).put_bytes(key, b"x")


def test_file_writes_are_atomic_and_temp_files_hidden(tmp_path, monkeypatch):
    store = open_store(f"file://{tmp_path}")
    store.put_bytes("a/old.txt", b"old")
    (tmp_path / "a" / ".kiosk-tmp-inflight").write_bytes(b"partial")
    assert [o.key for o in store.list()] == ["a/old.txt"]

    def crash(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError, match="No space left"):
        store.put_bytes("a/old.txt", b"new")
    monkeypatch.undo()
    assert store.get_bytes("a/old.txt") == b"old"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [".kiosk-tmp-inflight", "old.txt"]


def test_file_uri_expands_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KIOSK_WORKDIR", str(tmp_path))
    open_store("file://$KIOSK_WORKDIR/store/uploads").put_bytes("a.txt", b"1")
    assert (tmp_path / "store" / "uploads" / "a.txt").read_bytes() == b"1"
    monkeypatch.delenv("KIOSK_WORKDIR")
    with pytest.raises(StorageError, match=r"\$KIOSK_WORKDIR is not set"):
        open_store("file://${KIOSK_WORKDIR}/store")


@pytest.mark.parametrize(
    ("uri", "message"),
    [("file://relative/dir", "absolute path"), ("gs://bucket/x", "unsupported"), ("s3://Bad_Bucket!/x", "bucket")],
)
def test_bad_uris_are_one_line_errors(uri, message):
    with pytest.raises(StorageError, match=message) as error:
        open_store(uri)
    assert uri in str(error.value) and "\n" not in str(error.value)


# --- failures of the S3 path -------------------------------------------------------------------------


def test_missing_bucket_names_the_uri(s3_server):
    store = open_store("s3://no-such-bucket-kiosk/p", s3_endpoint=s3_server.endpoint)
    for call in (lambda: list(store.list()), store.server_time, lambda: store.put_bytes("k", b"x")):
        with pytest.raises(StorageError, match=r"bucket does not exist: s3://no-such-bucket-kiosk"):
            call()


def test_unreachable_endpoint_is_a_storage_error():
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = open_store("s3://bucket/p", s3_endpoint=f"http://127.0.0.1:{port}", max_attempts=2)
    with pytest.raises(StorageUnavailable, match=r"storage unreachable: .*s3://bucket/p") as raised:
        store.get_bytes("x")
    assert raised.value.exit_code == 1  # a retry can help


def test_access_denied_names_the_uri(faulty_s3):
    faulty_s3.proxy.fail_every(1, "403")
    store = open_store(f"{faulty_s3.uri}/in", s3_endpoint=faulty_s3.endpoint)
    with pytest.raises(StorageError, match=rf"access denied: cannot list {faulty_s3.uri}/in"):
        list(store.list())
    with pytest.raises(StorageError, match="access denied"):
        store.head("k")


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("first", "503"),
        ("first", "500"),
        ("first", "reset"),
        ("every", "reset"),
        ("every", "reset-after"),
        ("every", "truncate"),
        ("every", "503"),
    ],
)
def test_transient_faults_are_retried_and_nothing_is_lost(faulty_s3, mode, kind):
    store = open_store(faulty_s3.uri + "/t", s3_endpoint=faulty_s3.endpoint, max_attempts=5)
    if mode == "first":
        faulty_s3.proxy.fail_first(3, kind)
    else:
        faulty_s3.proxy.fail_every(3, kind)
    payloads = {f"obj/{i:02d}": os.urandom(2000 + i) for i in range(8)}
    for key, data in payloads.items():
        store.put_bytes(key, data)
    listed = [o.key for o in store.list("obj", page_size=5)]
    read = {key: store.get_bytes(key) for key in payloads}
    infos = [store.head(key) for key in payloads]
    assert faulty_s3.proxy.injected >= 3
    faulty_s3.proxy.clear()
    assert listed == sorted(payloads)
    assert read == payloads
    assert [i.size for i in infos] == [len(d) for d in payloads.values()]
    assert store.delete_many(list(payloads)) == [] and list(store.list()) == []


def test_persistent_5xx_gives_up_with_storage_error(faulty_s3):
    faulty_s3.proxy.fail_every(1, "503")
    store = open_store(faulty_s3.uri, s3_endpoint=faulty_s3.endpoint, max_attempts=2)
    with pytest.raises(StorageError, match=rf"{faulty_s3.uri}/k"):
        store.put_bytes("k", b"x")
    assert faulty_s3.proxy.requests == 2


def test_large_objects_go_through_the_transfer_manager(faulty_s3):
    store = open_store(faulty_s3.uri, s3_endpoint=faulty_s3.endpoint)
    store.multipart_threshold = 5 * 1024 * 1024  # S3's smallest part size
    data = os.urandom(6 * 1024 * 1024)
    before = faulty_s3.proxy.requests
    store.put_bytes("big.bin", data)
    assert faulty_s3.proxy.requests - before == 4  # create, 2 parts, complete
    assert store.get_bytes("big.bin") == data
    assert "-" in store.head("big.bin").etag  # multipart ETags end in -<parts>


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-02T03:04:05.000Z",
        "2026-01-02T03:04:05Z",
        "2026-01-02T03:04:05.123456+00:00",
        "Fri, 02 Jan 2026 03:04:05 GMT",
        "1767323045",
    ],
)
def test_fast_timestamp_parser_agrees_with_botocore(value):
    from botocore.utils import parse_timestamp

    from steps.common.storage.s3 import _timestamp

    assert _timestamp(value) == parse_timestamp(value)
    assert _timestamp(value).utcoffset() is not None


def test_s3_listing_and_head_times_are_aware_and_agree(s3_bucket):
    store = open_store(s3_bucket.uri, s3_endpoint=s3_bucket.endpoint)
    store.put_bytes("t/a.bin", b"x")
    (listed,) = list(store.list("t"))
    head = store.head("t/a.bin")
    assert listed.last_modified.utcoffset() is not None and head.last_modified.utcoffset() is not None
    assert abs((listed.last_modified - head.last_modified).total_seconds()) < 1
