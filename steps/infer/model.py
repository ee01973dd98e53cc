"""Load an ONNX model from a URI, resolve its spec and run it on the requested execution provider.

ONNX Runtime silently falls back to CPU when CUDA cannot start (missing libraries, no device): a
broken GPU image would then run 50x slower and look healthy. So the active providers are checked
after the session starts, and a GPU request without an active CUDA provider fails the step.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from steps.common import cpus, storage
from steps.common.errors import StepError
from steps.common.storage import StorageError, StorageUnavailable
from steps.infer import spec as specs
from steps.infer.normalise import pixel_input_model
from steps.infer.trt_cache import cache_uri, persist, restore

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"


class ModelError(StepError):
    """The model is missing, corrupt or incompatible with its spec: the whole step fails at once."""


def read_uri(uri: str, *, s3_endpoint: str = "", max_attempts: int = 5, what: str = "model") -> bytes | None:
    """Bytes at a file://, s3:// or package:// URI; None when the object does not exist."""
    try:
        return storage.read_uri(uri, s3_endpoint=s3_endpoint, max_attempts=max_attempts)
    except StorageUnavailable as error:  # a retry can help: keep its exit code 1
        raise StorageUnavailable(f"cannot load {what} {uri}: {error}") from None
    except StorageError as error:
        raise ModelError(f"cannot load {what} {uri}: {error}") from None


def _sidecar(uri: str) -> str:
    return (uri.removesuffix(".onnx")) + ".spec.json"


@dataclass
class LoadedModel:
    uri: str
    session: ort.InferenceSession
    spec: specs.ModelSpec
    providers: list[str]  # what the session actually runs on
    io_binding: bool
    #: True: the session was wrapped to take uint8 NHWC pixels and normalises inside the graph
    #: (steps/infer/normalise.py); False: it takes the spec's layout and dtype, normalised on the host.
    pixels: bool = False
    input_name: str = ""  # the session's input (the wrapped one when `pixels`)
    #: TensorRT only: (cache URI, local cache dir, storage options), saved after the warm-up.
    trt_cache: tuple[str, str, dict] | None = None

    def __post_init__(self) -> None:
        self.input_name = self.input_name or self.spec.input_name

    def feed(self, height: int, width: int, batch: int = 1) -> tuple[tuple[int, ...], str]:
        """(shape, dtype) of a batch the session takes for images of height x width."""
        s = self.spec
        if self.pixels or s.layout == "NHWC":
            return (batch, height, width, s.channels), "uint8" if self.pixels else s.dtype
        return (batch, s.channels, height, width), s.dtype

    def run(self, batch: np.ndarray) -> np.ndarray:
        if not self.io_binding:
            return self.session.run([self.spec.output_name], {self.input_name: batch})[0]
        # On CUDA, bind the input once and let ORT allocate the output on the device, so there is one
        # host->device and one device->host copy per batch and no per-call allocations.
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self.input_name, ort.OrtValue.ortvalue_from_numpy(batch, "cuda", 0))
        binding.bind_output(self.spec.output_name, "cuda")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]


def _providers(device: str, trt_cache_dir: str) -> list:
    chain: list = []
    if device == "tensorrt":
        os.makedirs(trt_cache_dir, exist_ok=True)
        chain.append(
            (
                TRT,
                {
                    "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": trt_cache_dir,
                    "trt_timing_cache_enable": True,
                    "trt_timing_cache_path": trt_cache_dir,
                },
            )
        )
    if device in ("tensorrt", "cuda"):
        chain.append((CUDA, {"cudnn_conv_algo_search": "HEURISTIC"}))
    chain.append(CPU)
    return chain


def _gpu_missing(device: str, active: list[str], uri: str) -> str:
    return (
        f"--device={device} requested for {uri} but CUDA is not active (session providers: "
        f"{', '.join(active)}; installed: {', '.join(ort.get_available_providers())}); "
        f"fix the GPU image/node or pass --allow-cpu-fallback=true"
    )


def load_model(
    uri: str,
    spec_text: str = "",
    *,
    device: str = "cpu",
    allow_cpu_fallback: bool = False,
    trt_cache_dir: str = "/tmp/trt-cache",
    threads: int = 0,
    pixels: bool = True,
    trt_cache_uri: str = "",
    store_options: Mapping[str, Any] | None = None,
) -> LoadedModel:
    """The model at `uri` with its resolved spec, in a session on `device` (checked, not assumed).

    `store_options`: open_store's options (s3_endpoint, max_attempts) for the model, its spec and TRT cache.
    """
    storage_options: dict[str, Any] = dict(store_options or {})
    if device != "cpu" and CUDA not in ort.get_available_providers() and not allow_cpu_fallback:
        raise ModelError(_gpu_missing(device, [], uri))  # before downloading anything
    data = read_uri(uri, **storage_options)
    if data is None:
        raise ModelError(f"cannot load model {uri}: not found")
    spec = _resolve_spec(uri, data, _given_specs(uri, spec_text, storage_options))
    input_name = spec.input_name
    if pixels:
        data, input_name = _wrap_for_pixels(uri, data, spec)
    trt_cache = None
    if device == "tensorrt" and TRT in ort.get_available_providers():
        trt_cache = (trt_cache_uri or cache_uri(uri, ort.__version__), trt_cache_dir, storage_options)
        restore(trt_cache[0], trt_cache_dir, **storage_options)
    session = _session(uri, data, _options(threads), _providers(device, trt_cache_dir))
    active = _check_providers(uri, session, device, allow_cpu_fallback)
    return LoadedModel(
        uri,
        session,
        spec,
        active,
        io_binding=CUDA in active,
        pixels=pixels,
        input_name=input_name,
        trt_cache=trt_cache if TRT in active else None,
    )


def _given_specs(uri: str, spec_text: str, storage_options: dict[str, Any]) -> list[tuple[str, dict]]:
    """The spec layers given outside the model: `--model-spec` (JSON text or a URI), then the sidecar."""
    layers: list[tuple[str, dict]] = []
    if spec_text.strip():
        text = spec_text.strip()
        if not text.startswith("{"):
            spec_bytes = read_uri(text, what="model spec", **storage_options)
            if spec_bytes is None:
                raise ModelError(f"model spec {text} for {uri} not found")
            text = spec_bytes.decode()
        layers.append(("--model-spec", specs.parse_json(text, "--model-spec")))
    sidecar = read_uri(_sidecar(uri), what="model spec", **storage_options)
    if sidecar is not None:
        layers.append((_sidecar(uri), specs.parse_json(sidecar.decode(), _sidecar(uri))))
    return layers


def _resolve_spec(uri: str, data: bytes, layers: list[tuple[str, dict]]) -> specs.ModelSpec:
    """The given layers, then the model's metadata, a built-in spec and its signature, validated.

    Read from a CPU session with no graph optimisation (cheap, and ORT's own errors for corrupt
    models); the session that runs is made after, on the model as fed (wrapped for pixel input), so
    TensorRT builds one engine only.
    """
    probe_options = ort.SessionOptions()
    probe_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    probe_options.log_severity_level = 3
    probe = _session(uri, data, probe_options, [CPU])
    layers = list(layers)
    metadata = probe.get_modelmeta().custom_metadata_map.get(specs.METADATA_KEY)
    if metadata:
        layers.append((f"{uri} metadata {specs.METADATA_KEY}", specs.parse_json(metadata, uri)))
    builtin = specs.BUILTIN.get(uri.rstrip("/").rsplit("/", 1)[-1])
    if builtin:
        layers.append(("built-in spec", builtin))
    layers.append(("model signature", specs.from_signature(probe.get_inputs(), probe.get_outputs())))
    spec = specs.resolve(uri, layers)
    _check_compatible(uri, probe, spec)
    return spec


def _wrap_for_pixels(uri: str, data: bytes, spec: specs.ModelSpec) -> tuple[bytes, str]:
    try:
        return pixel_input_model(data, spec)
    except Exception as error:  # onnx raises DecodeError, ValidationError, ...
        raise ModelError(f"cannot wrap model {uri} for pixel input: {' '.join(str(error).split())[:300]}") from None


def _check_providers(uri: str, session: ort.InferenceSession, device: str, allow_cpu_fallback: bool) -> list[str]:
    """The providers the session really runs on; a GPU request without CUDA fails unless allowed."""
    active = session.get_providers()
    if device != "cpu" and CUDA not in active:
        if not allow_cpu_fallback:
            raise ModelError(_gpu_missing(device, active, uri))
        print(f"steps.infer: warning: {_gpu_missing(device, active, uri)}; running on CPU", file=sys.stderr)
    if device == "tensorrt" and TRT not in active and CUDA in active:
        print(f"steps.infer: warning: TensorRT not active for {uri}; running on CUDA", file=sys.stderr)
    return active


def _options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # ORT's own fallback warnings are replaced by our check in load_model
    # 0: ORT's default is one thread per core of the node; in a pod with a CPU limit, one per
    # CPU of the limit instead (steps/common/cpus.py says why).
    threads = threads or cpus.quota_cpus() or 0
    if threads:
        options.intra_op_num_threads = threads
    # ORT's pool threads spin between ops by default; beside our download/decode/upload threads
    # that spinning steals the cores the pipeline needs (measured: S3 pipeline 2x slower on 2 cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _session(uri: str, data: bytes, options: ort.SessionOptions, providers: list) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(data, options, providers=providers)
    except Exception as error:  # ORT raises InvalidProtobuf, Fail, InvalidGraph, ...
        raise ModelError(f"cannot load model {uri}: {' '.join(str(error).split())[:300]}") from None


def _check_compatible(uri: str, session: ort.InferenceSession, spec: specs.ModelSpec) -> None:
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    if spec.input_name not in inputs:
        raise ModelError(f"incompatible model {uri}: no input {spec.input_name!r} (has {sorted(inputs)})")
    if spec.output_name not in outputs:
        raise ModelError(f"incompatible model {uri}: no output {spec.output_name!r} (has {sorted(outputs)})")
    shape = inputs[spec.input_name].shape
    if len(shape) != 4:
        raise ModelError(f"incompatible model {uri}: input {spec.input_name!r} has rank {len(shape)}, want 4")
    channels = shape[3] if spec.layout == "NHWC" else shape[1]
    if isinstance(channels, int) and channels != spec.channels:
        raise ModelError(
            f"incompatible model {uri}: input has {channels} channels, spec color {spec.color} gives {spec.channels}"
        )


def warm_up(model: LoadedModel, height: int, width: int) -> np.ndarray:
    """One dummy batch, so an incompatible model fails before any image is read (and TensorRT
    builds its engine before the clock starts).
    """
    shape, dtype = model.feed(height, width)
    try:
        out = model.run(np.zeros(shape, dtype=dtype))
    except Exception as error:
        raise ModelError(
            f"incompatible model {model.uri}: a {shape} {dtype} batch fails: {' '.join(str(error).split())[:300]}"
        ) from None
    if model.trt_cache is not None:  # the engines exist now: save them for the next pods
        uri, local, storage_options = model.trt_cache
        persist(uri, local, **storage_options)
    return out
