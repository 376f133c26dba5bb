"""ONNX export through the torch.export-based exporter (`torch.onnx.export(..., dynamo=True)`), the
path PyTorch maintains; the TorchScript exporter is deprecated. Weights are kept inside the file
(one file to ship and digest), the graph is simplified with onnxsim when possible and always checked
with the full ONNX checker (strict shape inference) before it is written."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from torch import nn

from mobilekd.errors import ConfigError, ExportError
from mobilekd.export.divergence import explain_failure, export_program
from mobilekd.export.runtime import example_inputs, output_specs
from mobilekd.export.types import ExportedModel, OnnxOptions
from mobilekd.specs import TensorSpec
from mobilekd.store import atomic_path

log = logging.getLogger(__name__)

# The dynamo exporter has translations from opset 18 on; lower opsets are reached with the ONNX
# version converter after simplification (constant axes make more adapters applicable).
EXPORTER_MIN_OPSET = 18


def export_onnx(model: nn.Module, inputs: Sequence[TensorSpec], output_names: Sequence[str], path: Path,
                options: OnnxOptions, *, variant: str = "fp32") -> ExportedModel:
    """Export `model` (inputs positional, in `inputs` order) to one self-contained .onnx file."""
    import onnx
    import torch

    path = Path(path)
    model = model.eval()
    batch_dynamic = options.dynamic_batch or any(d.endswith(":0") for d in options.dynamic_dims)
    example = example_inputs(inputs, batch=2 if batch_dynamic else None)
    outputs = output_specs(model, example_inputs(inputs), output_names)
    dynamic_shapes = _dynamic_shapes(inputs, options)
    # torch.export runs here, not inside the ONNX exporter, so that a failing operator can be
    # traced to its module (nn_module_stack) in the error message.
    ep = export_program(model, example, dynamic_shapes=dynamic_shapes, target="onnx")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                ep, example, dynamo=True, input_names=[s.name for s in inputs],
                output_names=list(output_names), opset_version=max(options.opset, EXPORTER_MIN_OPSET),
                external_data=False, verbose=False)
        except torch.onnx.errors.OnnxExporterError as e:
            raise explain_failure(e, "onnx", ep) from e
    proto = program.model_proto
    details: dict[str, Any] = {"opset": options.opset, "dynamic_batch": options.dynamic_batch,
                               "dynamic_dims": list(options.dynamic_dims),
                               "exporter": f"torch.onnx dynamo (torch {torch.__version__})"}
    if options.simplify:
        proto, details["simplified"], reason = _simplify(proto)
        if reason:
            details["simplify_error"] = reason
    else:
        details["simplified"] = False
    if options.opset < EXPORTER_MIN_OPSET:
        proto = _convert_opset(proto, options.opset)
    proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    onnx.checker.check_model(proto, full_check=True)
    details["op_types"] = dict(sorted(Counter(n.op_type for n in proto.graph.node).items()))
    details["nodes"] = len(proto.graph.node)
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))
    if options.ort_format:
        details["ort_path"] = str(_write_ort(path))
    return ExportedModel.of_file(format="onnx", variant=variant, path=path, inputs=inputs,
                                 outputs=outputs, scheme=variant, details=details)


def _dynamic_shapes(inputs: Sequence[TensorSpec], options: OnnxOptions) -> tuple[dict, ...] | None:
    """torch.export dynamic shapes: axis 0 of every input with dynamic_batch, plus each NAME:AXIS of
    dynamic_dims. Axes of one size share one Dim (input_ids and attention_mask keep one length)."""
    import torch

    axes: list[dict[int, Any]] = [{} for _ in inputs]
    dims: dict[tuple[int, int], Any] = {}
    names = [s.name for s in inputs]

    def dim(axis: int, size: int) -> Any:
        key = (axis, size)
        if key not in dims:
            dims[key] = torch.export.Dim("batch" if axis == 0 else f"dim{axis}_{size}", min=1, max=65536)
        return dims[key]

    if options.dynamic_batch:
        for i in range(len(inputs)):
            axes[i][0] = dim(0, 0)
    for entry in options.dynamic_dims:
        name, _, axis_text = entry.partition(":")
        if name not in names or not axis_text.isdigit() or int(axis_text) >= len(inputs[names.index(name)].shape):
            raise ConfigError(f"dynamic dim {entry!r}: expected NAME:AXIS with NAME one of {names} and AXIS "
                              "an axis of that input (input_ids:1 for the sequence length)")
        i, axis = names.index(name), int(axis_text)
        axes[i][axis] = dim(axis, 0 if axis == 0 else inputs[i].shape[axis])
    return tuple(axes) if any(axes) else None


def _simplify(proto: Any) -> tuple[Any, bool, str]:
    """onnxsim folds constants and removes no-ops. It drops node metadata, which the divergence
    finder needs (module names), so the metadata is copied back by node name. A failure is a
    warning: the unsimplified model is still correct."""
    import onnxsim

    # Metadata follows the value a node computes (a Conv with a BatchNorm folded in computes the
    # BatchNorm's output), then the node name.
    by_output = {out: list(n.metadata_props) for n in proto.graph.node for out in n.output}
    by_name = {n.name: list(n.metadata_props) for n in proto.graph.node if n.name}
    try:
        simplified, ok = onnxsim.simplify(proto)
    except (RuntimeError, ValueError) as e:  # onnxsim raises these on graphs it cannot fold
        log.warning("onnxsim failed, keeping the unsimplified graph: %s", e)
        return proto, False, f"{type(e).__name__}: {e}"[:500]
    if not ok:
        log.warning("onnxsim could not validate the simplified graph; keeping the unsimplified one")
        return proto, False, "onnxsim check failed"
    for node in simplified.graph.node:
        props = next((by_output[o] for o in node.output if o in by_output), None) or by_name.get(node.name)
        if props:
            del node.metadata_props[:]
            node.metadata_props.extend(props)
    return simplified, True, ""


def _convert_opset(proto: Any, opset: int) -> Any:
    import onnx
    from onnx import version_converter

    try:
        converted = version_converter.convert_version(proto, opset)
        onnx.checker.check_model(converted, full_check=True)  # the converter can emit invalid nodes
        return converted
    except (RuntimeError, onnx.checker.ValidationError) as e:
        raise ExportError(f"OnnxOptions.opset={opset}: the exporter writes opset {EXPORTER_MIN_OPSET} and "
                          f"the ONNX version converter could not lower this graph ({str(e)[:200]}); "
                          f"use opset >= {EXPORTER_MIN_OPSET}") from e


def _write_ort(path: Path) -> Path:
    """Write the ORT-format file ORT Mobile loads, beside the .onnx (same stem, .ort). Basic graph
    optimisations only: extended ones are hardware-specific and belong on the device."""
    import onnxruntime as ort

    ort_path = path.with_suffix(".ort")
    with atomic_path(ort_path) as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = str(tmp)
        so.add_session_config_entry("session.save_model_format", "ORT")
        so.log_severity_level = 3
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return ort_path
