"""Pruning: zero weights (unstructured) or remove whole channels (structured).

Unstructured pruning (torch.nn.utils.prune) zeroes the smallest weights but keeps every tensor
dense: the file compresses better and the sparsity is reported, but dense kernels (XNNPACK, ONNX
Runtime, Core ML) do exactly the same work, so it does NOT make inference faster by itself.
Structured pruning (Torch-Pruning's DependencyGraph) removes output channels / features and
every coupled input slice (BatchNorm, residual adds, the next layer, embedding dimensions), so
the tensors really shrink and MACs fall. Fewer MACs still do not guarantee lower latency: check
with the bench stage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from mobilekd.compress.macs import count_macs, count_params
from mobilekd.errors import ConfigError
from mobilekd.specs import StrictModel

_PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.Embedding)


class PruneOptions(StrictModel):
    """method: 'magnitude_unstructured' zeroes weights; 'structured' removes channels/features.
    ratio: fraction of weights (unstructured) or of channels per group (structured) to remove.
    importance: how a weight/channel is scored. l1/l2 magnitude; taylor |w * dL/dw| (structured
    only, needs a loss); random (a baseline). For single weights l1 and l2 rank identically.
    global_pruning: rank across all layers at once (layers end up with different ratios) instead of
    pruning each layer by `ratio`.
    ignore: module names (model.named_modules()) never pruned, besides the model's final layer
    (the last Conv/Linear/Embedding to run), which is always kept so the output keeps its size.
    """

    method: Literal["magnitude_unstructured", "structured"]
    ratio: float = Field(gt=0.0, le=0.95)
    importance: Literal["l1", "l2", "taylor", "random"] = "l2"
    global_pruning: bool = False
    ignore: list[str] = []


class PruneReport(StrictModel):
    """What pruning did. pruned_layers: name -> (before, after); for structured pruning the layer's
    output channels/features, for unstructured its (weights, non-zero weights). sparsity: fraction
    of the pruned layers' weight elements that are gone or zero afterwards."""

    method: str
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    sparsity: float
    pruned_layers: dict[str, tuple[int, int]]


def final_layer(model: nn.Module, example_inputs: tuple[Tensor, ...]) -> str:
    """Name of the last Conv/Linear/Embedding that runs in forward: the output layer by default."""
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda _m, _i, _o, name=name: order.append(name))
             for name, m in model.named_modules() if isinstance(m, _PRUNABLE)]
    try:
        with torch.no_grad():
            model(*example_inputs)
    finally:
        for h in hooks:
            h.remove()
    if not order:
        raise ConfigError("prune: the model has no Conv/Linear/Embedding layer to prune")
    return order[-1]


def _resolve_ignore(model: nn.Module, example_inputs: tuple[Tensor, ...], options: PruneOptions) -> list[str]:
    known = dict(model.named_modules())
    unknown = [n for n in options.ignore if n not in known]
    if unknown:
        raise ConfigError(f"prune.ignore: no module named {unknown}; names come from model.named_modules()")
    last = final_layer(model, example_inputs)
    return list(options.ignore) + ([last] if last not in options.ignore else [])


def _layers(model: nn.Module, ignore: Sequence[str]) -> dict[str, nn.Module]:
    """Prunable layers not under an ignored module."""
    def ignored(name: str) -> bool:
        return any(name == i or name.startswith(i + ".") for i in ignore)

    return {n: m for n, m in model.named_modules() if isinstance(m, _PRUNABLE) and not ignored(n)}


def _out_size(m: nn.Module) -> int:
    if isinstance(m, nn.Linear):
        return m.out_features
    if isinstance(m, nn.Embedding):
        return m.embedding_dim
    return m.out_channels


def prune(
    model: nn.Module,
    example_inputs: tuple[Tensor, ...],
    options: PruneOptions,
    *,
    taylor_loss: Callable[[nn.Module], Tensor] | None = None,
) -> PruneReport:
    """Prune `model` in place and report parameters, MACs and per-layer sizes before and after.

    taylor_loss: for importance 'taylor', a function computing a loss on real data with the model
    (its gradients score the channels). Fine-tune afterwards: pruning alone costs accuracy.
    """
    ignore = _resolve_ignore(model, example_inputs, options)
    layers = _layers(model, ignore)
    if not layers:
        raise ConfigError(f"prune: every prunable layer is ignored (ignore={ignore})")
    params_before, macs_before = count_params(model), count_macs(model, example_inputs)
    numel_before = sum(m.weight.numel() for m in layers.values())
    if options.method == "magnitude_unstructured":
        pruned = _unstructured(layers, options)
    else:
        pruned = _structured(model, example_inputs, options, layers, ignore, taylor_loss)
    remaining = sum(int(torch.count_nonzero(m.weight)) for m in layers.values())
    return PruneReport(
        method=options.method,
        params_before=params_before, params_after=count_params(model),
        macs_before=macs_before, macs_after=count_macs(model, example_inputs),
        sparsity=1.0 - remaining / numel_before,
        pruned_layers=pruned,
    )


def _unstructured(layers: dict[str, nn.Module], options: PruneOptions) -> dict[str, tuple[int, int]]:
    """torch.nn.utils.prune, made permanent with prune.remove so the weights are plain tensors."""
    from torch.nn.utils import prune as tprune

    if options.importance == "taylor":
        raise ConfigError("prune.importance='taylor' works with method 'structured' only; "
                          "use 'l1', 'l2' or 'random' for 'magnitude_unstructured'")
    method = tprune.RandomUnstructured if options.importance == "random" else tprune.L1Unstructured
    params = [(m, "weight") for m in layers.values()]
    if options.global_pruning:
        tprune.global_unstructured(params, pruning_method=method, amount=options.ratio)
    else:
        for m, name in params:
            method.apply(m, name, amount=options.ratio)
    for m, name in params:
        tprune.remove(m, name)
    return {n: (m.weight.numel(), int(torch.count_nonzero(m.weight))) for n, m in layers.items()}


def _structured(
    model: nn.Module,
    example_inputs: tuple[Tensor, ...],
    options: PruneOptions,
    layers: dict[str, nn.Module],
    ignore: Sequence[str],
    taylor_loss: Callable[[nn.Module], Tensor] | None,
) -> dict[str, tuple[int, int]]:
    """Torch-Pruning: the DependencyGraph finds every layer coupled to a channel (BN, residual
    adds, next layer's inputs, embedding dims) so one pruning step keeps the model consistent."""
    import torch_pruning as tp

    importance = {
        "l1": lambda: tp.importance.GroupMagnitudeImportance(p=1),
        "l2": lambda: tp.importance.GroupMagnitudeImportance(p=2),
        "taylor": tp.importance.GroupTaylorImportance,
        "random": tp.importance.RandomImportance,
    }[options.importance]()
    if options.importance == "taylor" and taylor_loss is None:
        raise ConfigError("prune.importance='taylor' needs gradients: pass taylor_loss (a loss on real "
                          "data), or choose 'l1'/'l2'")
    modules = dict(model.named_modules())
    before = {n: _out_size(m) for n, m in layers.items()}
    pruner = tp.pruner.MetaPruner(
        model, example_inputs if len(example_inputs) > 1 else example_inputs[0],
        importance=importance, pruning_ratio=options.ratio, global_pruning=options.global_pruning,
        ignored_layers=[modules[n] for n in ignore],
        root_module_types=[tp.ops.TORCH_CONV, tp.ops.TORCH_LINEAR, tp.ops.TORCH_LSTM, tp.ops.TORCH_EMBED],
    )
    if options.importance == "taylor":
        model.zero_grad()
        taylor_loss(model).backward()
    pruner.step()
    model.zero_grad(set_to_none=True)
    return {n: (before[n], _out_size(m)) for n, m in layers.items() if _out_size(m) != before[n]}
