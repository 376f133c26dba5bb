"""int8 row-wise weight quantization of a recommender's item tables (the embedding and the output
layer over the catalogue), through torchao.

In a next-purchase model almost every weight is an item row: 3,105 items x dim in the embedding and
again in the output layer, against a few hundred weights in between. One int8 scale per row (per
item) keeps a rare item's small vector from being crushed by a popular item's large one, which a
per-tensor scale would do. torchao's `IntxWeightOnlyConfig(int8, PerAxis(0))` is that scheme for
both nn.Embedding and nn.Linear (for a Linear, axis 0 is the output feature: one row per item).

Library notes (torchao 0.18, executorch 1.5.1):
- `Int8WeightOnlyConfig` only handles nn.Linear; `IntxWeightOnlyConfig` covers both, so it is used.
- ExecuTorch's quant-fusion pattern (`dequantize_affine -> embedding` -> `quantized_decomposed::
  embedding_byte`) matches `embedding(weight, ids)` only, not `embedding(weight, ids, padding_idx)`;
  padding_idx only shapes gradients, so the quantized (inference-only) copy drops it.
- The ExecuTorch Python runtime in this install has no `quantized_decomposed::embedding_byte.out`
  kernel (an app links `quantized_ops_lib`), so a .pte with an int8 embedding cannot be checked
  here; the pipeline's int8 .pte therefore uses PT2E (int8 Linear layers, float embedding) and this
  module reports the row-wise scheme's bytes and metric in PyTorch.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from pydantic import BaseModel
from torch import nn

from mobilekd.errors import ConfigError

SCHEME = "int8 row-wise symmetric weights (torchao IntxWeightOnlyConfig, PerAxis(0))"


class RowQuantReport(BaseModel):
    """What row-wise int8 did to the model's weights. Bytes are tensor storage: int8 rows plus one
    scale and one zero point per row for the quantized tables; every parameter and buffer for the model."""

    scheme: str = SCHEME
    modules: list[str]
    table_bytes_before: int
    table_bytes_after: int
    model_bytes_before: int
    model_bytes_after: int


def tensor_bytes(t: torch.Tensor) -> int:
    """Storage of a tensor; a torchao tensor subclass counts its inner tensors (qdata, scale, ...)."""
    if type(t) not in (torch.Tensor, nn.Parameter) and hasattr(t, "__tensor_flatten__"):
        names, _ = t.__tensor_flatten__()
        return sum(tensor_bytes(getattr(t, n)) for n in names)
    return t.numel() * t.element_size()


def model_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and persistent buffer (the state dict)."""
    return sum(tensor_bytes(t) for t in model.state_dict().values())


def item_tables(model: nn.Module) -> list[str]:
    """Default targets: every nn.Embedding wider than one column, and every nn.Linear whose outputs are one per row of an
    embedding (the output layer scoring the catalogue)."""
    # A one-column table (a per-item scalar such as a re-buy propensity) has nothing to gain: one
    # fp32 scale per row would cost as much as the row.
    embeddings = {n: m for n, m in model.named_modules() if isinstance(m, nn.Embedding) and m.embedding_dim > 1}
    sizes = {m.num_embeddings for m in embeddings.values()}
    heads = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features in sizes]
    return list(embeddings) + heads


def quantize_rows(model: nn.Module, modules: Sequence[str] | None = None) -> tuple[nn.Module, RowQuantReport]:
    """A copy of `model` (eval mode) whose `modules` (default `item_tables`) hold int8 rows.

    The original is not touched. Raises ConfigError for a name that is not an nn.Embedding or nn.Linear.
    """
    from torchao.quantization import IntxWeightOnlyConfig, quantize_
    from torchao.quantization.granularity import PerAxis

    targets = list(item_tables(model) if modules is None else modules)
    found = dict(model.named_modules())
    bad = [n for n in targets if not isinstance(found.get(n), (nn.Embedding, nn.Linear))]
    if bad or not targets:
        known = [n for n, m in found.items() if isinstance(m, (nn.Embedding, nn.Linear))]
        raise ConfigError(f"embedding quantization modules: {bad or targets} are not nn.Embedding/nn.Linear "
                          f"modules of the model; expected names from {known}")
    before_tables = sum(tensor_bytes(found[n].weight) for n in targets)
    before = model_bytes(model)
    q = copy.deepcopy(model).eval()
    for name, m in q.named_modules():
        if name in targets and isinstance(m, nn.Embedding):
            m.padding_idx = None  # gradient-only; see the module notes (ExecuTorch's fusion pattern)
    config = IntxWeightOnlyConfig(weight_dtype=torch.int8, granularity=PerAxis(0))
    quantize_(q, config, filter_fn=lambda _m, fqn: fqn in targets)
    qmods = dict(q.named_modules())
    after_tables = sum(tensor_bytes(qmods[n].weight) for n in targets)
    return q, RowQuantReport(modules=targets, table_bytes_before=before_tables, table_bytes_after=after_tables,
                             model_bytes_before=before, model_bytes_after=model_bytes(q))
