"""Batched inference over a split and the task's metrics: the one place models are scored, so the
teacher, students and int8 models are compared on identical terms."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from mobilekd.data import DatasetInfo, Split


def batches(split: Split, info: DatasetInfo, batch_size: int) -> list[tuple[torch.Tensor, ...]]:
    names = [s.name for s in info.inputs]
    n = len(split)
    return [tuple(torch.from_numpy(split.inputs[k][i : i + batch_size]) for k in names)
            for i in range(0, n, batch_size)]


@torch.no_grad()
def predict(model: nn.Module | Callable[..., torch.Tensor], split: Split, info: DatasetInfo,
            batch_size: int = 256) -> np.ndarray:
    """Outputs (N, C) of a model (nn.Module, or a PT2E GraphModule) over a split, in order."""
    if isinstance(model, nn.Module) and not isinstance(model, torch.fx.GraphModule):
        model.eval()
    outs = [model(*xs) for xs in batches(split, info, batch_size)]
    return torch.cat(outs).float().numpy()


def metrics(outputs: np.ndarray, split: Split, info: DatasetInfo) -> dict[str, float]:
    if info.task == "classification":
        from mobilekd.metrics.classification import classification_metrics

        return classification_metrics(outputs, split.targets, labels=info.labels,
                                      reject=tuple(info.postprocessing.get("reject_labels", ())))
    if info.task == "retrieval":
        from mobilekd.metrics.retrieval import retrieval_metrics

        return retrieval_metrics(outputs, split.targets, split.reference.get("teacher"))
    from mobilekd.metrics.ranking import ranking_metrics

    # The split's own history input gives the new-item / repeat-item split (Li et al. 2023).
    key = info.history_input or (info.inputs[0].name if info.inputs else None)
    history = split.inputs.get(key) if key else None
    if history is not None and history.ndim != 2:
        history = None
    exclude = tuple(int(i) for i in (info.postprocessing or {}).get("exclude_ids", ()))
    return ranking_metrics(outputs, split.targets, history=history, exclude_ids=exclude)


def evaluate(model: nn.Module | Callable[..., torch.Tensor], split: Split, info: DatasetInfo) -> dict[str, float]:
    return metrics(predict(model, split, info), split, info)
