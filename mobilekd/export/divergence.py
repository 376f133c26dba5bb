"""Diagnosis of an export that goes wrong, in the user's terms (module paths, not graph internals):

- at export time, `explain_failure` turns a converter's exception about an operator into an
  ExportError naming the operator, the module it comes from (torch.export's `nn_module_stack`)
  and what to try;
- at verify time, `find_divergence` exposes the intermediate outputs of an ONNX graph, matches them
  with PyTorch leaf-module outputs (forward hooks) through the module scope the exporter records
  on every ONNX node, and names the first layer whose error jumps.
"""

from __future__ import annotations

import ast
import re
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import nn

from mobilekd.errors import ExportError

Target = Literal["onnx", "executorch", "coreml"]

HINTS: dict[str, str] = {
    "onnx": "try another opset (OnnxOptions.opset up to 23), replace the operator in that module with "
            "standard tensor ops, or register a translation (torch.onnx.export custom_translation_table)",
    "executorch": "try ExecuTorchOptions(backend='portable'), or replace the operator in that module with "
                  "core ATen ops (see executorch.exir.dialects.edge op list)",
    "coreml": "try a newer minimum_deployment_target (iOS18), replace the operator in that module, or "
              "register a conversion with coremltools.converters.mil.frontend.torch.register_torch_op",
}

_OP_PATTERNS = (
    re.compile(r"[Uu]nsupported fx node ([A-Za-z0-9_]+)"),              # coremltools torch.export
    re.compile(r"aten[.:]{1,2}([A-Za-z0-9_]+)"),                      # aten.foo.default, aten::foo
    re.compile(r"convert function for op '([A-Za-z0-9_.]+)'"),       # coremltools
    re.compile(r"[Uu]nsupported (?:operator|op)[^A-Za-z0-9]+([A-Za-z0-9_.:]+)"),
)


def export_program(model: nn.Module, example: tuple[torch.Tensor, ...], *, target: Target,
                   dynamic_shapes: Any = None) -> torch.export.ExportedProgram:
    """torch.export.export with failures mapped to ExportError (what the user can change: their
    model's Python control flow or unsupported operators), chained to the original exception."""
    try:
        return torch.export.export(model, example, dynamic_shapes=dynamic_shapes, strict=False)
    except (torch._dynamo.exc.UserError, torch._dynamo.exc.Unsupported,
            torch.fx.experimental.symbolic_shapes.GuardOnDataDependentSymNode) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(
            f"{target}: torch.export cannot capture {type(model).__name__}: {first}. Try removing "
            "data-dependent Python control flow (if/for on tensor values) from forward(), or use "
            "torch.cond; see https://pytorch.org/docs/stable/export.html") from e


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
    for node in program.graph.nodes:
        if node.op != "call_function" or op not in str(node.target):
            continue
        stack = node.meta.get("nn_module_stack") or {}
        if stack:
            path, cls = list(stack.values())[-1]
            name = cls if isinstance(cls, str) else getattr(cls, "__name__", str(cls))
            return f"{path or '<root>'} ({name.rsplit('.', 1)[-1]})"
        return "<root>"
    return None


def explain_failure(error: BaseException, target: Target,
                    program: torch.export.ExportedProgram | None) -> ExportError:
    """An ExportError naming the operator, the module it comes from and what to try."""
    text = str(error)
    op = operator_in(text)
    where = module_of(program, op) if op else None
    first = text.strip().splitlines()[0][:300] if text.strip() else type(error).__name__
    if op:
        msg = f"{target} cannot take operator {op!r}"
        msg += f" used in module {where}" if where else ""
        return ExportError(f"{msg}: {first}. What to try: {HINTS[target]}")
    return ExportError(f"{target} export failed: {first}. What to try: {HINTS[target]}")
