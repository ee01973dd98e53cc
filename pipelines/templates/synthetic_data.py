"""`synthetic-data` WorkflowTemplate: one `synth` step writing deterministic images (`kiosk demo`)."""

from __future__ import annotations

from hera.workflows import WorkflowTemplate

from pipelines.config import KioskConfig
from pipelines.templates import _common
from steps.synth.params import SynthParams

NAME = "synthetic-data"
INPUTS = ("output_uri", "count", "width", "height", "image_format", "seed")
OUTPUTS = {"count": "Number of images written.", "uri": "Prefix URI the images were written under."}


def defaults(cfg: KioskConfig) -> dict[str, object]:
    bench = cfg.benchmark
    return {
        "output_uri": f"{cfg.storage.uri}/synthetic",
        "count": bench.images,
        "width": bench.width,
        "height": bench.height,
    }


def build(cfg: KioskConfig, env: str) -> WorkflowTemplate:
    return _common.single_step_template(
        cfg,
        env,
        _common.StepSpec(name="synth", model=SynthParams, inputs=INPUTS, outputs=OUTPUTS, defaults=defaults(cfg)),
        name=NAME,
        title="Synthetic data",
        description="Writes deterministic synthetic images with known content (demos, benchmarks).",
    )
