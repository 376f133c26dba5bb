"""The pipeline file: one pydantic model per stage, composed into `PipelineConfig`.

Every model refuses unknown keys, and every error is reported with its dotted path, the value and
what was expected, before any work starts. A stage set to `null` is switched off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mobilekd.bench.latency import LatencyOptions
from mobilekd.compress.prune import PruneOptions
from mobilekd.compress.quantize import CoreMLQuant, ExecuTorchQuant, OnnxQuant
from mobilekd.export.types import CoreMLOptions, ExecuTorchOptions, OnnxOptions, Tolerance
from mobilekd.specs import StrictModel

Format = Literal["onnx", "executorch", "coreml"]
Variant = Literal["fp32", "int8"]
ALL_FORMATS: tuple[Format, ...] = ("onnx", "executorch", "coreml")


class DataConfig(StrictModel):
    """Which dataset, and the options its loader takes (checked against the loader's signature)."""

    dataset: str = Field(description="digits | fashion_mnist | online_retail | module.path:function")
    options: dict[str, Any] = {}


class TrainSettings(StrictModel):
    """How a model is trained; shared by the teacher, distill and prune fine-tune."""

    epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(64, ge=1, le=65_536)
    lr: float = Field(1e-3, gt=0, le=10)
    weight_decay: float = Field(0.0, ge=0)
    optimizer: Literal["adam", "adamw", "sgd"] = "adamw"
    scheduler: Literal["none", "cosine"] = "cosine"
    grad_clip: float | None = Field(None, gt=0)
    early_stopping_patience: int | None = Field(None, ge=1)
    augment: bool = False


class TeacherConfig(TrainSettings):
    """The large model: trained here, or loaded from `checkpoint` (a state dict, weights_only)."""

    model: str = Field(description="built-in model name or module.path:function")
    args: dict[str, Any] = {}
    checkpoint: Path | None = None


class HintPair(StrictModel):
    """FitNets hint: teacher module output -> student module output, through a learned adapter."""

    teacher: str
    student: str
    weight: float = Field(1.0, ge=0)


class RelationConfig(StrictModel):
    """RKD on a named embedding layer of both models."""

    teacher: str
    student: str
    distance_weight: float = Field(1.0, ge=0)
    angle_weight: float = Field(2.0, ge=0)


class DistillConfig(TrainSettings):
    """The student and the distillation losses (Hinton KD, FitNets hints, RKD)."""

    student: str = Field(description="built-in model name or module.path:function")
    args: dict[str, Any] = {}
    temperature: float = Field(4.0, gt=0)
    alpha: float = Field(0.5, ge=0, le=1)
    hints: list[HintPair] = []
    relation: RelationConfig | None = None


class PruneConfig(PruneOptions):
    """Pruning options plus the short recovery fine-tune against the teacher."""

    finetune_epochs: int = Field(2, ge=0)
    finetune_lr: float = Field(5e-4, gt=0)


class QuantizeConfig(StrictModel):
    """int8 post-training quantization, one scheme per target, calibrated on real training data."""

    calibration_samples: int = Field(256, ge=1, le=100_000)
    executorch: ExecuTorchQuant | None = ExecuTorchQuant()
    onnx: OnnxQuant | None = OnnxQuant()
    coreml: CoreMLQuant | None = CoreMLQuant()
    sensitivity: bool = False
    max_metric_drop: float | None = Field(None, ge=0)
    max_float_layers: int = Field(3, ge=0)


class ExportConfig(StrictModel):
    formats: list[Format] = list(ALL_FORMATS)
    variants: list[Variant] = ["fp32", "int8"]
    onnx: OnnxOptions = OnnxOptions()
    executorch: ExecuTorchOptions = ExecuTorchOptions()
    coreml: CoreMLOptions = CoreMLOptions()

    @field_validator("formats", "variants")
    @classmethod
    def _unique_nonempty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("must list at least one entry")
        if len(set(v)) != len(v):
            raise ValueError(f"must not repeat entries, got {v}")
        return v


class VerifyConfig(StrictModel):
    """Parity of every exported file against the PyTorch model, on held-out real inputs."""

    samples: int = Field(200, ge=1, le=100_000)
    k: int = Field(10, ge=1)
    tolerances: dict[Literal["fp32", "fp16", "int8"], Tolerance] = {}


class BenchConfig(LatencyOptions):
    native: bool = True
    profiles: list[str] = []


class Budget(StrictModel):
    """One gate check: a metric that summary.json reports, selected by format/variant/model, and a bound."""

    metric: str
    format: Format | None = None
    variant: str | None = None
    threads: int | None = Field(None, ge=1)
    profile: str | None = None
    model: str | None = None
    against: str | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> "Budget":
        if (self.min is None) == (self.max is None):
            raise ValueError(f"budget for {self.metric!r} needs exactly one of min or max")
        return self


class GateConfig(StrictModel):
    budgets: list[Budget] = []


class BundleConfig(StrictModel):
    """What goes to the app developer: which files, golden vectors, a zip."""

    formats: list[Format] = list(ALL_FORMATS)
    variants: list[Variant] = ["fp32", "int8"]
    golden_samples: int = Field(5, ge=1, le=1000)
    zip: bool = True


class PipelineConfig(StrictModel):
    """One pipeline file. Stages run in the order of `mobilekd.pipeline.STAGES`."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    seed: int = Field(0, ge=0)
    data: DataConfig
    teacher: TeacherConfig
    distill: DistillConfig | None = None
    prune: PruneConfig | None = None
    quantize: QuantizeConfig | None = QuantizeConfig()
    export: ExportConfig | None = ExportConfig()
    verify: VerifyConfig | None = VerifyConfig()
    bench: BenchConfig | None = BenchConfig()
    gate: GateConfig | None = GateConfig()
    bundle: BundleConfig | None = BundleConfig()
