"""Response schemas, for the OpenAPI document at /docs and for tests.

Handlers return orjson responses directly (validating megabytes of floats through pydantic
would cost more than computing them); these classes describe those responses, and the
tests validate real responses against them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "InputInfo",
    "ModelSummary",
    "ModelList",
    "ReceptiveFieldInfo",
    "LayerInfo",
    "ModelDetail",
    "TensorData",
    "LayerWeights",
    "Sample",
    "SampleList",
    "Prediction",
    "LayerData",
    "Activations",
    "RunInput",
    "LayerSummary",
    "RunSummary",
    "LayerTensor",
    "CellExplanation",
    "SaliencyData",
    "Colormaps",
    "Health",
]

TensorValues = list[float | None] | str  # floats (NaN/inf as null), or base64 float16


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class InputInfo(_Strict):
    channels: int
    height: int
    width: int
    mean: list[float]
    std: list[float]


class ModelSummary(_Strict):
    id: str
    name: str = Field(description="Title of the model")
    description: str
    input: InputInfo
    classes: list[str]
    trained: bool
    test_accuracy: float | None
    params: int
    macs: int = Field(description="Multiply-accumulates of one forward pass")
    flops: int = Field(description="2 x macs")
    preprocess: Literal["photo", "digit"]
    dataset: str | None


class ModelList(_Strict):
    models: list[ModelSummary]


class ReceptiveFieldInfo(_Strict):
    size: list[int]
    jump: list[int]
    start: list[float]
    full: bool


class LayerInfo(_Strict):
    index: int
    name: str
    kind: str
    hyperparameters: dict[str, Any]
    input_shape: list[int]
    output_shape: list[int]
    params: int
    param_shapes: dict[str, list[int]]
    macs: int
    flops: int
    receptive_field: ReceptiveFieldInfo


class ModelDetail(ModelSummary):
    layers: list[LayerInfo]


class TensorData(_Strict):
    shape: list[int]
    encoding: Literal["json", "f16"]
    data: TensorValues = Field(description="Flat row-major values, or base64 little-endian float16")


class LayerWeights(_Strict):
    model_id: str
    layer: str
    kind: str
    weight: TensorData
    bias: TensorData | None


class Sample(_Strict):
    id: str
    dataset: str
    label: str
    label_index: int
    url: str


class SampleList(_Strict):
    samples: list[Sample]


class Prediction(_Strict):
    index: int
    class_: str = Field(alias="class")
    probability: float


class LayerData(_Strict):
    name: str
    kind: str
    shape: list[int]
    encoding: Literal["json", "f16"]
    data: TensorValues


class Activations(_Strict):
    model_id: str
    run_id: str = Field(description="The run kept for this image (GET /runs/{run_id})")
    predictions: list[Prediction]
    layers: list[LayerData]


class RunInput(_Strict):
    shape: list[int]
    image_url: str


class LayerSummary(_Strict):
    name: str
    kind: str
    shape: list[int]
    min: float
    max: float
    mean: float


class RunSummary(_Strict):
    run_id: str
    model_id: str
    created: str = Field(description="ISO 8601 time in UTC")
    reused: bool = Field(False, description="True when an identical upload's run was returned")
    input: RunInput
    predictions: list[Prediction]
    layers: list[LayerSummary]


class LayerTensor(_Strict):
    name: str
    kind: str
    shape: list[int]
    channel: int | None
    encoding: Literal["json", "f16"]
    data: TensorValues
    min: float
    max: float


class CellExplanation(BaseModel):
    """The arithmetic of one output cell; the other fields depend on ``kind`` (see docs/API.md)."""

    model_config = ConfigDict(extra="allow")
    layer: str
    kind: str
    cell: list[int]
    value: float
    activation: float


class SaliencyData(_Strict):
    method: Literal["gradcam", "gradient"]
    class_: int = Field(alias="class")
    class_name: str
    layer: str | None
    shape: list[int]
    data: list[float]
    max: float
    weights: list[float] | None = Field(description="Grad-CAM channel weights alpha_c")


class Colormaps(_Strict):
    diverging: list[str]
    sequential: list[str]


class Health(_Strict):
    status: str
    models_loaded: list[str]
    runs: int
    run_bytes: int
    run_cache_bytes: int
    evictions: int
    jobs: int
    job_capacity: int
    process: int  # the operating system's id of the process that answered
    shared_store: str  # "none" (one process), "ok" or "unavailable" (Redis)
