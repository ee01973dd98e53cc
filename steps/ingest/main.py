"""The ingest step: list and check the inputs, write the run manifest, rejects, shard files and the
shard index (what the infer lanes claim from).

Its Argo outputs are counts only (`count`, `rejected`, `shards`): no list of URIs goes through
parameters, so the workflow object does not grow with the number of shards.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from steps.common import runlayout
from steps.common.errors import StepError
from steps.common.images import HEADER_BYTES, ImageError, decode, read_header
from steps.common.outputs import write_outputs
from steps.common.storage import FileStore, NotFound, ObjectInfo, Store, dir_prefix, open_store, request_counts
from steps.common.storage.overlap import overlap
from steps.ingest.params import IngestParams

#: Run artifacts of an earlier ingest into the same --run-uri (an Argo retry, a rerun): stale shards
#: or metrics would otherwise be fanned out or reported again.
_RUN_DIRS = (
    runlayout.SHARDS_DIR,
    runlayout.METRICS_DIR,
    runlayout.RESULTS_DIR,
    runlayout.ATTEMPTS_DIR,
    runlayout.REPORT_DIR,
    runlayout.QUEUE_DIR,
    runlayout.LANES_DIR,
)


def _key_problem(key: str) -> str:
    """Why a listed key cannot be used as one, or ''.

    The file store lists names that are not UTF-8 with surrogate escapes (os.listdir); botocore
    decodes S3's URL-encoded listing with errors='replace', so undecodable bytes become U+FFFD and
    the key no longer names the object. Neither can be read back, written as an output key, or
    put in JSON other tools parse.
    """
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return "key is not valid UTF-8 (its undecodable bytes show as \\xNN here): rename the object"
    if "\ufffd" in key:
        return (
            "key is not valid UTF-8 (the S3 listing shows its undecodable bytes as U+FFFD, so it cannot be "
            "read back by that name): rename the object"
        )
    return ""


def _printable(key: str) -> str:
    r"""`key` as valid UTF-8 text: a surrogate escape becomes a visible \xNN."""
    return key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def check(store: Store, info: ObjectInfo, params: IngestParams) -> str:
    """'' when the object is a usable image, else the reason it is rejected."""
    if problem := _key_problem(info.key):
        return problem
    if info.size == 0:
        return "empty object"
    if info.size > params.max_bytes:
        return f"too large: {info.size} bytes > --max-bytes={params.max_bytes}"
    if params.verify == "none":
        return ""
    try:
        if params.verify == "decode":
            decode(store.get_bytes(info.key), max_pixels=params.max_pixels)
            return ""
        head = store.get_bytes(info.key, length=HEADER_BYTES)
        try:
            read_header(head, max_pixels=params.max_pixels)
        except ImageError:
            if len(head) < info.size:  # e.g. a JPEG whose EXIF block hides the frame header further on
                read_header(store.get_bytes(info.key), max_pixels=params.max_pixels)
            else:
                raise
    except ImageError as error:
        return str(error)
    except NotFound:
        return "deleted while ingesting"
    return ""


def _outputs_done(store: Store) -> set[str]:
    # One listing (1 request per 1000 keys) instead of a HEAD per input.
    suffix = runlayout.result_key("")
    return {o.key[: -len(suffix)] for o in store.list() if o.key.endswith(suffix)}


def _pages(store: Store, skip_prefix: str) -> Iterator[list[ObjectInfo]]:
    for page in store.list_pages(""):
        yield [o for o in page if not (skip_prefix and o.key.startswith(skip_prefix))]


def _missing_input(inputs: Store, params: IngestParams) -> bool:
    """True when a file store's input directory is missing and that means nothing new; an error by default.

    Checked before anything is written: a mistyped path by hand must not look like an empty, Succeeded run.
    """
    if not isinstance(inputs, FileStore) or inputs.root.is_dir():
        return False
    if params.missing_input == "error":
        what = "is not a directory" if inputs.root.exists() else "does not exist"
        raise StepError(f"--input-uri={params.input_uri}: {inputs.root} {what} (check the path; nothing was written)")
    return True


def _check_run_apart(inputs: Store, outputs: Store, run_store: Store, params: IngestParams) -> None:
    """Refuse a run prefix that holds inputs or lies among them, or outputs in the directories ingest
    clears, before anything is deleted: ingest clears an earlier run's files (shards/, results/, ...)
    under --run-uri, which would be inputs or outputs there. Outputs beside them (run/outputs) are fine.
    """
    if overlap(inputs, run_store):
        raise StepError(
            f"--run-uri={params.run_uri} overlaps --input-uri={params.input_uri} (the same directory, or one "
            "inside the other): ingest clears earlier run files under --run-uri, which would delete inputs; "
            "use a run prefix apart from the inputs (nothing was deleted)"
        )
    for directory in _RUN_DIRS:
        if overlap(outputs, run_store, directory):
            raise StepError(
                f"--output-uri={params.output_uri} overlaps {directory}/ of --run-uri={params.run_uri}: ingest "
                f"clears earlier run files there, which would delete outputs; put outputs elsewhere, e.g. "
                f"{params.run_uri.rstrip('/')}/outputs (nothing was deleted)"
            )


def run(params: IngestParams) -> int:
    inputs, outputs, run_store = _open_stores(params)
    _check_run_apart(inputs, outputs, run_store, params)
    missing = _missing_input(inputs, params)
    done = set() if params.force else _outputs_done(outputs)
    _clear_earlier_run(run_store, params)
    listing = _Listing(run_store=run_store, input_uri=params.input_uri.rstrip("/"), shard_size=params.shard_size)
    with ThreadPoolExecutor(params.workers, thread_name_prefix="ingest") as pool:
        for page in _pages(inputs, _output_prefix(params)):
            todo = [o for o in page if o.key not in done]
            listing.skipped += len(page) - len(todo)
            for info in page:
                if info.key in done:
                    listing.add_done(info)
            for info, reason in zip(todo, pool.map(lambda o: check(inputs, o, params), todo), strict=True):
                listing.add(info, reason)
    counts = listing.write(params.outputs_dir)
    _report(params, listing, missing=missing, file_inputs=isinstance(inputs, FileStore))
    print(json.dumps(counts))
    return 0


def _open_stores(params: IngestParams) -> tuple[Store, ...]:
    """The input, output and run stores."""
    storage: dict[str, Any] = {
        "s3_endpoint": params.s3_endpoint,
        "max_attempts": params.s3_max_attempts,
        "max_pool_connections": params.workers + 2,
    }
    return tuple(open_store(uri, **storage) for uri in (params.input_uri, params.output_uri, params.run_uri))


def _output_prefix(params: IngestParams) -> str:
    """The outputs' prefix inside the input prefix, or '': outputs written there must not come back as inputs."""
    input_uri, out_uri = params.input_uri.rstrip("/"), params.output_uri.rstrip("/")
    return dir_prefix(out_uri[len(input_uri) :]) if out_uri.startswith(input_uri + "/") else ""


def _clear_earlier_run(run_store: Store, params: IngestParams) -> None:
    stale = [o.key for d in _RUN_DIRS for o in run_store.list(d)] + [runlayout.SHARD_INDEX]
    errors = run_store.delete_many(stale)
    if errors:
        raise StepError(f"cannot clear earlier run files under {params.run_uri}: {errors[0].key}: {errors[0].message}")


@dataclass(kw_only=True)
class _Listing:
    """The run files ingest builds as it checks the inputs: manifest, rejects, shards and their index."""

    run_store: Store
    input_uri: str
    shard_size: int
    manifest: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    shard: list[str] = field(default_factory=list)
    index: list[dict] = field(default_factory=list)
    skipped: int = 0

    @property
    def count(self) -> int:
        return sum(1 for line in self.manifest if line.endswith('"pending"}\n'))

    def add_done(self, info: ObjectInfo) -> None:
        row = {"key": info.key, "size": info.size, "etag": info.etag, "status": "done"}
        self.manifest.append(json.dumps(row) + "\n")

    def add(self, info: ObjectInfo, reason: str) -> None:
        """An input `check` accepted (`reason` '') into the current shard, or a reject."""
        row = {"key": _printable(info.key), "size": info.size, "etag": info.etag}
        if reason:
            self.rejected.append(json.dumps({**row, "reason": reason}) + "\n")
            return
        self.manifest.append(json.dumps({**row, "status": "pending"}) + "\n")
        self.shard.append(json.dumps({**row, "input_uri": self.input_uri}) + "\n")
        if len(self.shard) >= self.shard_size:
            self._flush()

    def _flush(self) -> None:
        key = runlayout.shard_key(len(self.index))
        self.run_store.put_bytes(key, "".join(self.shard).encode(), content_type="application/x-ndjson")
        self.index.append({"name": runlayout.shard_name(key), "key": key, "items": len(self.shard)})
        self.shard.clear()

    def write(self, outputs_dir: str) -> dict[str, str]:
        """Write the last shard, manifest, rejects and index, and the Argo outputs (the counts)."""
        if self.shard:
            self._flush()
        ndjson = "application/x-ndjson"
        self.run_store.put_bytes(runlayout.MANIFEST, "".join(self.manifest).encode(), content_type=ndjson)
        self.run_store.put_bytes(runlayout.REJECTED, "".join(self.rejected).encode(), content_type=ndjson)
        # The index goes last: lanes that find it find every shard it names.
        # ingest's own S3 requests ride along, so the report can total the run's request cost.
        doc = {"count": self.count, "shard_size": self.shard_size, "requests": request_counts(), "shards": self.index}
        self.run_store.put_bytes(runlayout.SHARD_INDEX, json.dumps(doc).encode(), content_type="application/json")
        counts = {"count": str(self.count), "rejected": str(len(self.rejected)), "shards": str(len(self.index))}
        write_outputs(outputs_dir, counts)
        return counts


def _report(params: IngestParams, listing: _Listing, *, missing: bool, file_inputs: bool) -> None:
    """One line on stderr (with a warning when nothing was found), and the metrics when pushing."""
    count, rejected, shards = listing.count, len(listing.rejected), len(listing.index)
    warning = ""
    if missing:
        warning = f"; warning: {params.input_uri} does not exist yet, so nothing is new"
    elif not listing.manifest and not rejected and not file_inputs:
        warning = f"; warning: no object under {params.input_uri} (S3 has no directories: check the prefix)"
    print(
        f"steps.ingest: {count} to process in {shards} shards, {listing.skipped} already done, "
        f"{rejected} rejected ({params.input_uri} -> {params.run_uri}){warning}",
        file=sys.stderr,
    )
    if params.pushgateway:
        from steps.ingest.metrics import push  # prometheus_client only when pushing

        run = params.run_uri.rstrip("/").rsplit("/", 1)[-1]
        push(params.pushgateway, run, shards, count, rejected, env=params.env)
