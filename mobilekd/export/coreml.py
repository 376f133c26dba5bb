"""CoreML export: coremltools converts a torch.export program (the path coremltools 8+ recommends;
TorchScript tracing is its legacy frontend) to an ML program `.mlpackage`. CoreML cannot run on
Linux, so `inspect_coreml` reads the saved spec instead: names, shapes, dtypes, deployment target
and weight precision, which is what verify checks there."""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from mobilekd.errors import ExportError
from mobilekd.export.divergence import explain_failure, export_program, operator_in
from mobilekd.export.runtime import example_inputs, output_specs
from mobilekd.export.types import CoreMLOptions, ExportedModel
from mobilekd.specs import TensorSpec
from mobilekd.store import atomic_path

log = logging.getLogger(__name__)

# ML program spec version -> the OS release that introduced it (coremltools' AvailableTarget).
SPEC_VERSION_TARGET: dict[int, str] = {6: "iOS15", 7: "iOS16", 8: "iOS17", 9: "iOS18", 10: "iOS26"}
# CoreML model inputs are float32/float16/int32 multiarrays: integer inputs travel as int32.
COREML_INPUT_DTYPE: dict[str, str] = {"float32": "float32", "float16": "float16", "int64": "int32",
                                      "int32": "int32", "int8": "int32", "uint8": "int32"}
# What coremltools raises for a graph it cannot convert (it has no error class of its own).
CONVERT_ERRORS: tuple[type[BaseException], ...] = (NotImplementedError, ValueError, RuntimeError, TypeError)
_ARRAY_DTYPE = {"FLOAT32": "float32", "FLOAT16": "float16", "INT32": "int32", "DOUBLE": "float64", "INT8": "int8"}
_MIL_DTYPE = {"FLOAT32": "fp32", "FLOAT16": "fp16", "INT8": "int8", "UINT8": "uint8", "INT4": "int4",
              "UINT4": "uint4", "FLOAT64": "fp64", "BFLOAT16": "bf16"}


def export_coreml(model: nn.Module, inputs: Sequence[TensorSpec], output_names: Sequence[str], path: Path,
                  options: CoreMLOptions, *, variant: str = "fp32") -> ExportedModel:
    """Convert to an ML program .mlpackage with the input/output names of `inputs`/`output_names`."""
    import coremltools as ct
    import numpy as np

    path = Path(path)
    model = model.eval()
    for spec in inputs:
        if spec.dtype not in COREML_INPUT_DTYPE:
            raise ExportError(f"coreml: input {spec.name!r} has dtype {spec.dtype}; CoreML takes "
                              f"{sorted(COREML_INPUT_DTYPE)} (integers are passed as int32)")
    example = example_inputs(inputs)
    outputs = output_specs(model, example, output_names)
    # run_decompositions({}) gives the ATen dialect coremltools' torch.export frontend expects.
    ep = export_program(model, example, target="coreml").run_decompositions({})
    ct_inputs = [ct.TensorType(name=s.name, shape=tuple(s.shape), dtype=getattr(np, COREML_INPUT_DTYPE[s.dtype]))
                 for s in inputs]
    precision = ct.precision.FLOAT16 if options.compute_precision == "fp16" else ct.precision.FLOAT32
    convert = dict(inputs=ct_inputs, outputs=[ct.TensorType(name=n) for n in output_names],
                   convert_to="mlprogram", compute_precision=precision,
                   minimum_deployment_target=getattr(ct.target, options.minimum_deployment_target))
    from mobilekd.export.coreml_ops import register_composite_ops

    register_composite_ops()
    mlmodel, frontend = _convert(model, example, ep, convert, options)
    with atomic_path(path) as tmp:
        mlmodel.save(str(tmp))
    details = {"minimum_deployment_target": options.minimum_deployment_target,
               "compute_precision": options.compute_precision, "frontend": frontend,
               "spec": inspect_coreml(path)}
    return ExportedModel.of_file(format="coreml", variant=variant, path=path, inputs=inputs,
                                 outputs=outputs, scheme=variant, details=details)


def _convert(model: nn.Module, example: tuple[torch.Tensor, ...], ep: Any, convert: dict[str, Any],
             options: CoreMLOptions) -> tuple[Any, str]:
    """coremltools' torch.export frontend; then the same program with constant ops folded
    (triu_indices of fixed sizes); then its TorchScript frontend on a trace (coremltools 9's
    torch.export frontend lacks some ops the TorchScript one has, e.g. aten.gru.input)."""
    import coremltools as ct
    from executorch.exir.passes.constant_prop_pass import constant_prop_pass

    attempts = (("torch.export", lambda: ep),
                ("torch.export + constant folding", lambda: constant_prop_pass(ep)),
                ("torchscript trace", lambda: torch.jit.trace(model, example)))
    errors: list[BaseException] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, program in attempts:
            try:
                return ct.convert(program(), **convert), name
            except CONVERT_ERRORS as e:
                log.info("coremltools %s failed (%s)", name, operator_in(str(e)))
                errors.append(e)
    raise _coreml_failure(errors[0], errors[-1], ep, options) from errors[-1]


def _coreml_failure(first: BaseException, second: BaseException, ep: Any, options: CoreMLOptions) -> ExportError:
    """Name the operator, the module, what was tried, and advice that fits the target in use."""
    from mobilekd.export.divergence import HINTS

    err = explain_failure(second if operator_in(str(second)) else first, "coreml", ep)
    hint = HINTS["coreml"]
    if options.minimum_deployment_target == "iOS18":
        hint = hint.replace("try a newer minimum_deployment_target (iOS18), ", "")
    text = str(err).split(" What to try: ")[0]
    return ExportError(f"{text} Tried: coremltools torch.export frontend, the same with constant ops folded, then torch.jit.trace, with composite "
                       f"translations for new_ones/new_zeros registered. What to try: {hint}")


def inspect_coreml(path: Path) -> dict[str, Any]:
    """Read an .mlpackage's spec without executing it (works on Linux).

    Returns {"inputs"/"outputs": [{"name", "shape", "dtype"}], "specification_version",
    "deployment_target", "model_type", "weight_precision", "weight_dtypes", "ops"}.
    """
    import coremltools as ct

    path = Path(path)
    if not path.exists():
        raise ExportError(f"CoreML package {path} does not exist")
    try:
        spec = ct.utils.load_spec(str(path))
    except (OSError, ValueError, RuntimeError) as e:
        raise ExportError(f"{path}: not a readable CoreML model ({e})") from e
    array_name = ct.proto.FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name

    def features(items: Any) -> list[dict[str, Any]]:
        out = []
        for f in items:
            arr = f.type.multiArrayType
            out.append({"name": f.name, "shape": [int(d) for d in arr.shape],
                        "dtype": _ARRAY_DTYPE.get(array_name(arr.dataType), array_name(arr.dataType).lower())})
        return out

    info: dict[str, Any] = {
        "inputs": features(spec.description.input), "outputs": features(spec.description.output),
        "specification_version": int(spec.specificationVersion),
        "deployment_target": SPEC_VERSION_TARGET.get(int(spec.specificationVersion), "unknown"),
        "model_type": spec.WhichOneof("Type"),
    }
    if info["model_type"] == "mlProgram":
        info.update(_program_summary(spec))
    return info


def _program_summary(spec: Any) -> dict[str, Any]:
    """Op counts and the dtypes of weight constants (rank >= 2) in the main function. Quantized or
    palettized weights appear as `constexpr_*` ops, whose stored dtype is the compressed one."""
    import coremltools as ct

    mil_name = ct.proto.MIL_pb2.DataType.Name
    fn = spec.mlProgram.functions["main"]
    block = fn.block_specializations[fn.opset]
    ops: Counter[str] = Counter()
    weights: Counter[str] = Counter()
    for op in block.operations:
        ops[op.type] += 1
        if op.type == "const" or op.type.startswith("constexpr_"):
            for value in (op.outputs[0].type, *[a.type for a in op.attributes.values()]):
                tensor = value.tensorType if value.WhichOneof("type") == "tensorType" else None
                if tensor is not None and tensor.rank >= 2:
                    weights[_MIL_DTYPE.get(mil_name(tensor.dataType), mil_name(tensor.dataType).lower())] += 1
                    break
            if op.type.startswith("constexpr_"):
                for attr in op.attributes.values():
                    t = attr.type.tensorType
                    if attr.type.WhichOneof("type") == "tensorType" and t.rank >= 2:
                        weights[_MIL_DTYPE.get(mil_name(t.dataType), mil_name(t.dataType).lower())] += 1
    compressed = [d for d in weights if d not in ("fp32", "fp16", "fp64", "bf16")]
    precision = compressed[0] if compressed else (weights.most_common(1)[0][0] if weights else "none")
    return {"opset": fn.opset, "weight_precision": precision, "weight_dtypes": dict(weights),
            "ops": dict(sorted(ops.items()))}
