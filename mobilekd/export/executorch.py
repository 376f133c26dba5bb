"""ExecuTorch export: torch.export -> `to_edge_transform_and_lower` (XNNPACK partitioner, or none
for the portable backend) -> `to_executorch` -> .pte. This is the flow ExecuTorch documents for
phones; int8 comes in as a PT2E-quantized GraphModule (XNNPACKQuantizer + `convert_pt2e`), whose
quantize/dequantize pairs the XNNPACK partitioner folds into int8 kernels."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from mobilekd.errors import ExportError
from mobilekd.export.divergence import explain_failure, export_program
from mobilekd.export.runtime import example_inputs, output_specs
from mobilekd.export.types import ExecuTorchOptions, ExportedModel
from mobilekd.specs import TensorSpec
from mobilekd.store import write_bytes


def export_executorch(model: nn.Module | torch.fx.GraphModule, inputs: Sequence[TensorSpec],
                      output_names: Sequence[str], path: Path, options: ExecuTorchOptions, *,
                      variant: str = "fp32", scheme: str = "fp32") -> ExportedModel:
    """Export `model` (an eager module, or the GraphModule `convert_pt2e` returns) to a .pte file.

    details: `delegated_nodes` (ops running in XNNPACK), `portable_ops` (op types left to
    ExecuTorch's portable kernels, with counts) and `delegated_subgraphs`.
    """
    import executorch.kernels.quantized  # noqa: F401  (out variants of q/dq ops XNNPACK leaves outside)
    from executorch.exir import to_edge_transform_and_lower

    path = Path(path)
    if not _is_exported_graph(model):
        model = model.eval()  # a torch.export'ed GraphModule refuses .eval(); convert_pt2e leaves it in eval
    example = example_inputs(inputs)
    outputs = output_specs(model, example, output_names)
    ep = export_program(model, example, target="executorch")
    partitioner = _partitioners(options)
    rewrites: list[str] = []
    try:
        edge = to_edge_transform_and_lower(ep, partitioner=partitioner)
        program = edge.to_executorch()
    except _lowering_errors() as first:
        # Before giving up: fold ops whose inputs are all constants (triu_indices of fixed sizes,
        # shape arithmetic) into constants, then apply the core-ATen decomposition table.
        edge, program, rewrites = _lower_rewritten(ep, options, first)
    details: dict[str, Any] = {"backend": options.backend, **_delegation(edge.exported_program().graph_module)}
    if rewrites:
        details["rewrites"] = rewrites
    write_bytes(path, program.buffer)
    return ExportedModel.of_file(format="executorch", variant=variant, path=path, inputs=inputs,
                                 outputs=outputs, scheme=scheme, details=details)


def _lower_rewritten(ep: torch.export.ExportedProgram, options: ExecuTorchOptions,
                     first: BaseException) -> tuple[Any, Any, list[str]]:
    """Before giving up: fold ops whose inputs are all constants (triu_indices of fixed sizes, shape
    arithmetic) with ExecuTorch's constant_prop_pass, then also apply the core-ATen decomposition
    table (ExportedProgram.run_decompositions). Raises naming the operator and what was tried."""
    from executorch.exir import to_edge_transform_and_lower
    from executorch.exir.passes.constant_prop_pass import constant_prop_pass

    tried = ["plain lowering"]
    rewrites: list[str] = []
    error: BaseException = first
    for step in ("constant_prop_pass", "run_decompositions(core ATen)"):
        rewrites.append(step)
        tried.append(" + ".join(rewrites))
        try:
            program_ep = constant_prop_pass(copy.deepcopy(ep))
            if len(rewrites) == 2:
                program_ep = program_ep.run_decompositions()
            edge = to_edge_transform_and_lower(program_ep, partitioner=_partitioners(options))
            return edge, edge.to_executorch(), list(rewrites)
        except _lowering_errors() as e:
            error = e
    err = explain_failure(error, "executorch", ep)
    raise ExportError(f"{err} (tried: {'; '.join(tried)})") from first


def _is_exported_graph(model: nn.Module) -> bool:
    return isinstance(model, torch.fx.GraphModule)


def _partitioners(options: ExecuTorchOptions) -> list[Any]:
    if options.backend == "portable":
        return []
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    return [XnnpackPartitioner()]


def _lowering_errors() -> tuple[type[BaseException], ...]:
    """What ExecuTorch raises for a graph it cannot lower: its own ExportError, the edge dialect's
    spec violation (an op outside core ATen), and RuntimeError from kernels missing in to_executorch."""
    from executorch.exir.error import ExportError as ExirExportError

    try:
        from torch._export.verifier import SpecViolationError
    except ImportError:  # pragma: no cover - older torch
        SpecViolationError = RuntimeError  # type: ignore[assignment,misc]
    return (ExirExportError, SpecViolationError, NotImplementedError)


NOT_OPERATORS = ("getitem", "alloc")  # tuple unpacking and memory-planning nodes, not kernels


def _delegation(graph_module: torch.fx.GraphModule) -> dict[str, Any]:
    """Counts from executorch.devtools' delegation summary, without the non-operator nodes."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(graph_module)
    portable = {op: b.non_delegated for op, b in sorted(info.delegation_by_operator.items())
                if b.non_delegated and op not in NOT_OPERATORS}
    return {"delegated_subgraphs": info.num_delegated_subgraphs, "delegated_nodes": info.num_delegated_nodes,
            "portable_nodes": sum(portable.values()), "portable_ops": portable}
