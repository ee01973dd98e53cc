"""Store.create_bytes (atomic create-if-absent) and the conditional-write probe, on both stores."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from steps.common.storage import ConditionalWritesUnsupported, open_store, probe_conditional_writes, request_counts


def test_create_is_once_and_never_overwrites(store_case):
    store = open_store(store_case.uri, s3_endpoint=store_case.endpoint, max_pool_connections=16)
    assert store.create_bytes("q/a.json", b"first") is True
    assert store.create_bytes("q/a.json", b"second") is False
    assert store.get_bytes("q/a.json") == b"first"
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda i: store.create_bytes("q/race.json", str(i).encode()), range(16)))
    assert won.count(True) == 1
    assert store.get_bytes("q/race.json") == str(won.index(True)).encode()
    assert [o.key for o in store.list("q")] == ["q/a.json", "q/race.json"]  # no temporary files left


def test_probe_passes_and_cleans_up(store_case):
    store = open_store(store_case.uri, s3_endpoint=store_case.endpoint)
    before = request_counts()
    probe_conditional_writes(store, "queue/probe")
    assert list(store.list("queue")) == []
    after = request_counts()
    assert after["PUT"] - before["PUT"] >= 2 and after["GET"] > before["GET"]


class _Careless:
    """A store whose server ignores If-None-Match: every create 'succeeds' and overwrites."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.uri = inner.uri

    def create_bytes(self, key, data, content_type=None):
        self.inner.put_bytes(key, data)
        return True

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_probe_refuses_a_server_that_ignores_the_condition(tmp_path):
    store = _Careless(open_store(f"file://{tmp_path}"))
    with pytest.raises(ConditionalWritesUnsupported, match="ignores conditional writes"):
        probe_conditional_writes(store, "queue/probe")
    assert list(store.list("queue")) == []
