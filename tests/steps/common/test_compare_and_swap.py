"""Store.replace_if (compare-and-swap on an ETag) and ambiguous creates, on the file store and on
two S3 emulators (moto and gofakes3): both answer 412 to a stale If-Match and to If-None-Match: *
on an existing key.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from steps.common.storage import open_store, probe_conditional_writes
from testkit.fault_proxy import FaultProxy


@pytest.fixture(params=["file", "moto", "gofakes3"])
def cas_store(request, tmp_path):
    if request.param == "file":
        return open_store(f"file://{tmp_path}/store")
    server = request.getfixturevalue("s3_server" if request.param == "moto" else "gofakes3_server")
    return open_store(f"s3://{server.create_bucket()}", s3_endpoint=server.endpoint, max_pool_connections=16)


def test_replace_if_current_etag_wins(cas_store):
    assert cas_store.create_bytes("q/claim.json", b"v0")
    first = cas_store.head("q/claim.json")
    assert first is not None
    etag = cas_store.replace_if("q/claim.json", b"v1-longer", etag=first.etag)
    assert etag is not None and etag != first.etag
    assert cas_store.get_bytes("q/claim.json") == b"v1-longer"
    head = cas_store.head("q/claim.json")
    assert head is not None and head.etag == etag  # what a beat returns is what the next beat compares


def test_replace_if_stale_etag_is_refused(cas_store):
    assert cas_store.create_bytes("q/claim.json", b"owner")
    stale = cas_store.head("q/claim.json")
    assert stale is not None
    taker = cas_store.replace_if("q/claim.json", b"superseded", etag=stale.etag)
    assert taker is not None and taker != stale.etag
    assert cas_store.replace_if("q/claim.json", b"owner beat", etag=stale.etag) is None
    assert cas_store.get_bytes("q/claim.json") == b"superseded"
    assert cas_store.replace_if("q/missing.json", b"x", etag=stale.etag) is None
    assert [o.key for o in cas_store.list("q")] == ["q/claim.json"]  # no temporary files left


def test_replace_if_racing_writers_one_wins(cas_store):
    assert cas_store.create_bytes("q/claim.json", b"start")
    start = cas_store.head("q/claim.json")
    assert start is not None
    with ThreadPoolExecutor(8) as pool:
        won = list(
            pool.map(lambda i: cas_store.replace_if("q/claim.json", f"w{i:02d}".encode(), etag=start.etag), range(8))
        )
    winners = [i for i, etag in enumerate(won) if etag is not None]
    assert len(winners) == 1
    assert cas_store.get_bytes("q/claim.json") == f"w{winners[0]:02d}".encode()


@pytest.mark.parametrize("server", ["s3_server", "gofakes3_server"])
def test_create_with_lost_response_is_ours(server, request):
    """The PUT is applied but its response is reset: botocore resends it, gets 412, and the store
    reads the object back instead of reporting a loss.
    """
    upstream = request.getfixturevalue(server)
    bucket = upstream.create_bucket()
    with FaultProxy(upstream.endpoint) as proxy:
        store = open_store(f"s3://{bucket}", s3_endpoint=proxy.url)
        proxy.fail_first(1, "reset-after", methods=("PUT",))
        assert store.create_bytes("q/g0000.json", b"ours, token 1") is True
        assert proxy.injected == 1
        proxy.fail_first(1, "reset-after", methods=("PUT",))
        assert store.create_bytes("q/g0000.json", b"theirs, token 2") is False  # a real loss stays a loss
        assert store.get_bytes("q/g0000.json") == b"ours, token 1"
        head = store.head("q/g0000.json")
        assert head is not None
        proxy.fail_first(1, "reset-after", methods=("PUT",))
        etag = store.replace_if("q/g0000.json", b"beat 1", etag=head.etag)
        assert etag is not None and store.get_bytes("q/g0000.json") == b"beat 1"


def test_probe_retries_transient_errors(s3_server):
    bucket = s3_server.create_bucket()
    with FaultProxy(s3_server.endpoint) as proxy:
        store = open_store(f"s3://{bucket}", s3_endpoint=proxy.url, max_attempts=1)
        proxy.fail_first(3, "503")
        probe_conditional_writes(store, "queue/probe")  # a blip is retried, never "unsupported"
        assert proxy.injected == 3
        assert list(store.list("queue")) == []


def test_probe_refuses_a_server_that_ignores_if_match(s3_server):
    from steps.common.storage import ConditionalWritesUnsupported

    bucket = s3_server.create_bucket()
    with FaultProxy(s3_server.endpoint) as proxy:
        proxy.strip_headers("If-Match")
        store = open_store(f"s3://{bucket}", s3_endpoint=proxy.url)
        with pytest.raises(ConditionalWritesUnsupported, match="stale If-Match succeeded"):
            probe_conditional_writes(store, "queue/probe")
        assert list(store.list("queue")) == []
