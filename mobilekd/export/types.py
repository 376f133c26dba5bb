"""Typed results and options of export and verify: what one exported file is (`ExportedModel`),
how each format is written (`OnnxOptions`, `ExecuTorchOptions`, `CoreMLOptions`), and how close it
must stay to PyTorch (`Tolerance`, `ParityMetrics`, `Parity`). These go into summary.json, so they
are plain pydantic models that serialise to JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, NamedTuple, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mobilekd.specs import StrictModel, Task, TensorSpec  # noqa: F401  (Task re-exported)

Format = Literal["onnx", "executorch", "coreml"]
FORMATS: tuple[Format, ...] = ("onnx", "executorch", "coreml")



class TaskOutput(NamedTuple):
    """What a built-in task's model returns: the exported tensor's name, the kind the bundle's
    manifest names (postprocessing.output) and the activation an app applies to it."""

    name: str
    kind: str
    activation: str


TASK_OUTPUT: dict[str, TaskOutput] = {
    "classification": TaskOutput("logits", "logits", "softmax"),
    "ranking": TaskOutput("scores", "scores", "none"),
    "retrieval": TaskOutput("sentence_embedding", "embedding", "none"),
}

# File suffix per format; an .mlpackage is a folder.
SUFFIX: dict[str, str] = {"onnx": ".onnx", "executorch": ".pte", "coreml": ".mlpackage"}


class ExportedModel(BaseModel):
    """One exported file (or .mlpackage folder) on disk, with enough to run and check it."""

    model_config = ConfigDict(extra="forbid")

    format: Format
    variant: str  # "fp32" | "int8" | ...
    path: str  # as given: relative to the run directory or absolute
    bytes: int
    sha256: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    scheme: str  # "fp32", "int8 static per-channel (PT2E XNNPACKQuantizer)", ...
    details: dict[str, Any] = {}

    @classmethod
    def of_file(cls, *, format: Format, variant: str, path: Path, inputs: Sequence[TensorSpec],
                outputs: Sequence[TensorSpec], scheme: str, details: dict[str, Any]) -> "ExportedModel":
        """Describe a written file: size and digest come from mobilekd.store (folder-aware)."""
        from mobilekd.store import sha256_file, size_bytes

        return cls(format=format, variant=variant, path=str(path), bytes=size_bytes(path),
                   sha256=sha256_file(path), inputs=list(inputs), outputs=list(outputs),
                   scheme=scheme, details=details)


class OnnxOptions(StrictModel):
    """How an ONNX file is written. Opset 18 is the first that the dynamo exporter emits natively
    and that ONNX Runtime 1.16+ runs everywhere; `ort_format` adds a .ort file for ORT Mobile."""

    opset: int = Field(18, ge=13, le=23)
    dynamic_batch: bool = False
    # "NAME:AXIS" entries (input_ids:1 for sequence length); dynamic_batch adds axis 0 of every input.
    dynamic_dims: list[str] = []
    simplify: bool = True
    ort_format: bool = False


class ExecuTorchOptions(StrictModel):
    """`xnnpack` delegates what XNNPACK supports (the fast CPU path on phones); `portable` keeps every
    operator on ExecuTorch's reference kernels (slow, but runs anything ExecuTorch can lower)."""

    backend: Literal["xnnpack", "portable"] = "xnnpack"


class CoreMLOptions(StrictModel):
    """iOS17 is the default target: it is what ML programs with int8 weights need, and covers ~95%
    of active iPhones. fp32 keeps parity with PyTorch; fp16 halves the size and runs on the ANE."""

    minimum_deployment_target: Literal["iOS16", "iOS17", "iOS18"] = "iOS17"
    compute_precision: Literal["fp32", "fp16"] = "fp32"


class Tolerance(StrictModel):
    """Pass criteria. A `None` bound is not checked. `min_agreement` is top-1 agreement for
    classification and top-k overlap for ranking, over the verify samples."""

    max_abs_err: float | None = None
    min_cosine: float | None = Field(None, ge=-1.0, le=1.0)
    min_agreement: float = Field(0.99, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _non_negative(self) -> "Tolerance":
        if self.max_abs_err is not None and self.max_abs_err < 0:
            raise ValueError(f"max_abs_err must be >= 0, got {self.max_abs_err}")
        return self


# Keyed by the precision of the exported arithmetic. Why these numbers:
# - fp32: same maths, different kernels and fusion order; errors of ~1e-6 relative are normal, 1e-4
#   absolute on logits leaves room for deep nets; every sample must agree on the top class.
# - fp16: 10-bit mantissa (~1e-3 relative); logits of size ~10 can move by ~1e-2, and near-ties
#   may flip, so we ask 99% agreement and cosine >= 0.999.
# - int8: error is dominated by quantisation noise (SNR typically 20-40 dB); absolute error is not
#   meaningful, so only the direction (cosine >= 0.98) and 95% agreement are required.
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(max_abs_err=1e-4, min_cosine=0.99999, min_agreement=1.0),
    "fp16": Tolerance(max_abs_err=5e-2, min_cosine=0.999, min_agreement=0.99),
    "int8": Tolerance(max_abs_err=None, min_cosine=0.98, min_agreement=0.95),
}


class ParityMetrics(BaseModel):
    """How far the exported model's outputs are from PyTorch's, over `samples` inputs.

    max_abs_err = max |a - r|; max_rel_err = max |a - r| / (max |r| + eps) per sample, maxed;
    snr_db = 10 log10(sum r^2 / sum (a - r)^2); cosine = mean over samples of the cosine between rows.
    """

    model_config = ConfigDict(extra="forbid")

    max_abs_err: float
    max_rel_err: float
    snr_db: float
    cosine: float
    top1_agreement: float | None = None
    topk_overlap: float | None = None
    k: int | None = None
    samples: int


class Parity(BaseModel):
    """Verdict of one exported file against PyTorch. `not_executed` is never a pass: it says the file
    could not be run here (CoreML on Linux) and `reason` says what was checked instead."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["passed", "failed", "not_executed"]
    reason: str = ""
    metrics: ParityMetrics | None = None
    tolerance: Tolerance | None = None
    inputs: Literal["real", "random"] = "real"
    diverges_at: str | None = None
    # metrics of every output after the first (which `metrics` describes), keyed by output name
    outputs: dict[str, ParityMetrics] = {}
