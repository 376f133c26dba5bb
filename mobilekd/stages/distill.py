"""distill stage: train the small student against the teacher's softened outputs (Hinton KD)."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel

from mobilekd.config import DistillConfig
from mobilekd.context import ModelRef, RunContext
from mobilekd.distill.losses import KDLoss
from mobilekd.distill.trainer import fit
from mobilekd.evaluate import evaluate, predict
from mobilekd.models import build_model, count_params
from mobilekd.store import atomic_path


class DistillResult(BaseModel):
    model: ModelRef
    params: int
    teacher_params: int
    metrics: dict[str, float]
    val_metrics: dict[str, float]
    history: list[dict[str, Any]] = []
    best_epoch: int
    seconds: float


def run(cfg: DistillConfig, ctx: RunContext) -> DistillResult:
    ds = ctx.dataset()
    teacher = ctx.teacher()
    student = build_model(cfg.student, cfg.args, ds.info, key="distill.student")
    # Inputs are not augmented, so the teacher's logits are computed once, not every epoch.
    teacher_logits = torch.from_numpy(predict(teacher, ds.train, ds.info))
    loss = KDLoss(cfg.temperature, cfg.alpha)

    def objective(model: torch.nn.Module, xs: tuple[torch.Tensor, ...], y: torch.Tensor,
                  idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        return loss(model(*xs), teacher_logits[idx], y)

    fitted = fit(student, ds.train, ds.val, ds.info, cfg, objective=objective, seed=ctx.config.seed,
                 reporter=ctx.reporter, desc="distill epochs")
    path = ctx.stage_dir("distill") / "student.pt"
    with atomic_path(path) as tmp:
        torch.save(student.state_dict(), tmp)
    ref = ModelRef(kind="state_dict", path=ctx.rel(path), name=cfg.student, args=cfg.args)
    ctx._memo[f"model:{ref.path}"] = student.eval()
    return DistillResult(model=ref, params=count_params(student), teacher_params=count_params(teacher),
                         metrics=evaluate(student, ds.test, ds.info), val_metrics=evaluate(student, ds.val, ds.info),
                         history=fitted.history, best_epoch=fitted.best_epoch, seconds=fitted.seconds)
