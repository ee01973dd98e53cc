"""A Store on an S3 bucket prefix (AWS, MinIO, Ceph, moto). The only module that imports boto3."""

from __future__ import annotations

import io
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import boto3
import botocore.session
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from botocore.utils import parse_timestamp

from steps.common.storage.base import (
    DeleteError,
    NotFound,
    ObjectInfo,
    StorageError,
    StorageUnavailable,
    Store,
    check_key,
    count_request,
    dir_prefix,
)

#: Above this size a PUT goes through the transfer manager (parallel multipart, per-part retries).
MULTIPART_THRESHOLD = 64 * 1024 * 1024
_DELETE_BATCH = 1000  # the DeleteObjects limit
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_PRECONDITION = {"412", "PreconditionFailed"}
_CONFLICT = {"409", "ConditionalRequestConflict", "OperationAborted"}
#: Server-side trouble that outlived botocore's retries: a later attempt can succeed.
_TRANSIENT = {"500", "502", "503", "504", "InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"}
_DENIED = {"403", "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


def _timestamp(value: object) -> datetime:
    """S3 listings carry ISO-8601 times ("2026-01-02T03:04:05.000Z"): fromisoformat reads them ~20x
    faster than botocore's dateutil-based default, which costs ~0.2 ms per object of a listing.
    Anything else (RFC 1123 headers such as Last-Modified) goes to botocore's own parser.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return parsed
    return parse_timestamp(value)


#: S3's price classes: GET and HEAD are billed as GET; PUT, COPY, POST and LIST as PUT; DELETE is free.
_PRICE_CLASS = {
    "GetObject": "GET",
    "HeadObject": "GET",
    "HeadBucket": "GET",
    "ListObjectsV2": "LIST",
    "ListObjectVersions": "LIST",
    "DeleteObjects": "DELETE",
    "DeleteObject": "DELETE",
}


def _count(model: object = None, **_: object) -> None:
    name = getattr(model, "name", "")
    count_request(_PRICE_CLASS.get(name, "PUT"))


class _Retry(Exception):
    pass


def _retried(error: ClientError) -> bool:
    """True when botocore resent the request: an earlier attempt may have been applied with its response lost."""
    return int(error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0) > 0


def _code(error: ClientError) -> str:
    response = error.response
    return str(response.get("Error", {}).get("Code", "")) or str(
        response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )


class S3Store(Store):
    def __init__(
        self,
        bucket: str,
        prefix: str,
        *,
        endpoint: str = "",
        max_attempts: int = 5,
        max_pool_connections: int = 10,
        bulk_client: str = "boto3",
        timeout_s: float | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = dir_prefix(prefix)
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.max_attempts = max_attempts
        options: dict = {
            "retries": {"mode": "standard", "total_max_attempts": max_attempts},
            "max_pool_connections": max_pool_connections,
            # `timeout_s`: a client whose every call must end well within a deadline (heartbeats
            # under a claim TTL), where the defaults allow minutes per attempt.
            "connect_timeout": timeout_s or 10,
            "read_timeout": timeout_s or 60,
            # Every request is built here from checked values (check_key, dir_prefix; bucket names
            # are still checked by botocore's own handler). The validator walks each of the 1000
            # keys of a DeleteObjects body in Python, about 10 µs per key: 60% of its CPU.
            "parameter_validation": False,
        }
        # botocore's own variables, so a local run can point rendered templates (whose endpoint is
        # fixed from config) at another server without re-rendering; read here so path-style applies.
        endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL", "")
        if endpoint:
            # MinIO/Ceph/moto serve buckets as paths, and several reject the CRC checksums (aws-chunked
            # trailers) boto3 >= 1.36 sends by default: https://github.com/boto/boto3/issues/4398
            options["s3"] = {"addressing_style": "path"}
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        # A session per store: boto3's default session is shared module state and not thread-safe.
        # Its response parsers read listing timestamps with fromisoformat (see _timestamp).
        core = botocore.session.get_session()
        core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
        session = boto3.session.Session(botocore_session=core)
        self._client = session.client("s3", endpoint_url=endpoint or None, config=Config(**options))
        self._client.meta.events.register("before-call.s3", _count)
        self._bulk = None
        if bulk_client == "obstore":
            self._bulk = self._obstore(session, endpoint, max_pool_connections)
            # After a failed obstore attempt, boto3 repeats the request with the rest of the budget,
            # so a persistent failure still costs max_attempts requests in all. Made on first use.
            rest = {**options, "retries": {"mode": "standard", "total_max_attempts": max(1, max_attempts - 1)}}
            self._retry_args = (session, endpoint or None, Config(**rest))
            self._retry: Any = None  # a boto3 client, made on first use
            self._retry_lock = threading.Lock()
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, max_concurrency=max(1, min(max_pool_connections, 10))
        )
        self._where = f"{self.uri}" + (f" (endpoint {endpoint})" if endpoint else "")

    def _obstore(self, session, endpoint: str, pool: int):
        credentials = session.get_credentials()
        if credentials is None:
            return None  # boto3 raises the clear "no S3 credentials" error on the first request
        from steps.common.storage.s3_bulk import ObstoreBulk

        region = self._client.meta.region_name or "us-east-1"
        return ObstoreBulk(self.bucket, endpoint=endpoint, region=region, credentials=credentials, pool=pool)

    def _retry_client(self):
        with self._retry_lock:
            if self._retry is None:
                session, endpoint, config = self._retry_args
                self._retry = session.client("s3", endpoint_url=endpoint, config=config)
                self._retry.meta.events.register("before-call.s3", _count)
            return self._retry

    @property
    def multipart_threshold(self) -> int:
        return self._transfer.multipart_threshold

    @multipart_threshold.setter
    def multipart_threshold(self, size: int) -> None:
        """Tests lower it to S3's 5 MiB minimum part size; parts are then that size too."""
        self._transfer.multipart_threshold = size
        self._transfer.multipart_chunksize = size

    # -- errors ---------------------------------------------------------------------------------------
    @contextmanager
    def _errors(self, what: str, key: str = ""):
        target = self.uri_for(key) if key else self._where
        try:
            yield
        except ClientError as error:
            err = error.response.get("Error", {})
            code = str(err.get("Code", "")) or str(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
            # Requests without a key (list, HEAD bucket) answer a missing bucket with a bare 404.
            if code == "NoSuchBucket" or (code in _NOT_FOUND and not key):
                raise StorageError(f"bucket does not exist: s3://{self.bucket} ({self._where})") from None
            if code in _NOT_FOUND and key:
                raise NotFound(f"object not found: {target}") from None
            if code in _DENIED:
                raise StorageError(f"access denied: cannot {what} {target} ({code})") from None
            kind = StorageUnavailable if code in _TRANSIENT else StorageError
            raise kind(f"cannot {what} {target}: {code}: {err.get('Message', '')}".rstrip(": ")) from None
        except NoCredentialsError:
            raise StorageError(
                f"no S3 credentials for {self._where}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile"
            ) from None
        except (BotoConnectionError, HTTPClientError) as error:
            raise StorageUnavailable(f"storage unreachable: cannot {what} {target}: {error}") from None
        except BotoCoreError as error:
            raise StorageError(f"cannot {what} {target}: {error}") from None

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    # -- Store ----------------------------------------------------------------------------------------
    def list_pages(
        self, prefix: str = "", page_size: int = 1000, *, start_after: str = ""
    ) -> Iterator[list[ObjectInfo]]:
        full = self.prefix + dir_prefix(prefix)
        kwargs = {"Bucket": self.bucket, "Prefix": full, "MaxKeys": min(max(page_size, 1), 1000)}
        if start_after:
            kwargs["StartAfter"] = self.prefix + start_after
        cut = len(self.prefix)
        while True:
            with self._errors("list"):
                response = self._client.list_objects_v2(**kwargs)
            page = [
                ObjectInfo(
                    key=item["Key"][cut:],
                    size=item["Size"],
                    etag=item.get("ETag", "").strip('"'),
                    last_modified=item["LastModified"].astimezone(UTC),
                )
                for item in response.get("Contents", [])
                if not item["Key"].endswith("/")  # "directory marker" objects made by consoles
            ]
            if page:
                yield page
            if not response.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = response["NextContinuationToken"]

    def list_dirs(self, prefix: str = "", limit: int = 1000) -> list[str]:
        # One request: the first page of a delimited listing is enough for a hint.
        full = self.prefix + dir_prefix(prefix)
        with self._errors("list"):
            response = self._client.list_objects_v2(
                Bucket=self.bucket, Prefix=full, Delimiter="/", MaxKeys=min(max(limit, 1), 1000)
            )
        cut = len(self.prefix)
        return [item["Prefix"][cut:] for item in response.get("CommonPrefixes", [])][:limit]

    def get_bytes(self, key: str, *, length: int | None = None) -> bytes:
        full = self._key(key)
        extra = {"Range": f"bytes=0-{length - 1}"} if length else {}
        if length == 0:
            return b""
        client = self._client
        if self._bulk is not None:
            from steps.common.storage.s3_bulk import BulkFailed, Missing

            try:
                count_request("GET")  # obstore bypasses botocore's events: counted here
                return self._bulk.get(full, length)
            except Missing:
                raise NotFound(f"object not found: {self.uri_for(key)}") from None
            except BulkFailed:
                client = self._retry_client()
        # botocore retries the request but not the body read: a reset mid-body surfaces here, so the
        # whole GET is retried with the same attempt budget, backing off like botocore's standard mode.
        for attempt in range(1, self.max_attempts + 1):
            with self._errors("read", key):
                try:
                    response = client.get_object(Bucket=self.bucket, Key=full, **extra)
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") == "InvalidRange":  # an empty object
                        return b""
                    raise
                try:
                    return response["Body"].read()
                except _STREAM_ERRORS as error:
                    if attempt == self.max_attempts:
                        raise StorageUnavailable(f"cannot read {self.uri_for(key)}: {error}") from None
            time.sleep(min(20.0, random.uniform(0, 0.1 * 2**attempt)))
        raise AssertionError("unreachable")

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        full = self._key(key)
        extra = {"ContentType": content_type} if content_type else {}
        client = self._client
        if self._bulk is not None and len(data) < self._transfer.multipart_threshold:
            from steps.common.storage.s3_bulk import BulkFailed

            try:
                count_request("PUT")
                return self._bulk.put(full, data, content_type)
            except BulkFailed:
                client = self._retry_client()
        with self._errors("write", key):
            if len(data) < self._transfer.multipart_threshold:
                client.put_object(Bucket=self.bucket, Key=full, Body=data, **extra)
            else:
                self._client.upload_fileobj(
                    io.BytesIO(data), self.bucket, full, ExtraArgs=extra or None, Config=self._transfer
                )

    def create_bytes(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        full = self._key(key)
        extra = {"ContentType": content_type} if content_type else {}
        for attempt in range(1, self.max_attempts + 1):
            try:
                with self._errors("create", key):
                    try:
                        self._client.put_object(Bucket=self.bucket, Key=full, Body=data, IfNoneMatch="*", **extra)
                    except ClientError as error:
                        code = _code(error)
                        if code in _PRECONDITION:
                            return (attempt > 1 or _retried(error)) and self._holds(key, data)
                        if code in _CONFLICT and attempt < self.max_attempts:
                            raise _Retry from None
                        raise
                return True
            except _Retry:
                # 409 ConditionalRequestConflict: a concurrent create of the same key is in flight
                # (AWS); the retry learns who won, as a 412 or a success.
                time.sleep(min(2.0, random.uniform(0, 0.05 * 2**attempt)))
        raise AssertionError("unreachable")

    def _holds(self, key: str, data: bytes) -> bool:
        """After a retried conditional write was refused: did an earlier attempt of ours succeed with
        its response lost? Only if the object holds exactly our (unique) bytes.
        """
        try:
            return self.get_bytes(key) == data
        except NotFound:
            return False

    def replace_if(self, key: str, data: bytes, *, etag: str, content_type: str | None = None) -> str | None:
        full = self._key(key)
        extra = {"ContentType": content_type} if content_type else {}
        with self._errors("replace", key):
            try:
                response = self._client.put_object(
                    Bucket=self.bucket, Key=full, Body=data, IfMatch=f'"{etag}"', **extra
                )
            except ClientError as error:
                code = _code(error)
                if code in _PRECONDITION and _retried(error) and self._holds(key, data):
                    info = self.head(key)  # our write landed, its response was lost
                    return info.etag if info is not None else None
                if code in _PRECONDITION or code in _NOT_FOUND or code in _CONFLICT:
                    return None
                raise
        return str(response.get("ETag", "")).strip('"')

    def download_file(self, key: str, path: str) -> None:
        with self._errors("read", key):
            self._client.download_file(self.bucket, self._key(key), path, Config=self._transfer)

    def head(self, key: str) -> ObjectInfo | None:
        try:
            with self._errors("stat", key):
                response = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except NotFound:
            return None
        return ObjectInfo(
            key=key,
            size=response["ContentLength"],
            etag=response.get("ETag", "").strip('"'),
            last_modified=response["LastModified"].astimezone(UTC),
        )

    def delete_many(self, keys: Sequence[str]) -> list[DeleteError]:
        errors: list[DeleteError] = []
        valid = []
        for key in keys:
            try:
                valid.append(self._key(key))
            except StorageError as error:
                errors.append(DeleteError(key, "InvalidKey", str(error)))
        cut = len(self.prefix)
        for start in range(0, len(valid), _DELETE_BATCH):
            batch = valid[start : start + _DELETE_BATCH]
            with self._errors("delete from"):
                response = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            errors.extend(
                DeleteError(item["Key"][cut:], item.get("Code", ""), item.get("Message", ""))
                for item in response.get("Errors", [])
            )
        return errors

    def uri_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def server_time(self) -> datetime:
        with self._errors("reach"):
            response = self._client.head_bucket(Bucket=self.bucket)
        date = response["ResponseMetadata"]["HTTPHeaders"].get("date")
        if not date:
            raise StorageError(f"{self._where} sent no Date header")
        return parsedate_to_datetime(date).astimezone(UTC)

    def close(self) -> None:
        self._client.close()


_STREAM_ERRORS = (ResponseStreamingError, IncompleteReadError, ReadTimeoutError, BotoConnectionError, HTTPClientError)
