"""teacher stage: train the large model on labels (or load a user's checkpoint) and score it."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel

from mobilekd.config import TeacherConfig
from mobilekd.context import ModelRef, RunContext
from mobilekd.distill.trainer import fit
from mobilekd.evaluate import evaluate
from mobilekd.models import build_model, count_params, load_state
from mobilekd.store import atomic_path


class TeacherResult(BaseModel):
    model: ModelRef
    params: int
    metrics: dict[str, float]
    val_metrics: dict[str, float]
    history: list[dict[str, Any]] = []
    best_epoch: int | None = None
    source: str  # "trained" | "checkpoint"


def cross_entropy(model: torch.nn.Module, xs: tuple[torch.Tensor, ...], y: torch.Tensor,
                  idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    return F.cross_entropy(model(*xs), y), {}


def run(cfg: TeacherConfig, ctx: RunContext) -> TeacherResult:
    ds = ctx.dataset()
    model = build_model(cfg.model, cfg.args, ds.info, key="teacher.model")
    history: list[dict[str, Any]] = []
    best = None
    if cfg.checkpoint is not None:
        load_state(model, cfg.checkpoint, key="teacher.checkpoint")
        source = "checkpoint"
    else:
        fitted = fit(model, ds.train, ds.val, ds.info, cfg, objective=cross_entropy, seed=ctx.config.seed,
                     reporter=ctx.reporter, desc="teacher epochs")
        history, best, source = fitted.history, fitted.best_epoch, "trained"
    path = ctx.stage_dir("teacher") / "teacher.pt"
    with atomic_path(path) as tmp:
        torch.save(model.state_dict(), tmp)
    ref = ModelRef(kind="state_dict", path=ctx.rel(path), name=cfg.model, args=cfg.args)
    ctx._memo[f"model:{ref.path}"] = model.eval()
    return TeacherResult(model=ref, params=count_params(model), metrics=evaluate(model, ds.test, ds.info),
                         val_metrics=evaluate(model, ds.val, ds.info), history=history, best_epoch=best, source=source)
