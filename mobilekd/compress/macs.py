"""Model cost counted by PyTorch itself: MACs from torch.utils.flop_counter (which counts each
multiply-add as 2 FLOPs) and parameter counts. Used to report what pruning bought."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def count_macs(model: nn.Module, example_inputs: tuple[Tensor, ...]) -> int:
    """Multiply-accumulates of one forward pass on `example_inputs` (FlopCounterMode total / 2).

    Counts matmul/conv-like ops only (what FlopCounterMode registers); element-wise ops are free.
    Fewer MACs does not guarantee lower latency: memory traffic and kernel choice often dominate.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*example_inputs)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2


def count_params(model: nn.Module) -> int:
    """Number of parameter elements (shared parameters counted once; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())
