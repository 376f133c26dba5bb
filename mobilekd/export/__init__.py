"""mobilekd.export: write a model as ONNX, ExecuTorch (.pte) or CoreML (.mlpackage), run the file
back, and verify its parity with PyTorch.

Heavy libraries (onnx, onnxruntime, executorch, coremltools) are imported inside the functions,
so importing this package costs only the pydantic types below. The functions are reached through
their modules: `mobilekd.export.onnx.export_onnx`, `.executorch.export_executorch`,
`.coreml.export_coreml` / `inspect_coreml`, `.runtime.open_runtime` / `run_file` / `can_execute`,
`.verify.compare` / `verify_file`, `.command.export_command`, or `export_model` here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from mobilekd.export.types import (
    DEFAULT_TOLERANCES, FORMATS, SUFFIX, CoreMLOptions, ExecuTorchOptions, ExportedModel, Format,
    OnnxOptions, Parity, ParityMetrics, Tolerance,
)

if TYPE_CHECKING:
    from torch import nn

    from mobilekd.specs import TensorSpec

__all__ = [
    "DEFAULT_TOLERANCES", "FORMATS", "SUFFIX", "CoreMLOptions", "ExecuTorchOptions", "ExportedModel",
    "Format", "OnnxOptions", "Parity", "ParityMetrics", "Tolerance", "export_model",
]


def export_model(format: Format, model: "nn.Module", inputs: Sequence["TensorSpec"], output_names: Sequence[str],
                 path: Path, *, options: OnnxOptions | ExecuTorchOptions | CoreMLOptions | None = None,
                 variant: str = "fp32") -> ExportedModel:
    """Dispatch to the exporter of `format` with its default options unless `options` is given."""
    if format == "onnx":
        from mobilekd.export.onnx import export_onnx

        return export_onnx(model, inputs, output_names, path, _opts(options, OnnxOptions), variant=variant)
    if format == "executorch":
        from mobilekd.export.executorch import export_executorch

        return export_executorch(model, inputs, output_names, path, _opts(options, ExecuTorchOptions),
                                 variant=variant, scheme=variant)
    if format == "coreml":
        from mobilekd.export.coreml import export_coreml

        return export_coreml(model, inputs, output_names, path, _opts(options, CoreMLOptions), variant=variant)
    from mobilekd.errors import ConfigError

    raise ConfigError(f"format: expected one of {', '.join(FORMATS)}, got {format!r}")


def _opts(options, cls):  # type: ignore[no-untyped-def]
    if options is None:
        return cls()
    if not isinstance(options, cls):
        raise TypeError(f"expected {cls.__name__}, got {type(options).__name__}")
    return options
