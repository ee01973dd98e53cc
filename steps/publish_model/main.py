"""Publish an ONNX model into a Triton model repository (Triton's layout, on S3 or a local path).

    <repository>/<name>/config.pbtxt
    <repository>/<name>/<version>/model.onnx

Everything is read and checked before the first write, so a bad model leaves the repository as it
was. config.pbtxt is written last: Triton's repository poller only loads a model once it is there.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from steps.common.errors import StepError
from steps.common.storage import open_store, read_uri
from steps.publish_model.params import PublishModelParams
from steps.publish_model.triton_config import ModelConfigError, render_config


class PublishError(StepError):
    """Bad input: the message names the input and what is wrong (the CLI prints it, exit 2)."""


def read_object(uri: str, s3_endpoint: str) -> bytes:
    data = read_uri(uri, s3_endpoint=s3_endpoint)
    if data is None:
        raise PublishError(f"--model-uri {uri}: no such object")
    return data


def write_objects(root_uri: str, objects: dict[str, bytes], s3_endpoint: str) -> None:
    """Write `objects` (relative key -> bytes) under `root_uri` in the dict's order.

    Each write is atomic (rename on the file store, a single PUT on S3), so a polling Triton never
    reads a partial file.
    """
    store = open_store(root_uri, s3_endpoint=s3_endpoint)
    for key, data in objects.items():
        store.put_bytes(key, data)


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
    data = read_object(params.model_uri, params.s3_endpoint)
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
