"""teacher stage: train the large model on labels, or load a user's trained one, and score it.

Three sources: trained here (default); `checkpoint:` a weights_only state dict for `model` or a
torch.export `.pt2` program; `pretrained: true`, the `model:` factory returns trained weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel

from mobilekd.config import TeacherConfig
from mobilekd.context import ModelRef, RunContext
from mobilekd.data import Dataset, DatasetInfo
from mobilekd.distill import ddp
from mobilekd.distill.trainer import TrainSpec, fit, seed_everything
from mobilekd.errors import ModelError
from mobilekd.evaluate import evaluate
from mobilekd.models.program import load_program
from mobilekd.compress.macs import count_params
from mobilekd.models import build_model, load_state
from mobilekd.stages.distill import resume_path
from mobilekd.store import atomic_path, write_bytes


class TeacherResult(BaseModel):
    model: ModelRef
    params: int
    metrics: dict[str, float]
    val_metrics: dict[str, float]
    history: list[dict[str, Any]] = []
    best_epoch: int | None = None
    source: str  # "trained" | "checkpoint" | "program" | "pretrained" | "huggingface"
    embeddings: dict[str, str] = {}  # retrieval: split -> the teacher's embeddings of its rows (.npy)


def cross_entropy(model: torch.nn.Module, xs: tuple[torch.Tensor, ...], y: torch.Tensor,
                  idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    return F.cross_entropy(model(*xs), y), {}


def checked_program(path: Path, ds: Dataset, info: DatasetInfo) -> torch.nn.Module:
    """The user's torch.export program (`models.program.load_program`), checked on real examples
    of the inputs the teacher reads (`info`)."""
    if not path.is_file():
        raise ModelError(f"teacher.checkpoint: program {path} not found")
    try:
        module = load_program(path)
    except (RuntimeError, ValueError, KeyError, OSError) as e:
        raise ModelError(f"teacher.checkpoint: cannot load torch.export program {path}: {e}") from None
    # a batch of 2: a program exported with a fixed batch of 1 cannot be trained against
    example = tuple(torch.from_numpy(ds.train.inputs[s.name][:2]) for s in info.inputs)
    try:
        out = module(*example)
    except (RuntimeError, ValueError, TypeError, AssertionError) as e:
        shapes = [tuple(x.shape) for x in example]
        raise ModelError(f"teacher.checkpoint: program {path} does not accept this dataset's inputs {shapes} "
                         f"(export it with a dynamic batch dimension): {e}") from None
    if not isinstance(out, torch.Tensor) or out.shape[-1] != info.num_outputs:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError(f"teacher.checkpoint: program {path} returns {got}, expected (batch, {info.num_outputs})")
    return module


def run(cfg: TeacherConfig, ctx: RunContext) -> TeacherResult:
    ddp.setup()
    ds = ctx.dataset()
    info = ctx.teacher_info()  # privileged inputs (teacher.inputs) included
    history: list[dict[str, Any]] = []
    best = None
    out_dir = ctx.stage_dir("teacher")
    if cfg.hf is not None:
        from mobilekd.stages.teacher_hf import run_hf

        return run_hf(cfg, cfg.hf, ctx)
    if cfg.checkpoint is not None and Path(cfg.checkpoint).suffix == ".pt2":
        model = checked_program(Path(cfg.checkpoint), ds, info)
        path = out_dir / "teacher.pt2"
        if ddp.is_main():
            write_bytes(path, Path(cfg.checkpoint).read_bytes())
        ref = ModelRef(kind="program", path=ctx.rel(path))
        ctx.remember(ref, model)
        return TeacherResult(model=ref, params=count_params(model), metrics=evaluate(model, ds.test, info),
                             val_metrics=evaluate(model, ds.val, info), source="program")
    seed_everything(ctx.config.seed)  # initial weights come from the seed too
    model = build_model(cfg.model, cfg.args, info, key="teacher.model")
    if cfg.checkpoint is not None:
        load_state(model, cfg.checkpoint, key="teacher.checkpoint")
        source = "checkpoint"
    elif cfg.pretrained:
        source = "pretrained"
    else:
        resume = resume_path(ctx, "teacher", cfg)
        fitted = fit(model, TrainSpec(ds.train, ds.val, info, cfg, ctx.config.seed, desc="teacher epochs",
                                      reporter=ctx.reporter, resume=resume), cross_entropy)
        history, best, source = fitted.history, fitted.best_epoch, "trained"
        if ddp.is_main():
            resume.unlink(missing_ok=True)
    path = out_dir / "teacher.pt"
    if ddp.is_main():
        with atomic_path(path) as tmp:
            torch.save(model.state_dict(), tmp)
    ref = ModelRef(kind="state_dict", path=ctx.rel(path), name=cfg.model, args=cfg.args)
    if ddp.is_main():  # other processes load rank 0's file, so every process distills from one teacher
        ctx.remember(ref, model.eval())
    return TeacherResult(model=ref, params=count_params(model), metrics=evaluate(model, ds.test, info),
                         val_metrics=evaluate(model, ds.val, info), history=history, best_epoch=best, source=source)
