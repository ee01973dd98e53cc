"""Parameters of `python -m steps.synth` (deterministic synthetic images with known content)."""

from typing import ClassVar, Literal

from pydantic import Field

from steps.common.params_base import OutputsParams, StorageParams


class SynthParams(StorageParams, OutputsParams):
    step_module: ClassVar[str] = "steps.synth"
    output_uri: str = Field(description="Prefix URI where the images are written.")
    truth_uri: str = Field(
        "",
        description="Prefix URI for the ground truth (one JSON of boxes per image); must lie outside "
        "--output-uri. Empty: a 'truth' prefix next to --output-uri.",
    )
    count: int = Field(64, ge=1, le=1_000_000, description="Number of images.")
    width: int = Field(512, ge=16, le=8192, description="Image width in pixels.")
    height: int = Field(512, ge=16, le=8192, description="Image height in pixels.")
    image_format: Literal["png", "jpeg"] = Field("png", description="Encoding of the images.")
    seed: int = Field(0, ge=0, description="Random seed: the same seed gives the same bytes.")
    workers: int = Field(0, ge=0, le=256, description="Rendering processes; 0: one per CPU.")
