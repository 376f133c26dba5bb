"""Diagnosis of an export that goes wrong, in the user's terms (module paths, not graph internals):

- at export time, `explain_failure` turns a converter's exception about an operator into an
  ExportError naming the operator, the module it comes from (torch.export's `nn_module_stack`)
  and what to try;
- at verify time, `find_divergence` exposes the intermediate outputs of an ONNX graph (fp32, or
  int8 from ONNX Runtime's quantizer), matches them with PyTorch leaf-module outputs (forward hooks)
  through the module scope the exporter records on every ONNX node, and names the first layer
  whose error jumps. ExecuTorch files: mobilekd.export.divergence_executorch.
"""

from __future__ import annotations

import ast
import re
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from mobilekd.errors import ExportError
from mobilekd.export.types import Format

Target = Format  # one name for the three export formats (export.types)

HINTS: dict[str, str] = {
    "onnx": "try another opset (OnnxOptions.opset up to 23), replace the operator in that module with "
            "standard tensor ops, or register a translation (torch.onnx.export custom_translation_table)",
    "executorch": "replace the operator in that module with core ATen ops "
                  "(https://pytorch.org/docs/stable/torch.compiler_ir.html); for an op only XNNPACK "
                  "rejects, try ExecuTorchOptions(backend='portable')",
    "coreml": "try a newer minimum_deployment_target (iOS18), replace the operator in that module, or "
              "register a conversion with coremltools.converters.mil.frontend.torch.register_torch_op",
}

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_OP_PATTERNS = (
    re.compile(r"[Uu]nsupported fx node ([A-Za-z0-9_]+)"),              # coremltools torch.export
    re.compile(r"Torch `([A-Za-z0-9_]+)` op"),                           # coremltools lowering
    re.compile(r"aten[.:]{1,2}([A-Za-z0-9_]+)"),                      # aten.foo.default, aten::foo
    re.compile(r"convert function for op '([A-Za-z0-9_.]+)'"),       # coremltools
    re.compile(r"[Uu]nsupported (?:operator|op)[^A-Za-z0-9]+([A-Za-z0-9_.:]+)"),
)


def export_program(model: nn.Module, example: tuple[torch.Tensor, ...], *, target: Target,
                   dynamic_shapes: Any = None) -> torch.export.ExportedProgram:
    """torch.export.export with failures mapped to ExportError (what the user can change: their
    model's Python control flow or unsupported operators), chained to the original exception."""
    from mobilekd.export.adapt import dynamic_shapes_for
    from mobilekd.export.decompositions import rewrite_for_mobile

    try:
        ep = torch.export.export(model, example, dynamic_shapes=dynamic_shapes_for(model, dynamic_shapes),
                                 strict=False)
    except (torch._dynamo.exc.UserError, torch._dynamo.exc.Unsupported,
            torch.fx.experimental.symbolic_shapes.GuardOnDataDependentSymNode) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(
            f"{target}: torch.export cannot capture {type(model).__name__}: {first}. Try removing "
            "data-dependent Python control flow (if/for on tensor values) from forward(), or use "
            "torch.cond; see https://pytorch.org/docs/stable/export.html") from e
    # ops no mobile runtime has (nn.EmbeddingBag), rewritten in core ATen ops before any lowering
    return rewrite_for_mobile(ep)


def operator_in(message: str) -> str | None:
    """The first operator name a converter's error message mentions, if any."""
    for pattern in _OP_PATTERNS:
        m = pattern.search(message)
        if m:
            return m.group(1).split(".")[0].split("::")[-1]
    return None


def module_of(program: torch.export.ExportedProgram | None, op: str) -> str | None:
    """`path (Class)` of the innermost module that calls `op` in the exported graph."""
    if program is None:
        return None
    calls = [n for n in program.graph.nodes if n.op == "call_function"]
    # exact operator first, then a decomposed/variant spelling (linalg_inv vs linalg_inv_ex)
    for match in (lambda b: b == op, lambda b: op.startswith(b) or b.startswith(op)):
        for node in calls:
            if not match(_base_name(node.target)):
                continue
            stack = node.meta.get("nn_module_stack") or {}
            if not stack:
                return "<root>"
            path, cls = list(stack.values())[-1]
            name = cls if isinstance(cls, str) else getattr(cls, "__name__", str(cls))
            return f"{path or '<root>'} ({name.rsplit('.', 1)[-1]})"
    return None


def _base_name(target: Any) -> str:
    """aten.linalg_inv.default -> linalg_inv; <built-in function getitem> -> getitem."""
    text = str(target)
    if text.startswith("aten."):
        return text.split(".")[1]
    return getattr(target, "__name__", text)


def explain_failure(error: BaseException, target: Target,
                    program: torch.export.ExportedProgram | None) -> ExportError:
    """An ExportError naming the operator, the module it comes from and what to try."""
    text = _ANSI.sub("", str(error))
    op = operator_in(text)
    where = module_of(program, op) if op else None
    first = text.strip().splitlines()[0][:300] if text.strip() else type(error).__name__
    if op:
        msg = f"{target} cannot take operator {op!r}"
        msg += f" used in module {where}" if where else ""
        return ExportError(f"{msg}: {first}. What to try: {HINTS[target]}")
    return ExportError(f"{target} export failed: {first}. What to try: {HINTS[target]}")


# --------------------------------------------------------------------------- numeric divergence

JUMP_FACTOR = 10.0  # a layer "jumps" when its error is 10x the worst error before it...
JUMP_FLOOR = 1e-3  # ...and above this relative error (fp32 kernels differ by ~1e-6)
# int8 against the float model: every layer carries quantisation noise (0-5% relative on the tiny
# nets of tests/export, static and dynamic, growing smoothly layer to layer), so a jump needs 25%
# relative error and 4x the worst error before it; a wrong weight or scale gives far more at once.
INT8_JUMP_FACTOR = 4.0
INT8_JUMP_FLOOR = 0.25
QUANTIZED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger",
                           "ConvInteger", "QLinearConv", "QLinearMatMul", "QGemm"})


def onnx_module_outputs(proto: Any, fallback: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(module path, ONNX value) pairs in graph order: for each module scope recorded by the
    exporter (node metadata `pkg.torch.onnx.name_scopes`), the last value computed inside it that
    is used outside it, i.e. the module's output. `fallback` (exporter node name -> scope) scopes
    the nodes that lost their metadata, by name (see `scopes_by_node_name`)."""
    scope_of: dict[str, str] = {}
    order: list[tuple[str, str]] = []
    consumers: dict[str, list[str]] = {}
    for node in proto.graph.node:
        scope = _scope(node) or (_scope_by_name(node.name, fallback) if fallback else "")
        for value in node.input:
            consumers.setdefault(value, []).append(scope)
        for value in node.output:
            scope_of[value] = scope
            order.append((scope, value))
    graph_outputs = {o.name for o in proto.graph.output}
    last: dict[str, tuple[int, str]] = {}
    for i, (scope, value) in enumerate(order):
        if not scope:
            continue
        outside = value in graph_outputs or any(not _within(c, scope) for c in consumers.get(value, []))
        if not outside:
            continue
        # the value is also the output of every enclosing scope it leaves
        parts = scope.split(".")
        for j in range(len(parts), 0, -1):
            module = ".".join(parts[:j])
            if value in graph_outputs or any(not _within(c, module) for c in consumers.get(value, [])):
                last[module] = (i, value)
    return [(module, value) for module, (_, value) in sorted(last.items(), key=lambda kv: kv[1][0])]


def _scope(node: Any) -> str:
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return ""
            return scopes[-2] if len(scopes) >= 3 else ""  # ['', 'stem', 'stem.1', op] -> 'stem.1'
    return ""


def is_quantized(proto: Any) -> bool:
    """Whether an ONNX graph computes in int8 (QDQ pairs or integer kernels)."""
    return any(n.op_type in QUANTIZED_OPS for n in proto.graph.node)


def scopes_by_node_name(model: nn.Module, example: tuple[torch.Tensor, ...]) -> dict[str, str]:
    """`node_<fx name>` -> module path of every torch.export node inside a module. ONNX Runtime's
    quantizer replaces a Gemm/MatMul by new nodes without metadata, but names them after the node
    it replaced (`node_linear_MatMul_quant`, `node_linear_Add`), and the exporter names that node
    after the torch.export node (`node_linear`), whose nn_module_stack gives the module."""
    try:
        program = export_program(model, example, target="onnx")
    except ExportError:
        return {}
    out: dict[str, str] = {}
    for node in program.graph.nodes:
        if node.op == "call_function":
            stack = node.meta.get("nn_module_stack") or {}
            out[f"node_{node.name}"] = list(stack.values())[-1][0] if stack else ""  # "" : outside modules
    return out


def _scope_by_name(name: str, fallback: dict[str, str]) -> str:
    """The scope of the longest exporter node name that `name` is, or extends with `_` and a
    letter (`node_linear_Add` extends `node_linear`; `node_relu_1` is another node than `node_relu`)."""
    if name in fallback:
        return fallback[name]
    cuts = [i for i, ch in enumerate(name) if ch == "_" and not name[i + 1 : i + 2].isdigit()]
    for i in reversed(cuts):  # longest base first
        if name[:i] in fallback:
            return fallback[name[:i]]
    return ""


def _within(scope: str, module: str) -> bool:
    return scope == module or scope.startswith(module + ".")


def find_divergence(model: nn.Module, onnx_path: Any, feed: dict[str, np.ndarray], *,
                    input_names: Sequence[str]) -> str | None:
    """Name the first module (`path (Class)`) whose ONNX output departs from PyTorch's on `feed`,
    or None when no layer jumps or no module output can be matched.

    An int8 file (ONNX Runtime's quantizer) is compared with the float PyTorch model, not with the
    PT2E fake-quantized one: PT2E's XNNPACKQuantizer picks its own scales and layers, so the two
    int8 models differ by quantizer disagreement, not by a fault, while the float model is what
    the file approximates. Quantisation noise grows smoothly from layer to layer; a wrong weight,
    scale or kernel makes a step, hence the int8 thresholds (INT8_JUMP_FLOOR, INT8_JUMP_FACTOR).
    The file's float intermediate values (a Gemm's output before its QuantizeLinear) are read, so
    each module's output is the int8 arithmetic up to that point."""
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(onnx_path))
    quantized = is_quantized(proto)
    floor, factor = (INT8_JUMP_FLOOR, INT8_JUMP_FACTOR) if quantized else (JUMP_FLOOR, JUMP_FACTOR)
    fallback = None
    if quantized:
        example = tuple(torch.from_numpy(np.ascontiguousarray(feed[n])) for n in input_names)
        fallback = scopes_by_node_name(model, example)
    modules = dict(model.named_modules())
    if quantized:  # the quantizer drops a ReLU before a uint8 QuantizeLinear, so a block's last
        # value can be its pre-activation: only leaf modules are matched
        modules = {n: m for n, m in modules.items() if next(m.children(), None) is None}
    pairs = [(m, v) for m, v in onnx_module_outputs(proto, fallback) if m in modules]
    if not pairs:
        return None
    torch_out = _module_outputs(model, feed, input_names, {m for m, _ in pairs})
    pairs = [(m, v) for m, v in pairs if m in torch_out]
    known = {o.name for o in proto.graph.output}
    infos = {vi.name: vi for vi in proto.graph.value_info}
    for _, value in pairs:
        if value not in known:
            proto.graph.output.append(infos.get(value) or onnx.helper.make_empty_tensor_value_info(value))
            known.add(value)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    session = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(None, feed)))
    errors = [(module, relative_error(torch_out[module], values[value])) for module, value in pairs
              if torch_out[module].size == values[value].size and values[value].dtype.kind == "f"]
    first = first_jump(errors, floor=floor, factor=factor)
    return f"{first} ({type(modules[first]).__name__})" if first else None


def relative_error(reference: np.ndarray, actual: np.ndarray) -> float:
    """max |a - r| / max |r|: one scale-free number per layer output."""
    ref = np.asarray(reference, dtype=np.float64)
    got = np.asarray(actual, dtype=np.float64).reshape(ref.shape)
    return float(np.abs(got - ref).max() / max(float(np.abs(ref).max()), 1e-12))


def first_jump(errors: Sequence[tuple[str, float]], *, floor: float, factor: float) -> str | None:
    """The first layer whose error is above `floor` and `factor` times the worst error before it."""
    worst = 0.0
    for layer, err in errors:
        if err > floor and err > factor * worst:
            return layer
        worst = max(worst, err)
    return None


def _module_outputs(model: nn.Module, feed: dict[str, np.ndarray], input_names: Sequence[str],
                    wanted: set[str]) -> dict[str, np.ndarray]:
    """Outputs of the `wanted` modules on one feed, through forward hooks. A module called more
    than once has no single output and is dropped."""
    seen: dict[str, list[np.ndarray]] = {}

    def hook(name: str):  # type: ignore[no-untyped-def]
        def record(_m: nn.Module, _args: Any, out: Any) -> None:
            t = out[0] if isinstance(out, (tuple, list)) else out
            if isinstance(t, torch.Tensor):
                seen.setdefault(name, []).append(t.detach().float().numpy().copy())
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n in wanted]
    try:
        with torch.no_grad():
            model(*[torch.from_numpy(np.ascontiguousarray(feed[n])) for n in input_names])
    finally:
        for h in handles:
            h.remove()
    return {n: v[0] for n, v in seen.items() if len(v) == 1}
