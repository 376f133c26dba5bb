"""Post-training quantization, one function per target runtime.

Each runtime wants its own int8 representation, so each route uses that runtime's own tool rather
than one generic pass: PT2E + XNNPACKQuantizer for ExecuTorch (the graph XnnpackPartitioner
delegates), ONNX Runtime's quantization tools for .onnx (QDQ nodes its kernels fuse), and
coremltools.optimize.coreml for .mlpackage (weight compression the Core ML runtime decodes).
Heavy imports stay inside the functions so `import mobilekd` stays fast.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mobilekd.errors import ConfigError, MobileKDError, StageError
from mobilekd.specs import StrictModel
from mobilekd.store import atomic_path

if TYPE_CHECKING:  # torch is imported inside the functions: config.py imports the option models
    import numpy as np
    import torch
    from torch import Tensor, nn


class ExecuTorchQuant(StrictModel):
    """int8 for the ExecuTorch XNNPACK backend (PT2E, XNNPACKQuantizer).

    static: int8 weights and activations, activation ranges calibrated on real data.
    dynamic: int8 weights; activation ranges computed per batch at run time. XNNPACKQuantizer's
    dynamic config covers Linear layers; convolutions stay float32.
    qat: quantization-aware training (fake-quant during fine-tuning; see `prepare_qat`).
    per_channel: one weight scale per output channel (more accurate) instead of one per tensor.
    """

    scheme: Literal["static", "dynamic", "qat"] = "static"
    per_channel: bool = True


class OnnxQuant(StrictModel):
    """int8 for ONNX Runtime (onnxruntime.quantization).

    static: QDQ format (QuantizeLinear/DequantizeLinear pairs), uint8 activations / int8 weights,
    activation ranges from `calibration` over real inputs. dynamic: int8 weights, activations
    quantized per batch at run time (good for Linear/RNN/transformers, little gain for CNNs).
    """

    scheme: Literal["static", "dynamic"] = "static"
    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"
    per_channel: bool = True
    # ONNX op types to quantize (onnxruntime's op_types_to_quantize); None: every type it can. An audio
    # front end needs [Conv, Gemm]: a uint8 power spectrum into the mel MatMul keeps only ~24 dB.
    op_types: list[str] | None = None
    # Weights in 7 bits (ORT's reduce_range). On x86-64 CPUs without VNNI, ORT's int8 kernels multiply
    # uint8 activations by int8 weights in pairs summed into int16, which saturates when both are
    # large: per-channel weights use the full int8 range in every channel, and there the int8 files
    # disagreed with the float model (tiny digits CNN: top-1 0.80 against 0.98 for the same file run
    # unfused). ORT's docs advise reduce_range on such machines. None (default): on when this host is
    # x86-64 without VNNI, where the file is verified; phones (ARM) do not saturate either way.
    reduce_range: bool | None = None


class CoreMLQuant(StrictModel):
    """Compression for Core ML (coremltools.optimize.coreml); computation stays float16/32.

    int8_weights: symmetric linear int8 weights, per output channel.
    palettize4/6/8: k-means look-up table of 2**n float values per weight tensor (n-bit indices).
    int8_weights_activations: int8 weights + int8 activations; calibrating activations runs the
    model, which only macOS can do.
    weight_threshold: weights with at most this many elements stay float (coremltools default).
    """

    scheme: Literal["int8_weights", "palettize4", "palettize6", "palettize8", "int8_weights_activations"] = (
        "int8_weights"
    )
    weight_threshold: int = 2048


QuantOptions = ExecuTorchQuant | OnnxQuant | CoreMLQuant


def scheme_label(
    kind: Literal["executorch", "onnx", "coreml"],
    options: QuantOptions,
    *,
    keep_float: Sequence[str] = (),
) -> str:
    """One human-readable line recorded per artifact, e.g. 'int8 static per-channel (PT2E XNNPACKQuantizer)'."""
    if kind == "executorch" and isinstance(options, ExecuTorchQuant):
        gran = "per-channel" if options.per_channel else "per-tensor"
        label = f"int8 {options.scheme} {gran} (PT2E XNNPACKQuantizer)"
    elif kind == "onnx" and isinstance(options, OnnxQuant):
        gran = "per-channel" if options.per_channel else "per-tensor"
        if options.scheme == "static":
            label = f"int8 static QDQ {gran}, {options.calibration} calibration (ONNX Runtime quantize_static)"
        else:
            label = f"int8 dynamic {gran} (ONNX Runtime quantize_dynamic)"
        if options.op_types is not None:
            label += f"; ops quantized: {', '.join(options.op_types)}"
    elif kind == "coreml" and isinstance(options, CoreMLQuant):
        label = {
            "int8_weights": "int8 weights, linear symmetric per-channel",
            "palettize4": "4-bit palettized weights (k-means LUT)",
            "palettize6": "6-bit palettized weights (k-means LUT)",
            "palettize8": "8-bit palettized weights (k-means LUT)",
            "int8_weights_activations": "int8 weights + int8 activations, linear symmetric",
        }[options.scheme] + " (coremltools.optimize.coreml)"
    else:
        raise ConfigError(f"scheme_label: options {type(options).__name__} do not belong to kind {kind!r}")
    if keep_float:
        label += f"; kept float: {', '.join(keep_float)}"
    return label


# --------------------------------------------------------------------------- PT2E / ExecuTorch


def check_module_names(model: nn.Module, names: Sequence[str], key: str) -> None:
    known = {n for n, _ in model.named_modules() if n}
    unknown = [n for n in names if n not in known]
    if unknown:
        sample = ", ".join(sorted(known)[:12])
        raise ConfigError(f"{key}: no module named {unknown} in the model; names come from "
                          f"model.named_modules(), e.g. {sample}")


def _restore_integer_constants(model: torch.fx.GraphModule) -> None:
    """Give back their integer dtype to the scalar constants of integer add/mul nodes.

    Workaround: XNNPACKQuantizer.transform_for_annotation (executorch 1.5) turns every scalar of
    add/mul into a float32 tensor, so an int64 `arange(n) + 0` (position ids, attention-mask indices
    in transformers) becomes float and the model fails with "tensors used as indices must be long".
    """
    import torch

    for node in model.graph.nodes:
        val = node.meta.get("val")
        if node.op != "call_function" or not isinstance(val, torch.Tensor) or val.dtype.is_floating_point:
            continue
        for arg in node.args:
            if isinstance(arg, torch.fx.Node) and arg.op == "get_attr" and arg.target.startswith("_tensor_constant_"):
                const = getattr(model, arg.target)
                if const.dtype.is_floating_point:
                    fixed = const.to(val.dtype)
                    model.register_buffer(arg.target, fixed)
                    arg.meta["val"] = arg.meta["val"].to(val.dtype)
    model.recompile()


def _strip_integer_annotations(model: torch.fx.GraphModule) -> None:
    """Integer tensors (token ids, item ids, indices) are never quantized: drop any qspec on them."""
    import torch

    def is_int(node) -> bool:
        val = node.meta.get("val") if isinstance(node, torch.fx.Node) else None
        return isinstance(val, torch.Tensor) and not val.dtype.is_floating_point

    for node in model.graph.nodes:
        ann = node.meta.get("quantization_annotation")
        if ann is None:
            continue
        for inp in [i for i in ann.input_qspec_map if is_int(i)]:
            del ann.input_qspec_map[inp]
        if ann.output_qspec is not None and is_int(node):
            ann.output_qspec = None


def _integer_safe_quantizer_class():
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer

    class IntegerSafeXNNPACKQuantizer(XNNPACKQuantizer):
        """XNNPACKQuantizer that leaves integer inputs and integer arithmetic alone, and whose
        keep-float filter holds for every op: XNNPACKQuantizer's `cat` annotator (executorch 1.5)
        ignores the filter function and quantizes the inputs of a `cat` inside a float module."""

        keep_float_filter = None  # node -> True when the node belongs to a module kept float

        def transform_for_annotation(self, model):
            model = super().transform_for_annotation(model)
            _restore_integer_constants(model)
            return model

        def annotate(self, model):
            model = super().annotate(model)
            _strip_integer_annotations(model)
            if self.keep_float_filter is not None:
                for node in model.graph.nodes:
                    if "quantization_annotation" in node.meta and self.keep_float_filter(node):
                        del node.meta["quantization_annotation"]
            return model

    return IntegerSafeXNNPACKQuantizer


def xnnpack_quantizer(
    *,
    per_channel: bool = True,
    dynamic: bool = False,
    qat: bool = False,
    keep_float: Sequence[str] = (),
    only: str | None = None,
):
    """An XNNPACKQuantizer configured for the whole model, or for `only` one module.

    keep_float uses the quantizer's filter function: XNNPACKQuantizer.set_module_name(name, None)
    asserts in executorch 1.5 ("quantization_config == None is not supported yet").
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import get_symmetric_quantization_config
    from torchao.quantization.pt2e.quantizer.utils import get_module_name_filter

    config = get_symmetric_quantization_config(is_per_channel=per_channel, is_dynamic=dynamic, is_qat=qat)
    quantizer = _integer_safe_quantizer_class()()
    if only is not None:
        quantizer.set_module_name(only, config)
    else:
        quantizer.set_global(config)
    if keep_float:
        filters = [get_module_name_filter(name) for name in keep_float]
        quantizer.set_filter_function(lambda node: not any(f(node) for f in filters))
        quantizer.keep_float_filter = lambda node: any(f(node) for f in filters)
    return quantizer


def _export_for_pt2e(model: nn.Module, example_inputs: tuple[Tensor, ...]) -> torch.fx.GraphModule:
    """torch.export with the batch axis left dynamic where the model allows (Dim.AUTO quietly
    specialises otherwise), so calibration and accuracy checks can run whole batches. A batch-1
    example is doubled for tracing, since export always specialises a size-1 axis; a model that
    cannot even trace at batch 2 (e.g. x.view(1, -1)) is exported as given, static."""
    import torch
    from torch.export import Dim

    inputs = tuple(torch.cat([t, t]) if t.dim() > 0 and t.shape[0] == 1 else t for t in example_inputs)
    from mobilekd.export.adapt import dynamic_shapes_for

    dynamic = dynamic_shapes_for(model, tuple({0: Dim.AUTO} if t.dim() > 0 else None for t in inputs))
    try:
        return torch.export.export(model, inputs, dynamic_shapes=dynamic).module()
    except (RuntimeError, torch._dynamo.exc.UserError):  # the batch-2 trace failed: try as given
        pass
    try:
        return torch.export.export(model, tuple(example_inputs)).module()
    except torch._dynamo.exc.UserError as exc:  # data-dependent control flow and the like
        raise StageError(f"quantize: torch.export could not capture the model ({exc}); "
                         "PT2E quantization needs an exportable model") from exc


def quantize_pt2e(
    model: nn.Module,
    example_inputs: tuple[Tensor, ...],
    calibration: Sequence[tuple[Tensor, ...]],
    *,
    scheme: Literal["static", "dynamic"] = "static",
    per_channel: bool = True,
    keep_float: Sequence[str] = (),
    only: str | None = None,
) -> torch.fx.GraphModule:
    """export -> prepare_pt2e(XNNPACKQuantizer) -> calibrate -> convert_pt2e.

    The result runs eagerly (for accuracy checks) and goes through torch.export.export +
    to_edge_transform_and_lower(XnnpackPartitioner) to an XNNPACK-delegated int8 .pte.
    keep_float: module names (model.named_modules()) left in float.
    only: quantize this one module and nothing else (used by layer sensitivity).
    """
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    if scheme not in ("static", "dynamic"):
        raise ConfigError(f"quantize.scheme: expected 'static' or 'dynamic' for post-training PT2E, got "
                          f"{scheme!r} (use prepare_qat/convert_qat for 'qat')")
    if scheme == "static" and not calibration:
        raise StageError("quantize: static PT2E quantization needs at least one calibration batch, got none")
    check_module_names(model, keep_float, "quantize.keep_float")
    if only is not None:
        check_module_names(model, [only], "quantize.only")
    model = model.eval()
    gm = _export_for_pt2e(model, example_inputs)
    quantizer = xnnpack_quantizer(per_channel=per_channel, dynamic=scheme == "dynamic",
                                  keep_float=keep_float, only=only)
    prepared = prepare_pt2e(gm, quantizer)
    with torch.no_grad():
        # Weight observers only record on a forward pass; with no calibration (dynamic) the
        # weights would keep the observer's default scale of 1.0, so the example runs once.
        for batch in calibration or [example_inputs]:
            prepared(*batch)
    return convert_pt2e(prepared)


def prepare_qat(
    model: nn.Module,
    example_inputs: tuple[Tensor, ...],
    *,
    per_channel: bool = True,
    keep_float: Sequence[str] = (),
) -> torch.fx.GraphModule:
    """Insert fake-quant for quantization-aware training (scheme 'qat'); train the result, then
    call `convert_qat`. The model is exported in train mode so BatchNorm keeps updating."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    check_module_names(model, keep_float, "quantize.keep_float")
    gm = _export_for_pt2e(model.train(), example_inputs)
    return prepare_qat_pt2e(gm, xnnpack_quantizer(per_channel=per_channel, qat=True, keep_float=keep_float))


def convert_qat(prepared: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Fake-quant -> real int8 (de)quantize ops, in eval mode; same output kind as quantize_pt2e."""
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    return convert_pt2e(move_exported_model_to_eval(prepared))


# --------------------------------------------------------------------------- ONNX Runtime


def _feeds_reader(feeds: Sequence[dict[str, np.ndarray]]):
    from onnxruntime.quantization import CalibrationDataReader

    class _Feeds(CalibrationDataReader):
        """Hands ONNX Runtime's calibrator the calibration feeds one at a time."""

        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

        def rewind(self) -> None:
            self._it = iter(feeds)

    return _Feeds()


def _pre_process(src: Path, dst: Path) -> Path:
    """ORT's recommended shape inference + graph optimisation before quantizing. It gives better
    int8 graphs but fails on some models; the quantizer still works without it."""
    from onnxruntime.quantization import quant_pre_process

    try:
        quant_pre_process(str(src), str(dst))
        return dst
    # quant_pre_process raises bare Exception from its symbolic shape inference, so nothing
    # narrower catches its failures; the error is shown, and the un-preprocessed model is used.
    except Exception as exc:  # noqa: BLE001
        warnings.warn(f"onnxruntime quant_pre_process failed on {src} ({type(exc).__name__}: {exc}); "
                      "quantizing the model without pre-processing", stacklevel=3)
        return src


def onnx_nodes_of_modules(model_path: Path, modules: Sequence[str]) -> list[str]:
    """Names of the ONNX nodes exported from `modules` (model.named_modules() names) or their
    submodules, read from the torch.onnx exporter's `pkg.torch.onnx.name_scopes` node metadata (the
    module path of each node; onnxsim and ORT's pre-processing keep it). An unmatched module is an
    error: keeping nothing float while the user asked for it would pass silently."""
    import ast

    import onnx

    if not modules:
        return []
    proto = onnx.load(str(model_path), load_external_data=False)
    found: dict[str, list[str]] = {m: [] for m in modules}
    for node in proto.graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        try:
            scopes = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]"))[:-1]  # last: the op itself
        except (ValueError, SyntaxError):
            continue
        for m in modules:
            if m in scopes:
                found[m].append(node.name)
    missing = [m for m, nodes in found.items() if not nodes]
    if missing:
        raise ConfigError(f"quantize.keep_float: no ONNX node of {model_path.name} comes from module(s) {missing} "
                          "(matched by the exporter's pkg.torch.onnx.name_scopes metadata); names come from "
                          "model.named_modules()")
    return sorted({n for nodes in found.values() for n in nodes})


def quantize_onnx(
    fp32_path: Path,
    out_path: Path,
    *,
    options: OnnxQuant,
    calibration_feeds: Sequence[dict[str, np.ndarray]],
    keep_float: Sequence[str] = (),
) -> str:
    """Write an int8 copy of `fp32_path` to `out_path` (atomically); return the scheme label.
    keep_float: module names whose nodes stay float (ORT's nodes_to_exclude), as in quantize_pt2e."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    if not fp32_path.is_file():
        raise StageError(f"quantize_onnx: fp32 model {fp32_path} does not exist")
    if options.scheme == "static" and not calibration_feeds:
        raise StageError("quantize_onnx: static quantization needs calibration_feeds, got none")
    reduce_range = options.reduce_range if options.reduce_range is not None else x86_without_vnni()
    with tempfile.TemporaryDirectory(prefix="mobilekd-ortq-") as tmpdir:
        src = _pre_process(fp32_path, Path(tmpdir) / "pre.onnx")
        exclude = onnx_nodes_of_modules(src, keep_float)
        with atomic_path(out_path) as tmp:
            if options.scheme == "static":
                method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                          "percentile": CalibrationMethod.Percentile}[options.calibration]
                quantize_static(str(src), str(tmp), _feeds_reader(calibration_feeds),
                                quant_format=QuantFormat.QDQ, per_channel=options.per_channel,
                                reduce_range=reduce_range,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                calibrate_method=method, op_types_to_quantize=options.op_types,
                                nodes_to_exclude=exclude)
            else:
                quantize_dynamic(str(src), str(tmp), per_channel=options.per_channel, reduce_range=reduce_range,
                                 weight_type=QuantType.QInt8, op_types_to_quantize=options.op_types,
                                 nodes_to_exclude=exclude)
    return scheme_label("onnx", options, keep_float=keep_float)


def x86_without_vnni(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True on an x86-64 host whose CPU has no VNNI (no avx512_vnni / avx_vnni flag in `cpuinfo`):
    where ORT's u8 x s8 int8 kernels can saturate (see OnnxQuant.reduce_range)."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        return "vnni" not in cpuinfo.read_text()
    except OSError:  # no /proc (macOS, Windows): leave ORT's default
        return False


# --------------------------------------------------------------------------- Core ML


def quantize_coreml(mlpackage: Path, out_path: Path, *, options: CoreMLQuant) -> str:
    """Compress the weights of an ML program (.mlpackage) and write it to `out_path`; return the label.

    Loads with skip_model_load=True, so it works on Linux, where Core ML cannot run models.
    """
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    mlpackage, out_path = Path(mlpackage), Path(out_path)
    if options.scheme == "int8_weights_activations":
        raise MobileKDError(
            "quantize.coreml.scheme='int8_weights_activations': calibrating activations "
            "(coremltools linear_quantize_activations) runs the model, which needs macOS; on Linux "
            "use scheme 'int8_weights' or a palettize scheme")
    if not mlpackage.exists():
        raise StageError(f"quantize_coreml: {mlpackage} does not exist")
    model = ct.models.MLModel(str(mlpackage), skip_model_load=True)
    if model.get_spec().WhichOneof("Type") != "mlProgram":
        raise StageError(f"quantize_coreml: {mlpackage} is not an ML program; convert with convert_to='mlprogram'")
    if options.scheme == "int8_weights":
        op = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel",
                                         weight_threshold=options.weight_threshold)
        compressed = cto.linear_quantize_weights(model, cto.OptimizationConfig(global_config=op))
    else:
        nbits = int(options.scheme.removeprefix("palettize"))
        op = cto.OpPalettizerConfig(mode="kmeans", nbits=nbits, weight_threshold=options.weight_threshold)
        compressed = cto.palettize_weights(model, cto.OptimizationConfig(global_config=op))
    with atomic_path(out_path, suffix=".mlpackage") as tmp:
        compressed.save(str(tmp))
    return scheme_label("coreml", options)
