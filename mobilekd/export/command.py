"""`mobilekd export`: build a user's model from an import path, load its weights, export it to each
requested format (optionally an int8 copy too) and verify every file against the PyTorch model.
The CLI only parses options and calls `export_command`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from mobilekd.errors import ConfigError, DataError, MobileKDError, ModelError, UserCodeError
from mobilekd.export.adapt import adapt
from mobilekd.export.hf import HF_TASKS, is_hf, load_hf, parity_task
from mobilekd.export.runtime import NP_DTYPE, example_inputs, random_feeds
from mobilekd.export.types import (
    DEFAULT_TOLERANCES, FORMATS, SUFFIX, CoreMLOptions, ExecuTorchOptions, ExportedModel, Format, OnnxOptions,
    Parity,
)
from mobilekd.export.verify import torch_outputs, verify_file
from mobilekd.imports import import_object
from mobilekd.models import load_state
from mobilekd.specs import TensorSpec

log = logging.getLogger(__name__)

RANDOM_SAMPLES = 32  # feeds drawn when no verify data is given
CALIBRATION_SAMPLES = 32  # feeds used to calibrate int8 activation ranges


QUANTIZE_SCHEMES = ("int8", "int8-static", "int8-dynamic", "int8-weights")
# Row-level failures a converter or quantizer raises for a model it cannot take. They end that
# format's row (status failed, message kept, traceback logged); the other formats go on.
FORMAT_ERRORS: tuple[type[BaseException], ...] = (MobileKDError, RuntimeError, NotImplementedError, ValueError,
                                                  TypeError, IndexError, AssertionError)


class ExportOptions(BaseModel):
    """The per-format writer options (the pipeline's `export:` section types) the CLI fills from flags."""

    onnx: OnnxOptions = OnnxOptions()
    executorch: ExecuTorchOptions = ExecuTorchOptions()
    coreml: CoreMLOptions = CoreMLOptions()


class ExportRequest(BaseModel):
    """One `mobilekd export`, every option typed in one place (the CLI fills it from its flags).

    source: an import path `module:function` (its factory takes `factory_args`) or `hf:DIR`;
    inputs: one `NAME:DTYPE[D0,...]` per model input (an hf: model builds them from its config);
    checkpoint: a state dict for the built model; verify_data / calibration_data: .npz files, one
    array per input (at most `max_samples` rows read); quantize: one of QUANTIZE_SCHEMES, or None
    for fp32 only; task and k: how parity is judged; keep_outputs: the outputs to keep (all if
    empty); stem: the files' name stem."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    inputs: list[str] = []
    formats: list[str] = list(FORMATS)
    out: Path
    checkpoint: Path | None = None
    verify_data: Path | None = None
    quantize: str | None = None
    calibration_data: Path | None = None
    task: str = "classification"
    k: int = 10
    keep_outputs: list[str] = []
    stem: str = "model"
    max_samples: int = 256
    factory_args: dict[str, Any] = {}
    options: ExportOptions = ExportOptions()


def export_command(request: ExportRequest) -> list[tuple[ExportedModel, Parity]]:
    """Export the request's model to its formats under `out` as `<stem>_fp32.<suffix>` (and
    `<stem>_int8.<suffix>`), verify each, and return (file, parity) pairs in format order, fp32
    before int8. Each format is exported and verified on its own: a format that fails gives a row
    with status `failed` and the others go on."""
    r = request
    source, inputs, formats, out, task, options = r.source, r.inputs, r.formats, r.out, r.task, r.options
    checkpoint, verify_data, calibration_data, quantize = r.checkpoint, r.verify_data, r.calibration_data, r.quantize
    k, keep_outputs, stem, max_samples = r.k, r.keep_outputs, r.stem, r.max_samples
    for f in formats:
        if f not in FORMATS:
            raise ConfigError(f"--formats: expected some of {', '.join(FORMATS)}, got {f!r}")
    if quantize is not None and quantize not in QUANTIZE_SCHEMES:
        raise ConfigError(f"--quantize: expected one of {', '.join(QUANTIZE_SCHEMES)}, got {quantize!r}")
    if is_hf(source):
        model, default_specs = load_hf(source, task)
        task = parity_task(task)
    else:
        if task not in ("classification", "ranking", "embedding"):
            raise ConfigError(f"--task: expected classification, ranking or embedding (or, for an hf: model, "
                              f"one of {', '.join(HF_TASKS)}), got {task!r}")
        model, default_specs = load_factory(source, r.factory_args), []
    if checkpoint is not None:
        load_checkpoint(model, Path(checkpoint))
    model.eval()
    specs = [TensorSpec.parse(text) for text in inputs] if inputs else default_specs
    if not specs:
        raise ConfigError("--input: give one NAME:DTYPE[D0,...] per model input, e.g. x:float32[1,3,32,32]")
    from mobilekd.usercode import calling

    shapes = "--input " + " ".join(inputs) if inputs else "inputs"
    with calling(shapes, source, action="failed on inputs of these shapes with"):
        flat = adapt(model, [s.name for s in specs], example_inputs(specs), keep_outputs)
    output_names = flat.output_names
    if verify_data is not None:
        feeds, kind = load_feeds(Path(verify_data), specs, max_samples=max_samples), "real"
    else:
        high = _id_range(model)
        log.warning("no --verify-data: parity is checked on %d random inputs (integers in [0, %d))",
                    RANDOM_SAMPLES, high)
        feeds, kind = random_feeds(specs, RANDOM_SAMPLES, int_high=high), "random"
    calibration = (load_feeds(Path(calibration_data), specs, max_samples=max_samples)
                   if calibration_data is not None else feeds)[:CALIBRATION_SAMPLES]
    with calling(shapes, source, action="failed on inputs of these shapes with"):
        refs = torch_outputs(flat, [s.name for s in specs], feeds)
    extra = dict(zip(output_names[1:], refs[1:]))
    out = Path(out)
    results: list[tuple[ExportedModel, Parity]] = []
    from mobilekd.export import export_model

    def check(exported: ExportedModel, precision: str) -> Parity:
        return verify_file(exported, refs[0], feeds, task=task, k=k, inputs_kind=kind, extra_references=extra,
                           tolerance=DEFAULT_TOLERANCES[precision], model=flat)

    fp32: dict[str, ExportedModel] = {}
    for fmt in formats:
        path = out / f"{stem}_fp32{SUFFIX[fmt]}"
        row = _attempt(fmt, "fp32", path, specs, lambda: export_model(
            fmt, flat, specs, output_names, path, options=getattr(options, fmt)), check, "fp32")
        if row[0].bytes:
            fp32[fmt] = row[0]
        results.append(row)
    if quantize is not None:
        scheme = fitting_scheme(model) if quantize == "int8" else quantize.removeprefix("int8-")
        for fmt in formats:
            path = out / f"{stem}_int8{SUFFIX[fmt]}"
            if fmt != "executorch" and fmt not in fp32:
                results.append(_failed(fmt, "int8", path, specs, f"no int8 {fmt} file: the fp32 {fmt} export failed"))
                continue
            results.append(_attempt(fmt, "int8", path, specs, lambda: quantize_int8(
                fmt, flat, specs, output_names, fp32.get(fmt), path, scheme=scheme, calibration=calibration,
                options=options), check, "int8"))
    return results


def fitting_scheme(model: nn.Module) -> str:
    """'static' for conv nets (activations calibrated: XNNPACK's and ORT's fast int8 conv kernels
    need int8 on both sides; a large classifier head does not make a conv net Linear-heavy), 'dynamic'
    for Linear/recurrent/transformer models, whose activation ranges vary per input."""
    modules = list(model.modules())
    conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in modules)
    sequence = any(isinstance(m, (nn.RNNBase, nn.MultiheadAttention)) or "Attention" in type(m).__name__
                   for m in modules)
    return "static" if conv and not sequence else "dynamic"


def _attempt(fmt: str, variant: str, path: Path, specs: Sequence[TensorSpec], build: Callable[[], ExportedModel],
             check: Callable[[ExportedModel, str], Parity], precision: str) -> tuple[ExportedModel, Parity]:
    """Export then verify one file; a failure of either gives a failed row naming what went wrong."""
    try:
        exported = build()
    except FORMAT_ERRORS as e:
        log.debug("%s/%s export failed", fmt, variant, exc_info=True)
        return _failed(fmt, variant, path, specs, _reason(e, fmt))
    try:
        return exported, check(exported, precision)
    except FORMAT_ERRORS as e:
        log.debug("%s/%s verify failed", fmt, variant, exc_info=True)
        return exported, Parity(status="failed", reason=f"verify could not run the file: {_reason(e, fmt)}")


def _reason(error: BaseException, fmt: str) -> str:
    if isinstance(error, MobileKDError):
        return str(error)
    from mobilekd.export.divergence import explain_failure

    return str(explain_failure(error, fmt, None))  # type: ignore[arg-type]


def _failed(fmt: str, variant: str, path: Path, specs: Sequence[TensorSpec], reason: str) -> tuple[ExportedModel, Parity]:
    row = ExportedModel(format=fmt, variant=variant, path=str(path), bytes=0, sha256="", inputs=list(specs),  # type: ignore[arg-type]
                        outputs=[], scheme=variant, details={"error": reason})
    return row, Parity(status="failed", reason=reason)


def load_factory(factory: str, args: dict[str, Any] | None = None) -> nn.Module:
    """Import `module.path:function` and call it with the keyword arguments it declares that are
    given (`--arg num_outputs=10`); an argument it does not declare is refused, never passed blindly."""
    import inspect

    fn = import_object(factory, what="model factory")
    args = dict(args or {})
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    unknown = [k for k in args if k not in params and not takes_any]
    if unknown:
        raise ConfigError(f"--arg {unknown}: model factory {factory!r} takes {sorted(params) or 'no arguments'}")
    missing = [n for n, p in params.items() if p.default is p.empty and n not in args
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if missing:
        raise ConfigError(f"model factory {factory!r} needs {missing}; give them as --arg NAME=VALUE")
    from mobilekd.usercode import calling

    try:
        with calling("model factory", factory):
            model = fn(**args)
    except UserCodeError as e:
        if isinstance(e.__cause__, TypeError):
            raise ModelError(f"model factory {factory!r} failed with arguments {args}: {e.__cause__}") from e
        raise
    if not isinstance(model, nn.Module):
        raise ModelError(f"model factory {factory!r} returned {type(model).__name__}, expected a torch.nn.Module")
    return model


def parse_args(pairs: Sequence[str]) -> dict[str, Any]:
    """`--arg k=v` values: Python literals (10, 0.5, True, 'a', [1, 2]) or, failing that, strings."""
    import ast

    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"--arg {pair!r}: expected NAME=VALUE, e.g. num_outputs=10")
        try:
            args[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            args[key.strip()] = value
    return args


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
                  fp32: ExportedModel | None, path: Path, *, scheme: str, calibration: Sequence[dict[str, np.ndarray]],
                  options: ExportOptions) -> ExportedModel:
    """The int8 hook: each format's route lives in mobilekd.compress.quantize (PT2E for ExecuTorch,
    ONNX Runtime for ONNX, coremltools.optimize for CoreML). scheme: static | dynamic | weights;
    'weights' is the dynamic route on ONNX/ExecuTorch (int8 weights; activations stay float between
    layers, quantized per call), and int8 weights on CoreML."""
    from mobilekd.compress import quantize as quant
    if fmt == "executorch":
        from mobilekd.export.executorch import export_executorch

        cal = [tuple(torch.from_numpy(f[s.name]) for s in specs) for f in calibration]
        et = quant.ExecuTorchQuant(scheme="static" if scheme == "static" else "dynamic")
        graph = quant.quantize_pt2e(model, example_inputs(specs), cal, scheme=et.scheme)
        return export_executorch(graph, specs, output_names, path, options.executorch, variant="int8",
                                 scheme=quant.scheme_label("executorch", et))
    assert fp32 is not None  # callers skip int8 where the fp32 file is missing
    if fmt == "onnx":
        opts = quant.OnnxQuant(scheme="static" if scheme == "static" else "dynamic")
        label = quant.quantize_onnx(Path(fp32.path), path, options=opts, calibration_feeds=calibration)
    else:
        label = quant.quantize_coreml(Path(fp32.path), path, options=quant.CoreMLQuant())
    return ExportedModel.of_file(format=fmt, variant="int8", path=path, inputs=fp32.inputs, outputs=fp32.outputs,
                                 scheme=label, details={"from": fp32.path})


def _id_range(model: nn.Module) -> int:
    """Random integer inputs must be valid ids: draw them below the smallest embedding table."""
    sizes = [m.num_embeddings for m in model.modules() if isinstance(m, nn.Embedding)]
    return min(sizes) if sizes else 2
