"""S3Store's bulk GET/PUT path through obstore (`bulk_client="obstore"`, steps/common/storage/s3_bulk.py)
keeps the storage contract of the boto3 path: same bytes, same errors and messages, same retry
budget, over real HTTP on the S3 emulator and through the fault proxy.
"""

from __future__ import annotations

import os

import obstore
import pytest

from steps.common.storage import NotFound, StorageError, open_store


@pytest.fixture
def spy(monkeypatch) -> dict:
    """Counts calls that reach obstore (real calls, passed through)."""
    calls = {"get": 0, "put": 0}
    real_get, real_put = obstore.get, obstore.put

    def get(*args, **kwargs):
        calls["get"] += 1
        return real_get(*args, **kwargs)

    def put(*args, **kwargs):
        calls["put"] += 1
        return real_put(*args, **kwargs)

    monkeypatch.setattr(obstore, "get", get)
    monkeypatch.setattr(obstore, "put", put)
    return calls


def _store(bucket, root: str = "b", **kwargs):
    return open_store(f"{bucket.uri}/{root}", s3_endpoint=bucket.endpoint, bulk_client="obstore", **kwargs)


def test_roundtrip_ranges_types_and_missing_keys_go_through_obstore(s3_bucket, spy):
    store = _store(s3_bucket)
    boto = open_store(f"{s3_bucket.uri}/b", s3_endpoint=s3_bucket.endpoint)
    data = os.urandom(70_000)
    store.put_bytes("x/one.bin", data, content_type="image/png")
    assert store.get_bytes("x/one.bin") == data == boto.get_bytes("x/one.bin")
    assert store.get_bytes("x/one.bin", length=100) == data[:100]
    assert store.get_bytes("x/one.bin", length=0) == b""
    boto.put_bytes("x/two.bin", b"from boto3")
    assert store.get_bytes("x/two.bin") == b"from boto3"
    with pytest.raises(NotFound, match=r"object not found: s3://.*/b/x/missing\.bin"):
        store.get_bytes("x/missing.bin")
    assert spy == {"get": 4, "put": 1}  # every bulk call went through obstore (length=0 makes none)
    assert boto.head("x/one.bin").size == len(data)


@pytest.mark.parametrize("kind", ["503", "500", "reset", "reset-after", "truncate"])
def test_transient_faults_fall_back_to_boto3_and_nothing_is_lost(faulty_s3, spy, kind):
    store = _store(faulty_s3, max_attempts=5)
    faulty_s3.proxy.fail_every(3, kind)
    payloads = {f"obj/{i:02d}": os.urandom(2000 + i) for i in range(8)}
    for key, data in payloads.items():
        store.put_bytes(key, data)
    read = {key: store.get_bytes(key) for key in payloads}
    assert faulty_s3.proxy.injected >= 3
    faulty_s3.proxy.clear()
    assert read == payloads and spy["get"] == 8 and spy["put"] == 8


def test_persistent_5xx_costs_max_attempts_requests_in_all(faulty_s3):
    faulty_s3.proxy.fail_every(1, "503")
    store = _store(faulty_s3, max_attempts=3)
    before = faulty_s3.proxy.requests
    with pytest.raises(StorageError, match=rf"{faulty_s3.uri}/b/k"):
        store.put_bytes("k", b"x")
    assert faulty_s3.proxy.requests - before == 3
    with pytest.raises(StorageError, match=rf"{faulty_s3.uri}/b/k"):
        store.get_bytes("k")
    assert faulty_s3.proxy.requests - before == 6


def test_access_denied_missing_bucket_and_unreachable_keep_their_messages(faulty_s3, s3_server):
    faulty_s3.proxy.fail_every(1, "403")
    with pytest.raises(StorageError, match="access denied: cannot read"):
        _store(faulty_s3).get_bytes("k")
    with pytest.raises(StorageError, match="access denied: cannot write"):
        _store(faulty_s3).put_bytes("k", b"x")
    faulty_s3.proxy.clear()
    missing = open_store("s3://no-such-bucket-kiosk/p", s3_endpoint=s3_server.endpoint, bulk_client="obstore")
    for call in (lambda: missing.put_bytes("k", b"x"), lambda: missing.get_bytes("k")):
        with pytest.raises(StorageError, match=r"bucket does not exist: s3://no-such-bucket-kiosk"):
            call()
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gone = open_store("s3://bucket/p", s3_endpoint=f"http://127.0.0.1:{port}", max_attempts=2, bulk_client="obstore")
    with pytest.raises(StorageError, match=r"storage unreachable: .*s3://bucket/p"):
        gone.get_bytes("x")


def test_a_missing_key_costs_one_request(faulty_s3):
    store = _store(faulty_s3)
    before = faulty_s3.proxy.requests
    with pytest.raises(NotFound):
        store.get_bytes("nothing-here")
    assert faulty_s3.proxy.requests - before == 1  # no fallback to boto3 for a plain 404
