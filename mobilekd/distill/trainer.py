"""The training loop shared by the teacher, the student (distillation) and pruning's recovery.

Deterministic for a seed; keeps the best epoch by the validation metric (restored at the end);
early stopping, cosine learning rate, gradient clipping; per-epoch history for stage.json.
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from mobilekd.config import TrainSettings
from mobilekd.data import DatasetInfo, Split
from mobilekd.evaluate import HEADLINE, evaluate
from mobilekd.progress import QUIET, Reporter

# objective(model, inputs, targets) -> (loss, terms for the log)
Objective = Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_metric: float = float("-inf")
    seconds: float = 0.0


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def train_targets(split: Split) -> torch.Tensor:
    """Class ids (N,), or the single next item of a ranking training row (N, 1) -> (N,)."""
    t = torch.from_numpy(split.targets).long()
    return t[:, 0] if t.ndim == 2 else t


def make_optimizer(model: nn.Module, s: TrainSettings, lr: float | None = None) -> torch.optim.Optimizer:
    lr = s.lr if lr is None else lr
    params = [p for p in model.parameters() if p.requires_grad]
    if s.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=s.weight_decay, nesterov=True)
    cls = torch.optim.AdamW if s.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=lr, weight_decay=s.weight_decay)


def fit(model: nn.Module, train: Split, val: Split, info: DatasetInfo, settings: TrainSettings, *,
        objective: Objective, seed: int, reporter: Reporter = QUIET, desc: str = "train",
        lr: float | None = None, epochs: int | None = None, extra_params: list[nn.Parameter] | None = None) -> FitResult:
    """Train `model` in place and leave it holding the weights of its best validation epoch.

    The objective gets the batch's row indices too, so cached teacher outputs can be looked up.
    """
    gen = seed_everything(seed)
    epochs = settings.epochs if epochs is None else epochs
    names = [s.name for s in info.inputs]
    xs = [torch.from_numpy(train.inputs[k]) for k in names]
    ys = train_targets(train)
    n = len(train)
    opt = make_optimizer(model, settings, lr)
    if extra_params:
        opt.add_param_group({"params": extra_params})
    steps = max(1, epochs * ((n + settings.batch_size - 1) // settings.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps) if settings.scheduler == "cosine" else None
    metric_name = HEADLINE[info.task]
    result = FitResult()
    best_state = copy.deepcopy(model.state_dict())
    stale = 0
    t0 = time.perf_counter()
    with reporter.task(desc, total=epochs) as advance:
        for epoch in range(1, epochs + 1):
            model.train()
            perm = torch.randperm(n, generator=gen)
            total, count, terms_sum = 0.0, 0, {}
            for i in range(0, n, settings.batch_size):
                idx = perm[i : i + settings.batch_size]
                loss, terms = objective(model, tuple(x[idx] for x in xs), ys[idx], idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if settings.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
                opt.step()
                if sched is not None:
                    sched.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
                for k, v in terms.items():
                    terms_sum[k] = terms_sum.get(k, 0.0) + v * len(idx)
            val_metrics = evaluate(model, val, info)
            row = {"epoch": epoch, "loss": total / count, **{k: v / count for k, v in terms_sum.items()},
                   **{f"val_{k}": v for k, v in val_metrics.items()}}
            result.history.append(row)
            score = val_metrics[metric_name]
            if score > result.best_metric:
                result.best_metric, result.best_epoch, stale = score, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
            advance(1, info=f"loss {row['loss']:.4f}  val {metric_name} {score:.4f}")
            if settings.early_stopping_patience is not None and stale >= settings.early_stopping_patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - t0
    return result
