"""prune stage: remove channels (or zero weights), then recover accuracy with a short KD fine-tune."""

from __future__ import annotations

import copy
from typing import Any

import torch
from pydantic import BaseModel

from mobilekd.config import PruneConfig
from mobilekd.context import ModelRef, RunContext
from mobilekd.distill.trainer import TrainSpec, fit
from mobilekd.evaluate import evaluate
from mobilekd.store import atomic_path


class PruneResult(BaseModel):
    model: ModelRef
    method: str
    ratio: float
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    sparsity: float
    pruned_layers: dict[str, Any] = {}
    metrics_before: dict[str, float]
    metrics_pruned: dict[str, float]
    metrics: dict[str, float]
    history: list[dict[str, Any]] = []


def example_inputs(ctx: RunContext) -> tuple[torch.Tensor, ...]:
    ds = ctx.dataset()
    return tuple(torch.from_numpy(ds.train.inputs[s.name][:1]) for s in ds.info.inputs)


def save_program(model: torch.nn.Module, example: tuple[torch.Tensor, ...], path: Any) -> None:
    """A pruned or quantized model has no factory that rebuilds it: keep it as a torch.export program."""
    program = torch.export.export(model, example)
    with atomic_path(path) as tmp:
        torch.export.save(program, str(tmp))


def run(cfg: PruneConfig, ctx: RunContext) -> PruneResult:
    from mobilekd.compress.prune import PruneOptions, prune

    ds = ctx.dataset()
    _, ref = ctx.student_ref()
    model = copy.deepcopy(ctx.load_model(ref, "prune")).train()
    example = example_inputs(ctx)
    before = evaluate(model, ds.test, ds.info)
    options = PruneOptions(**cfg.model_dump(include=set(PruneOptions.model_fields)))
    report = prune(model, example, options)
    pruned = evaluate(model, ds.test, ds.info)
    history: list[dict[str, Any]] = []
    if cfg.finetune_epochs > 0:
        from mobilekd.stages.distill import recovery_objective

        objective, settings = recovery_objective(ctx)
        settings = settings.model_copy(update={"lr": cfg.finetune_lr, "epochs": cfg.finetune_epochs})
        history = fit(model, TrainSpec(ds.train, ds.val, ds.info, settings, ctx.config.seed, desc="prune fine-tune",
                                       reporter=ctx.reporter), objective).history
    model.eval()
    path = ctx.stage_dir("prune") / "student_pruned.pt2"
    save_program(model, example, path)
    out = ModelRef(kind="program", path=ctx.rel(path))
    ctx.remember(out, model)
    return PruneResult(model=out, method=cfg.method, ratio=cfg.ratio, params_before=report.params_before,
                       params_after=report.params_after, macs_before=report.macs_before, macs_after=report.macs_after,
                       sparsity=report.sparsity, pruned_layers=dict(report.pruned_layers), metrics_before=before,
                       metrics_pruned=pruned, metrics=evaluate(model, ds.test, ds.info), history=history)
