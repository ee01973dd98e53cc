"""etcd takes only clients whose certificate its own CA signed (the API server's): a process on the
machine without that certificate can neither read nor write the cluster's store.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.error
import urllib.request

import pytest

from pipelines.cluster.pki import EtcdTls, etcd_tls
from tests.cluster.conftest import Cluster


def _tls(cluster: Cluster) -> EtcdTls:
    return etcd_tls(cluster.state.root / "pki")  # made already: this only reads the paths


def _health(cluster: Cluster, context: ssl.SSLContext | None, scheme: str = "https") -> dict[str, str]:
    url = f"{scheme}://127.0.0.1:{cluster.state.ports['etcd']}/health"
    with urllib.request.urlopen(url, context=context, timeout=10) as answer:
        return dict(json.load(answer))


def test_etcd_with_client_certificate_answers(cluster: Cluster) -> None:
    tls = _tls(cluster)
    context = ssl.create_default_context(cafile=str(tls.ca))
    context.load_cert_chain(tls.client_cert, tls.client_key)
    assert _health(cluster, context)["health"] == "true"


def test_etcd_without_client_certificate_refused(cluster: Cluster) -> None:
    context = ssl.create_default_context(cafile=str(_tls(cluster).ca))
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        _health(cluster, context)


def test_etcd_plain_http_refused(cluster: Cluster) -> None:
    with pytest.raises((http.client.HTTPException, urllib.error.URLError, ConnectionError)):
        _health(cluster, None, scheme="http")


def test_etcd_keys_private(cluster: Cluster) -> None:
    tls = _tls(cluster)
    for path in (cluster.state.root / "pki", tls.server_key.parent):
        assert path.stat().st_mode & 0o077 == 0, path
