"""Publish an ONNX model into a Triton model repository (Triton's layout, on S3 or a local path).

    <repository>/<name>/config.pbtxt
    <repository>/<name>/<version>/model.onnx

Everything is read and checked before the first write, so a bad model leaves the repository as it
was. config.pbtxt is written last: Triton's repository poller only loads a model once it is there.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import onnx

from steps.common.errors import StepError
from steps.publish_model.params import PublishModelParams
from steps.publish_model.triton_config import ModelConfigError, render_config


class PublishError(StepError):
    """Bad input: the message names the input and what is wrong (the CLI prints it, exit 2)."""


# --- storage seam: the only place that reads or writes. steps.common.storage owns S3; local paths
# are handled here so the step works (and is tested) before and without it.


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(os.path.expandvars(uri))
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme == "":
        return Path(parsed.path).resolve()
    return None


def read_object(uri: str, s3_endpoint: str) -> bytes:
    path = _local_path(uri)
    if path is not None:
        return path.read_bytes()
    from steps.common.storage import open_store  # boto3 stays out of local runs

    parent, _, key = uri.rpartition("/")
    return open_store(parent, s3_endpoint=s3_endpoint or None).get_bytes(key)


def write_objects(root_uri: str, objects: dict[str, bytes], s3_endpoint: str) -> None:
    """Write `objects` (relative key -> bytes) under `root_uri` in the dict's order."""
    root = _local_path(root_uri)
    if root is None:
        from steps.common.storage import open_store

        store = open_store(root_uri, s3_endpoint=s3_endpoint or None)
        for key, data in objects.items():
            store.put_bytes(key, data)
        return
    for key, data in objects.items():
        target = root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        # Rename within the directory so a concurrently polling Triton never reads a partial file.
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(data)
        partial.replace(target)


# --- the work


def load_model(data: bytes, uri: str) -> onnx.ModelProto:
    try:
        model = onnx.load_model_from_string(data)
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ... for a bad file
        raise PublishError(f"--model-uri {uri}: not a valid ONNX model ({exc.__class__.__name__}: {exc})") from exc
    return model


def build_objects(params: PublishModelParams, data: bytes) -> dict[str, bytes]:
    """The files to publish, model first and config last."""
    model = load_model(data, params.model_uri)
    try:
        config = render_config(model, params.model_name, params.max_batch_size)
    except ModelConfigError as exc:
        raise PublishError(f"--model-uri {params.model_uri}: {exc}") from exc
    return {
        f"{params.model_name}/{params.model_version}/model.onnx": data,
        f"{params.model_name}/config.pbtxt": config.encode(),
    }


def main(params: PublishModelParams) -> str:
    """Publish and return the URI of the published version directory."""
    try:
        data = read_object(params.model_uri, params.s3_endpoint)
    except FileNotFoundError as exc:
        raise PublishError(f"--model-uri {params.model_uri}: no such object") from exc
    objects = build_objects(params, data)
    write_objects(params.repository_uri, objects, params.s3_endpoint)
    version_uri = f"{params.repository_uri.rstrip('/')}/{params.model_name}/{params.model_version}"
    outputs = Path(params.outputs_dir)
    outputs.mkdir(parents=True, exist_ok=True)
    (outputs / "model-version-uri").write_text(version_uri)
    return version_uri


def run(params: PublishModelParams) -> int:
    print(main(params))
    return 0
