"""`mobilekd export`: build a user's model from an import path, load its weights, export it to each
requested format (optionally an int8 copy too) and verify every file against the PyTorch model.
The CLI only parses options and calls `export_command`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
from torch import nn

from mobilekd.errors import DataError, MobileKDError, ModelError
from mobilekd.imports import import_object
from mobilekd.models import load_state
from mobilekd.export.runtime import NP_DTYPE, example_inputs, random_feeds
from mobilekd.export.types import (
    DEFAULT_TOLERANCES, FORMATS, SUFFIX, ExecuTorchOptions, ExportedModel, Format, Parity, Task,
)
from mobilekd.export.verify import torch_reference, verify_file
from mobilekd.specs import TensorSpec

log = logging.getLogger(__name__)

RANDOM_SAMPLES = 32  # feeds drawn when no verify data is given
CALIBRATION_SAMPLES = 32  # feeds used to calibrate int8 activation ranges


def export_command(factory: str, inputs: list[str], formats: list[Format], out: Path, *,
                   checkpoint: Path | None = None, verify_data: Path | None = None,
                   quantize: Literal["int8"] | None = None, task: Task = "classification", k: int = 10,
                   output_names: Sequence[str] = ("logits",), stem: str = "model",
                   max_samples: int = 256) -> list[tuple[ExportedModel, Parity]]:
    """Export `factory()` to `formats` under `out` as `<stem>_fp32.<suffix>` (and `<stem>_int8.<suffix>`;
    the pipeline names its files the same way, with stem `student`), verify each, and return (file, parity) pairs in format order, fp32 before int8."""
    for f in formats:
        if f not in FORMATS:
            raise MobileKDError(f"--formats: expected some of {', '.join(FORMATS)}, got {f!r}")
    model = load_factory(factory)
    if checkpoint is not None:
        load_checkpoint(model, Path(checkpoint))
    model.eval()
    specs = [TensorSpec.parse(text) for text in inputs]
    if verify_data is not None:
        feeds, kind = load_feeds(Path(verify_data), specs, max_samples=max_samples), "real"
    else:
        high = _id_range(model)
        log.warning("no --verify-data: parity is checked on %d random inputs (integers in [0, %d))",
                    RANDOM_SAMPLES, high)
        feeds, kind = random_feeds(specs, RANDOM_SAMPLES, int_high=high), "random"
    reference = torch_reference(model, [s.name for s in specs])
    from mobilekd.usercode import calling

    with calling("--input " + " ".join(inputs), factory, action="failed on inputs of these shapes with"):
        ref = np.concatenate([reference(f) for f in feeds])
    out = Path(out)
    results: list[tuple[ExportedModel, Parity]] = []
    from mobilekd.export import export_model

    fp32: dict[str, ExportedModel] = {}
    for fmt in formats:
        exported = export_model(fmt, model, specs, output_names, out / f"{stem}_fp32{SUFFIX[fmt]}")  # <stem>_<variant>, as the pipeline names its files
        fp32[fmt] = exported
        results.append((exported, verify_file(exported, ref, feeds, task=task, k=k, inputs_kind=kind,
                                              tolerance=DEFAULT_TOLERANCES["fp32"], model=model)))
    if quantize == "int8":
        for fmt in formats:
            exported = quantize_int8(fmt, model, specs, output_names, fp32[fmt], out / f"{stem}_int8{SUFFIX[fmt]}",
                                     calibration=feeds[:CALIBRATION_SAMPLES])
            results.append((exported, verify_file(exported, ref, feeds, task=task, k=k, inputs_kind=kind,
                                                  tolerance=DEFAULT_TOLERANCES["int8"])))
    elif quantize is not None:
        raise MobileKDError(f"--quantize: expected 'int8', got {quantize!r}")
    return results


def load_factory(factory: str) -> nn.Module:
    """Import `module.path:function` and call it with no arguments; it must return an nn.Module."""
    from mobilekd.usercode import calling

    fn = import_object(factory, what="model factory")
    with calling("model factory", factory):
        model = fn()
    if not isinstance(model, nn.Module):
        raise ModelError(f"model factory {factory!r} returned {type(model).__name__}, expected a torch.nn.Module")
    return model


def load_checkpoint(model: nn.Module, path: Path) -> None:
    """Load a weights-only state dict; mismatches name the keys (see mobilekd.models.load_state)."""
    load_state(model, path, key="--checkpoint")


def load_feeds(path: Path, specs: Sequence[TensorSpec], *, max_samples: int) -> list[dict[str, np.ndarray]]:
    """Batch-1 feeds from an .npz holding one array per input name, samples on axis 0."""
    if not path.is_file():
        raise DataError(f"--verify-data {path}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"--verify-data {path}: not a readable .npz ({e})") from e
    missing = [s.name for s in specs if s.name not in data.files]
    if missing:
        raise DataError(f"--verify-data {path}: no array for input(s) {missing}; it holds {data.files}")
    arrays = {s.name: data[s.name] for s in specs}
    counts = {name: a.shape[0] if a.ndim else 0 for name, a in arrays.items()}
    if len(set(counts.values())) != 1 or 0 in counts.values():
        raise DataError(f"--verify-data {path}: every input needs the same number (>0) of samples on axis 0, got {counts}")
    for s in specs:
        if tuple(arrays[s.name].shape[1:]) != tuple(s.shape[1:]):
            raise DataError(f"--verify-data {path}: {s.name} has sample shape {tuple(arrays[s.name].shape[1:])}, "
                            f"the input declares {tuple(s.shape[1:])}")
    n = min(next(iter(counts.values())), max_samples)
    return [{s.name: np.ascontiguousarray(arrays[s.name][i:i + 1].astype(NP_DTYPE[s.dtype])) for s in specs}
            for i in range(n)]


def quantize_int8(fmt: Format, model: nn.Module, specs: Sequence[TensorSpec], output_names: Sequence[str],
                  fp32: ExportedModel, path: Path, *, calibration: Sequence[dict[str, np.ndarray]]) -> ExportedModel:
    """The int8 hook: each format's route lives in mobilekd.compress.quantize (PT2E for ExecuTorch,
    ONNX Runtime for ONNX, coremltools.optimize for CoreML)."""
    quant = _quantize_module()
    if fmt == "executorch":
        from mobilekd.export.executorch import export_executorch

        cal = [tuple(torch.from_numpy(f[s.name]) for s in specs) for f in calibration]
        graph = quant.quantize_pt2e(model, example_inputs(specs), cal)
        scheme = quant.scheme_label("executorch", quant.ExecuTorchQuant())
        return export_executorch(graph, specs, output_names, path, ExecuTorchOptions(), variant="int8", scheme=scheme)
    if fmt == "onnx":
        scheme = quant.quantize_onnx(Path(fp32.path), path, options=quant.OnnxQuant(), calibration_feeds=calibration)
    else:
        scheme = quant.quantize_coreml(Path(fp32.path), path, options=quant.CoreMLQuant())
    return ExportedModel.of_file(format=fmt, variant="int8", path=path, inputs=fp32.inputs, outputs=fp32.outputs,
                                 scheme=scheme, details={"from": fp32.path})


def _quantize_module():  # type: ignore[no-untyped-def]
    try:
        from mobilekd.compress import quantize
    except ImportError as e:
        raise MobileKDError("--quantize int8 needs mobilekd.compress.quantize, not yet wired") from e
    if not hasattr(quantize, "quantize_pt2e"):
        raise MobileKDError("--quantize int8 needs mobilekd.compress.quantize, not yet wired")
    return quantize


def _id_range(model: nn.Module) -> int:
    """Random integer inputs must be valid ids: draw them below the smallest embedding table."""
    sizes = [m.num_embeddings for m in model.modules() if isinstance(m, nn.Embedding)]
    return min(sizes) if sizes else 2
