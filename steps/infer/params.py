"""Parameters of `python -m steps.infer`: a lane worker (`--run-uri R --lane i --lanes L`, one
long-lived pod per lane of the `infer` fan-out) or, with `--shard-uri`, a single shard.
"""

from typing import ClassVar, Literal

from pydantic import Field

from steps.common.params_base import OutputsParams, PushParams, StorageParams


class InferParams(StorageParams, OutputsParams, PushParams):
    step_module: ClassVar[str] = "steps.infer"
    shard_uri: str = Field(
        "", description="Single-shard mode: URI of one shard file (JSONL of input keys); empty with --lanes."
    )
    model_uri: str = Field(
        description="ONNX model: s3://..., file:///..., or package://<python-package>/<path inside it>."
    )
    model_spec: str = Field(
        "",
        description="Model spec (JSON text or URI): input name, layout, dtype, normalization, resize, "
        "post-processing. Empty: taken from the model's metadata.",
    )
    output_uri: str = Field(description="Prefix URI where per-item outputs are written.")
    batch_size: int = Field(8, ge=1, le=1024, description="Images per ONNX Runtime call.")
    device: Literal["cpu", "cuda", "tensorrt"] = Field(
        "cuda", description="Execution provider to require: TensorRT -> CUDA -> CPU."
    )
    allow_cpu_fallback: bool = Field(
        False, description="Run on CPU when a GPU was requested but CUDA is not active (otherwise fail)."
    )
    trt_cache_dir: str = Field("/tmp/trt-cache", description="TensorRT engine and timing cache directory.")
    prefetch_workers: int = Field(
        0, ge=0, le=256, description="Concurrent downloads and decodes; 0: two per CPU of the pod, at least 8."
    )
    upload_workers: int = Field(
        0, ge=0, le=256, description="Concurrent post-processing and uploads; 0: one per CPU of the pod, at least 4."
    )
    queue_depth: int = Field(32, ge=1, le=4096, description="Bounded queue depth: caps memory, not dataset size.")
    max_failure_ratio: float = Field(
        0.05, ge=0.0, le=1.0, description="Exit non-zero when the failed fraction of the shard exceeds this."
    )
    run_uri: str = Field(
        "",
        description="Prefix URI of the run (shard index, queue/, metrics/, results/); empty: the shard URI's "
        "<run>/shards/ parent.",
    )
    max_pixels: int = Field(
        100_000_000, ge=1, description="Fail items with more pixels than this (decompression bombs)."
    )
    ort_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="ONNX Runtime intra-op threads; 0: one per CPU of the container's CPU limit, else one per core.",
    )

    # --- per-image pipeline internals ---
    normalise_in_graph: bool = Field(
        True,
        description="Normalise inside the ONNX graph: the host passes uint8 NHWC pixels (false: float tensors "
        "normalised on the CPU).",
    )
    output_layout: Literal["per-image", "per-shard"] = Field(
        "per-image",
        description="per-image: <key>.json + <key>.mask.png per item (2 PUTs per image); per-shard: "
        "shards/<shard>.jsonl + shards/<shard>.masks under --output-uri (2 PUTs per shard).",
    )
    s3_bulk_client: Literal["obstore", "boto3"] = Field(
        "obstore",
        description="Client for the items' S3 GETs and PUTs: obstore (about 5x less CPU per GET, 10x per PUT, "
        "falling back to boto3 on any error) or boto3 (used for everything else either way).",
    )
    trt_cache_uri: str = Field(
        "",
        description="Where the TensorRT engine/timing caches persist between pods (restored into --trt-cache-dir "
        "before the session starts, saved after the warm-up); empty: <model>.cache/tensorrt/ort-<version> beside "
        "an s3:// or file:// model, none for package:// models.",
    )

    # -- lane worker: one pod per lane claims shards from the run's work queue ---------------
    lane: int = Field(0, ge=0, le=9999, description="This lane's index, 0 <= lane < lanes (lane mode).")
    lanes: int = Field(
        0, ge=0, le=10000, description="Number of lanes of the run (its parallelism); 0: single-shard mode."
    )
    attempt: int = Field(
        0, ge=0, description="Retry number of this lane pod (Argo's `retries` variable), for the claim log."
    )
    claim_ttl: float = Field(
        60.0,
        ge=0.2,
        le=86400,
        description="Seconds without a heartbeat after which another lane takes a shard's claim over.",
    )

    def mode_error(self) -> str:
        """'' when the flags name one mode completely, else what is wrong (checked when the step runs, so
        rendered templates, whose inputs are placeholders, still parse).
        """
        if self.lanes and self.shard_uri:
            return "give either --shard-uri (one shard) or --lanes with --run-uri (lane worker), not both"
        if not self.lanes and not self.shard_uri:
            return "missing --shard-uri, or --run-uri with --lane and --lanes"
        if self.lanes and not self.run_uri:
            return "--lanes needs --run-uri (the run whose shard index and queue the lanes share)"
        if self.lanes and self.lane >= self.lanes:
            return f"--lane={self.lane} must be below --lanes={self.lanes}"
        return ""
