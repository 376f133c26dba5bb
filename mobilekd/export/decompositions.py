"""Decompositions, in other core ATen ops, for ATen ops that a mobile runtime lacks, given to
torch.export's own mechanism (`ExportedProgram.run_decompositions(table)`). None is a kernel: each
entry rewrites one op as a few ops every runtime has.

- `aten._embedding_bag` / `aten.embedding_bag.padding_idx` (nn.EmbeddingBag, sum or mean):
  torch's core-ATen table keeps `_embedding_bag` as is, ExecuTorch's portable library has no kernel
  for it (the .pte fails to load, error 0x14), coremltools 9 has no translation, and ONNX Runtime's
  quantizer breaks on its ONNX form. Rewritten as a gather of the rows, a bag id per index from
  the offsets, and a scatter-add into the bags; mean divides by each bag's count.
  Mode max is left alone (nothing rewrites it).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

aten = torch.ops.aten
SUM, MEAN = 0, 1


def _embedding_bag(weight: torch.Tensor, indices: torch.Tensor, offsets: torch.Tensor,
                   scale_grad_by_freq: bool = False, mode: int = 0, sparse: bool = False,
                   per_sample_weights: torch.Tensor | None = None, include_last_offset: bool = False,
                   padding_idx: int | None = -1) -> Any:
    """Bags of 1-D `indices` starting at `offsets` (what nn.EmbeddingBag passes for a 2-D input too).
    Returns the op's four outputs; only the first is used by nn.EmbeddingBag's forward."""
    if mode not in (SUM, MEAN):
        return NotImplemented
    bags = offsets.shape[0] - 1 if include_last_offset else offsets.shape[0]
    starts = offsets[:bags]
    positions = torch.arange(indices.shape[0], device=indices.device)
    bag = (positions[:, None] >= starts[None, :]).sum(dim=1) - 1  # (n,) the bag of each index
    rows = aten.embedding.default(weight, indices)  # (n, dim)
    keep = torch.ones_like(indices, dtype=weight.dtype)
    if padding_idx is not None and padding_idx >= 0:
        keep = keep * (indices != padding_idx).to(weight.dtype)
    scale = keep if per_sample_weights is None else keep * per_sample_weights.to(weight.dtype)
    out = torch.zeros(bags, weight.shape[1], dtype=weight.dtype, device=weight.device)
    # scatter_add, not index_add: coremltools 9 translates the first only
    out = out.scatter_add(0, bag[:, None].expand(-1, weight.shape[1]), rows * scale[:, None])
    count = torch.zeros(bags, dtype=weight.dtype, device=weight.device).scatter_add(0, bag, keep)
    if mode == MEAN:
        out = out / count.clamp(min=1.0)[:, None]
    return out, bag, count.to(torch.int64), torch.zeros_like(count, dtype=torch.int64)


TABLE: dict[Any, Callable[..., Any]] = {
    aten._embedding_bag.default: _embedding_bag,
    aten.embedding_bag.padding_idx: _embedding_bag,  # the same arguments, in the same order
}


def needs_rewrite(ep: torch.export.ExportedProgram) -> list[str]:
    """Names of the ops in `ep` that TABLE rewrites (empty: leave the program as it is)."""
    return sorted({str(n.target) for n in ep.graph.nodes if n.op == "call_function" and n.target in TABLE})


def rewrite_for_mobile(ep: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """`ep` with TABLE's ops decomposed; the same program when it has none of them."""
    if not needs_rewrite(ep):
        return ep
    return ep.run_decompositions(dict(TABLE))
