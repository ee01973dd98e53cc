"""The bulk GET/PUT path of S3Store through obstore (Rust object_store).

Per small object on the same S3 server (gofakes3 on loopback, 2 cores), single-threaded CPU:
boto3 GET ~1.0-1.4 ms and PUT ~0.8-1.0 ms; obstore GET ~0.21-0.24 ms and PUT ~0.05-0.07 ms, and
it releases the GIL for the whole request. The infer step makes 1 GET and (per-image layout)
2 PUTs per image, so this is most of its storage CPU.

Only the bulk object bytes go through here. boto3 stays the client for everything else (listing,
HEAD, deletes, multipart, conditional writes) and stays the authority on credentials: obstore
asks boto3's credential chain (env, profile, web identity, instance metadata) through a callback.
obstore makes one attempt; any failure other than a plain missing key goes back to the caller,
which repeats the request through boto3, whose retries, error classification and messages are
the storage module's contract (tests/steps/common/test_storage.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import obstore
from obstore.exceptions import BaseError, NotFoundError
from obstore.store import S3Store as _ObjectStore

#: How long obstore may cache credentials before asking boto3 again (boto3 refreshes its own
#: temporary credentials ahead of their expiry).
CREDENTIALS_TTL = timedelta(minutes=5)


class BulkFailed(Exception):
    """obstore could not do it: repeat the request through boto3."""


class Missing(Exception):
    """The key does not exist (HTTP 404 without NoSuchBucket)."""


class ObstoreBulk:
    def __init__(self, bucket: str, *, endpoint: str, region: str, credentials, pool: int) -> None:
        def provide() -> Any:  # obstore's S3Credential TypedDict
            frozen = credentials.get_frozen_credentials()
            return {
                "access_key_id": frozen.access_key,
                "secret_access_key": frozen.secret_key,
                "token": frozen.token,
                "expires_at": datetime.now(UTC) + CREDENTIALS_TTL,
            }

        config: Any = {"region": region or "us-east-1"}  # obstore's S3Config TypedDict
        if endpoint:
            config.update(endpoint=endpoint, virtual_hosted_style_request=False)
        self._store = _ObjectStore(
            bucket,
            config=config,
            client_options={
                "allow_http": endpoint.startswith("http://"),
                "connect_timeout": "10s",
                "timeout": "60s",
                "pool_max_idle_per_host": str(max(pool, 1)),
            },
            retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=60)},
            credential_provider=provide,
        )

    def get(self, key: str, length: int | None = None) -> bytes:
        options: Any = {"range": (0, length)} if length else None  # obstore's GetOptions TypedDict
        try:
            return bytes(obstore.get(self._store, key, options=options).bytes())
        except (NotFoundError, FileNotFoundError) as error:  # obstore raises the builtin for a 404
            if "NoSuchBucket" in str(error):
                raise BulkFailed(str(error)) from None
            raise Missing(key) from None
        except (BaseError, OSError, ValueError) as error:  # HTTP, connection, truncated body, range
            raise BulkFailed(str(error)) from None

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        attributes = {"Content-Type": content_type} if content_type else None
        try:
            obstore.put(self._store, key, data, attributes=attributes, use_multipart=False)
        except (BaseError, OSError, ValueError) as error:
            raise BulkFailed(str(error)) from None
