"""The training loop shared by the teacher, the student (distillation) and pruning's recovery.

Deterministic for a seed (the batch order of epoch e is DistributedSampler's permutation for
seed + e, so one process and N processes see the same global batches); keeps the best epoch by
the validation metric (restored at the end); early stopping, cosine learning rate, gradient
clipping; per-epoch history for stage.json; an optional resume checkpoint written atomically after
every epoch; DDP when torchrun started several processes (see mobilekd.distill.ddp).
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DistributedSampler

from mobilekd.config import TrainSettings
from mobilekd.data import DatasetInfo, Split
from mobilekd.distill import ddp
from mobilekd.errors import ConfigError
from mobilekd.evaluate import metrics
from mobilekd.specs import HEADLINE
from mobilekd.progress import QUIET, Reporter
from mobilekd.store import atomic_path

# objective(model, inputs, targets, row indices) -> (loss, terms for the log)
Objective = Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


@dataclass(frozen=True)
class TrainSpec:
    """One training run: the splits it reads, how it trains (`settings`: epochs, lr, batch size,
    optimiser, ...; a stage config that extends TrainSettings, or `settings.model_copy(update=...)`
    for a fine-tune's own epochs and lr), the seed, and where it reports and checkpoints.
    resume: a checkpoint path; written after each epoch, read at the start if present."""

    train: Split
    val: Split
    info: DatasetInfo
    settings: TrainSettings
    seed: int
    desc: str = "train"
    reporter: Reporter = QUIET
    resume: Path | None = None


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_metric: float = float("-inf")
    seconds: float = 0.0
    resumed_from: int = 0  # epochs restored from a resume checkpoint (0: a fresh start)


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def train_targets(split: Split) -> torch.Tensor:
    """Class ids (N,); a ranking row with one target (N, 1) -> (N,); (N, R) next-invoice items
    padded with -1 stay (N, R), and `batch_targets` turns a batch of them into distributions."""
    t = torch.from_numpy(split.targets).long()
    return t[:, 0] if t.ndim == 2 and t.shape[1] == 1 else t


def invoice_distribution(items: torch.Tensor, num_items: int) -> torch.Tensor:
    """(B, R) relevant ids padded with -1 -> (B, num_items), 1/|invoice| on each of the row's items.

    Cross-entropy against it, -1/|I| Σ_{i in I} log softmax(s)_i, is the full-catalogue softmax
    averaged over the invoice's items; F.cross_entropy takes it as a probability target, so every
    loss built on it (KDLoss's hard term included) trains on whole next invoices unchanged."""
    mask = (items >= 0).to(torch.float32)
    dist = torch.zeros(items.shape[0], num_items).scatter_add_(1, items.clamp(min=0), mask)
    return dist / mask.sum(dim=1, keepdim=True).clamp(min=1.0)


def batch_targets(ys: torch.Tensor, idx: torch.Tensor, num_items: int) -> torch.Tensor:
    """The targets the objective sees: class ids, or invoice distributions for (N, R) targets."""
    y = ys[idx]
    return invoice_distribution(y, num_items) if y.ndim == 2 else y


def epoch_batches(sampler: DistributedSampler, windows: np.ndarray | None, batch_size: int,
                  seed: int) -> list[torch.Tensor]:
    """This process's row ids for each step of one epoch.

    Rows one by one: DistributedSampler's permutation (seeded by seed + epoch, the same global
    batches for 1 or N processes) in slices of batch_size / world. Windows ((W, P) row ids, -1
    padding): whole windows in a permutation seeded by `seed`, packed until a step holds at least
    `batch_size` rows, so every example of a window trains in the same step; each process takes
    every world-th row of the step, so all processes take the same number of steps."""
    world, rank = sampler.num_replicas, sampler.rank
    if windows is None:
        perm = torch.tensor(list(sampler), dtype=torch.long)
        local = batch_size // world
        return [perm[i : i + local] for i in range(0, len(perm), local)]
    order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(seed)).tolist()
    steps, current, size = [], [], 0
    for w in order:
        rows = windows[w][windows[w] >= 0]
        current.append(rows)
        size += len(rows)
        if size >= batch_size:
            steps.append(np.concatenate(current))
            current, size = [], 0
    if current:
        steps.append(np.concatenate(current))
    return [torch.from_numpy(s[rank::world].copy()).long() for s in steps]


def make_optimizer(model: nn.Module, s: TrainSettings) -> torch.optim.Optimizer:
    lr = s.lr
    params = [p for p in model.parameters() if p.requires_grad]
    if s.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=s.weight_decay, nesterov=True)
    cls = torch.optim.AdamW if s.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=lr, weight_decay=s.weight_decay)


def augment(x: torch.Tensor, gen: torch.Generator, shift: int = 2, wave_shift: int = 1600) -> torch.Tensor:
    """Random translation by up to `shift` pixels (zero fill) of an image batch (N, C, H, W), or by
    up to `wave_shift` samples (100 ms at 16 kHz, zero fill) of a waveform batch (N, samples)."""
    if x.ndim == 2 and x.is_floating_point():
        d = int(torch.randint(0, 2 * wave_shift + 1, (1,), generator=gen))
        return nn.functional.pad(x, (wave_shift, wave_shift))[:, d : d + x.shape[1]]
    if x.ndim != 4 or not x.is_floating_point():
        return x
    h, w = x.shape[-2:]
    padded = nn.functional.pad(x, (shift, shift, shift, shift))
    dy, dx = torch.randint(0, 2 * shift + 1, (2,), generator=gen).tolist()
    return padded[..., dy : dy + h, dx : dx + w]


class _Trained(nn.Module):
    """The model and the modules trained with it (hint adapters), as one module for DDP."""

    def __init__(self, model: nn.Module, aux: nn.Module | None):
        super().__init__()
        self.model = model
        self.aux = aux if aux is not None else nn.Module()

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.model(*xs)


@torch.no_grad()
def predict_sharded(model: nn.Module, split: Split, info: DatasetInfo, device: torch.device,
                    batch_size: int = 512) -> np.ndarray:
    """Outputs over the whole split; each rank scores rows rank::world and the pieces are gathered."""
    model.eval()
    rows = np.arange(ddp.rank(), len(split), ddp.world_size())
    names = [s.name for s in info.inputs]
    outs = [model(*(torch.from_numpy(split.inputs[k][rows[i : i + batch_size]]).to(device) for k in names)).float().cpu()
            for i in range(0, len(rows), batch_size)]
    mine = torch.cat(outs).numpy() if outs else np.zeros((0, info.num_outputs), np.float32)
    pieces = ddp.gather_objects((rows, mine))
    full = np.empty((len(split), *mine.shape[1:]), dtype=np.float32)
    for r, o in pieces:
        full[r] = o
    return full


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]}


def _set_rng_state(s: dict[str, Any]) -> None:
    torch.set_rng_state(s["torch"])
    py = s["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, gauss = s["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))


def fit(model: nn.Module, spec: TrainSpec, objective: Objective, *, aux: nn.Module | None = None,
        on_epoch: Callable[[int, int], None] | None = None) -> FitResult:
    """Train `model` in place and leave it (on the CPU) holding the weights of its best validation epoch.

    aux: modules trained with the model (hint adapters); optimised, synchronised and checkpointed with it.
    on_epoch(epoch, epochs): called before each epoch (loss schedules).
    The objective gets the batch's row indices too, so cached teacher outputs can be looked up.
    """
    train, val, info, settings, seed = spec.train, spec.val, spec.info, spec.settings, spec.seed
    reporter, desc, resume = spec.reporter, spec.desc, spec.resume
    gen = seed_everything(seed)
    epochs = settings.epochs
    world, rank, device = ddp.world_size(), ddp.rank(), ddp.device()
    if settings.batch_size % world:
        raise ConfigError(f"batch_size: {settings.batch_size} must be divisible by the number of processes ({world})")
    local_batch = settings.batch_size // world
    names = [s.name for s in info.inputs]
    xs = [torch.from_numpy(train.inputs[k]) for k in names]
    ys = train_targets(train)
    n = len(train)
    trained = _Trained(model, aux).to(device)
    opt = make_optimizer(trained, settings)
    clip_params = [p for g in opt.param_groups for p in g["params"]]
    sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed)
    # steps of the cosine schedule; packed whole windows (>= batch_size rows a step) take at most this many
    per_epoch = (-(-n // settings.batch_size) if train.windows is not None else -(-len(sampler) // local_batch))
    steps = max(1, epochs * per_epoch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps) if settings.scheduler == "cosine" else None
    net: nn.Module = trained
    if world > 1:
        net = nn.parallel.DistributedDataParallel(trained, device_ids=[device.index] if device.type == "cuda" else None)
    metric_name = HEADLINE[info.task]
    result = FitResult()
    best_state = copy.deepcopy(model.state_dict())
    stale, start = 0, 1
    if resume is not None and Path(resume).is_file():
        ck = torch.load(resume, map_location=device, weights_only=True)
        trained.load_state_dict(ck["trained"])
        opt.load_state_dict(ck["optimizer"])
        if sched is not None:
            sched.load_state_dict(ck["scheduler"])
        _set_rng_state(ck["rng"])
        gen.set_state(ck["gen"])
        best_state, stale, start = ck["best_state"], ck["stale"], ck["epoch"] + 1
        result.history, result.best_metric, result.best_epoch = list(ck["history"]), ck["best_metric"], ck["best_epoch"]
        result.resumed_from = ck["epoch"]
    t0 = time.perf_counter()
    with reporter.task(desc, total=epochs) as advance:
        advance(start - 1)
        for epoch in range(start, epochs + 1):
            if settings.early_stopping_patience is not None and stale >= settings.early_stopping_patience:
                break
            if on_epoch is not None:
                on_epoch(epoch, epochs)
            net.train()
            sampler.set_epoch(epoch)
            sums, seen = {"loss": 0.0}, 0
            for idx in epoch_batches(sampler, train.windows, settings.batch_size, seed + epoch):
                seen += len(idx)
                batch = tuple(x[idx].to(device) for x in xs)
                if settings.augment:
                    batch = tuple(augment(b, gen) for b in batch)
                loss, terms = objective(net, batch, batch_targets(ys, idx, info.num_outputs).to(device), idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if settings.grad_clip is not None:
                    nn.utils.clip_grad_norm_(clip_params, settings.grad_clip)
                opt.step()
                if sched is not None:
                    sched.step()
                sums["loss"] += float(loss.detach()) * len(idx)
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v * len(idx)
            keys = sorted(sums)
            totals = ddp.sum_floats([sums[k] for k in keys] + [float(seen)])
            val_metrics = metrics(predict_sharded(model, val, info, device), val, info)
            row = {"epoch": epoch, **{k: v / totals[-1] for k, v in zip(keys, totals[:-1])},
                   "lr": opt.param_groups[0]["lr"], **{f"val_{k}": v for k, v in val_metrics.items()}}
            result.history.append(row)
            score = val_metrics[metric_name]
            if score > result.best_metric:
                result.best_metric, result.best_epoch, stale = score, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
            if resume is not None and ddp.is_main():
                ck = {"epoch": epoch, "trained": trained.state_dict(), "optimizer": opt.state_dict(),
                      "scheduler": sched.state_dict() if sched is not None else {}, "rng": _rng_state(),
                      "gen": gen.get_state(), "best_state": best_state, "stale": stale, "history": result.history,
                      "best_metric": result.best_metric, "best_epoch": result.best_epoch}
                with atomic_path(Path(resume)) as tmp:
                    torch.save(ck, tmp)
            advance(1, info=f"loss {row['loss']:.4f}  val {metric_name} {score:.4f}")
    model.load_state_dict(best_state)
    model.to("cpu").eval()
    if aux is not None:
        aux.to("cpu")
    result.seconds = time.perf_counter() - t0
    return result
