"""distill stage: train the small student against the teacher (Hinton KD, FitNets hints, RKD).

Teacher outputs are memory-mapped once per (teacher, training split, layers) under
`<run_dir>/.cache/teacher-outputs/` and reused by every epoch and every later run; a resume
checkpoint in `<run_dir>/.resume/` lets an interrupted stage continue from its last epoch.
Under torchrun, only rank 0 writes files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from mobilekd.config import DistillConfig, TrainSettings
from mobilekd.errors import ConfigError
from mobilekd.context import ModelRef, RunContext
from mobilekd.distill import ddp
from mobilekd.distill.cache import LOGITS, cache_key, split_digest, teacher_outputs
from mobilekd.distill.hints import FeatureTaps, probe_shapes
from mobilekd.distill.losses import HintLoss, KDLoss, RKDLoss
from mobilekd.distill.objective import CachedTeacher, DistillObjective, OnlineTeacher
from mobilekd.distill.ranking import ranking_objective
from mobilekd.distill.trainer import Objective, TrainSpec, fit, seed_everything
from mobilekd.evaluate import evaluate
from mobilekd.compress.macs import count_params
from mobilekd.models import build_model
from mobilekd.store import atomic_path, sha256_file, sha256_json


class DistillResult(BaseModel):
    model: ModelRef
    params: int
    teacher_params: int
    metrics: dict[str, float]
    val_metrics: dict[str, float]
    history: list[dict[str, Any]] = []
    best_epoch: int
    seconds: float
    losses: list[str] = []  # "kd", "hint:<student>-><teacher>", "rkd"
    adapter_params: int = 0  # trained with the student, not shipped
    teacher_cache: str = "off"  # "hit" (earlier run's files), "built", "off" (teacher run every batch)
    resumed_from_epoch: int = 0


def model_digest(model: torch.nn.Module) -> str:
    """sha256 over a model's state dict (names, shapes, bytes): what the teacher's outputs depend on."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        a = t.detach().cpu().contiguous()
        h.update(f"{name}|{a.dtype}|{tuple(a.shape)}".encode())
        h.update(a.numpy().tobytes() if a.dtype != torch.bfloat16 else a.float().numpy().tobytes())
    return h.hexdigest()


def teacher_digest(ctx: RunContext, teacher: torch.nn.Module) -> str:
    ref = ctx.require("teacher", "distill").model
    path = ctx.path(ref.path)
    # The saved file, not the weights in memory: under DDP each process's BatchNorm statistics
    # drift apart after the last step, while the file (written by rank 0) is the one teacher.
    return sha256_file(path) if path.is_file() else model_digest(teacher)


def resume_path(ctx: RunContext, stage: str, cfg: Any, *inputs: str) -> Path:
    """`<run_dir>/.resume/<stage>-<key>.pt`: outside the stage folder, which the pipeline clears."""
    key = sha256_json({"config": cfg.model_dump(mode="json"), "seed": ctx.config.seed, "inputs": inputs})[:16]
    return ctx.run_dir / ".resume" / f"{stage}-{key}.pt"


def recovery_objective(ctx: RunContext) -> tuple[Objective, TrainSettings]:
    """KD against the teacher for the fine-tunes after distillation (pruning's recovery, QAT): the
    distill stage's T and alpha (Hinton defaults without one), and the teacher's training-set logits
    from the teacher-output cache, so no later stage runs the teacher over the data again."""
    ds = ctx.dataset()
    teacher = ctx.teacher()
    distill = ctx.config.distill
    loss = KDLoss(distill.temperature, distill.alpha) if distill is not None else KDLoss()
    outputs = teacher_outputs(ctx.run_dir / ".cache" / "teacher-outputs",
                              cache_key(teacher_digest(ctx, teacher), split_digest(ds.train), []),
                              teacher, ds.train, ctx.teacher_info(), [])

    def objective(model: torch.nn.Module, xs: tuple[torch.Tensor, ...], y: torch.Tensor,
                  idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        return loss(model(*xs), outputs.batch(LOGITS, idx), y)

    return objective, distill or ctx.config.teacher


def save_student(ctx: RunContext, cfg: DistillConfig, student: torch.nn.Module, resume: Path) -> ModelRef:
    """distill/student.pt (rank 0), the resume checkpoint dropped, the model kept for later stages."""
    path = ctx.stage_dir("distill") / "student.pt"
    if ddp.is_main():
        with atomic_path(path) as tmp:
            torch.save(student.state_dict(), tmp)
        resume.unlink(missing_ok=True)
    ref = ModelRef(kind="state_dict", path=ctx.rel(path), name=cfg.student, args=cfg.args)
    ctx.remember(ref, student.eval())
    return ref


def run(cfg: DistillConfig, ctx: RunContext) -> DistillResult:
    ddp.setup()
    ds = ctx.dataset()
    if ds.info.task == "retrieval":  # sentence-embedding distillation (mobilekd/stages/distill_text.py)
        from mobilekd.stages.distill_text import run_text

        return run_text(cfg, ctx)
    teacher = ctx.teacher()
    seed_everything(ctx.config.seed)  # the student's and adapters' initial weights come from the seed
    student = build_model(cfg.student, cfg.args, ds.info, key="distill.student")
    tinfo = ctx.teacher_info()  # the teacher may read privileged inputs the student never sees
    example = tuple(torch.from_numpy(ds.train.inputs[s.name][:2]) for s in ds.info.inputs)
    t_example = tuple(torch.from_numpy(ds.train.inputs[s.name][:2]) for s in tinfo.inputs)
    t_layers = [h.teacher for h in cfg.hints] + ([cfg.relation.teacher] if cfg.relation else [])
    s_layers = [h.student for h in cfg.hints] + ([cfg.relation.student] if cfg.relation else [])
    t_shapes = probe_shapes(teacher, t_layers, t_example, key="distill.hints.teacher")
    s_shapes = probe_shapes(student, s_layers, example, key="distill.hints.student")
    hints = [(h, HintLoss(s_shapes[h.student], t_shapes[h.teacher], h.weight)) for h in cfg.hints]
    relation = (cfg.relation, RKDLoss(cfg.relation.distance_weight, cfg.relation.angle_weight)) if cfg.relation else None
    kd = KDLoss(cfg.temperature, cfg.alpha, temperature_end=cfg.temperature_end, alpha_end=cfg.alpha_end)

    t_digest, d_digest = teacher_digest(ctx, teacher), split_digest(ds.train)
    online: OnlineTeacher | None = None
    cache_state = "off"
    if cfg.cache_teacher and not cfg.augment:
        outputs = teacher_outputs(ctx.run_dir / ".cache" / "teacher-outputs", cache_key(t_digest, d_digest, t_layers),
                                  teacher, ds.train, tinfo, t_layers)
        source: Any = CachedTeacher(outputs, t_layers)
        cache_state = "hit" if outputs.hit else "built"
    elif tinfo is not ds.info:
        raise ConfigError("teacher.inputs: a teacher reading its own inputs is distilled from its cached outputs; "
                          "set distill.cache_teacher: true and distill.augment: false")
    else:
        online = source = OnlineTeacher(teacher.to(ddp.device()), t_layers)
    resume = resume_path(ctx, "distill", cfg, t_digest, d_digest)
    try:
        with FeatureTaps(student, s_layers, key="distill.hints.student") as taps:
            if cfg.kd_items == "new" and ds.info.task != "ranking":
                raise ConfigError(f"distill.kd_items: 'new' is for ranking datasets; {ds.info.name} is {ds.info.task}")
            objective = DistillObjective(kd, hints, relation, taps, source, kd_new_items=cfg.kd_items == "new")
            # -- ranking distillation (distill.ranking; mobilekd/distill/ranking.py) --
            trained = objective if cfg.ranking is None else ranking_objective(cfg.ranking, objective, source, ds.info)
            spec = TrainSpec(ds.train, ds.val, ds.info, cfg, ctx.config.seed, desc="distill epochs",
                             reporter=ctx.reporter, resume=resume)
            fitted = fit(student, spec, trained, aux=trained, on_epoch=kd.set_epoch)
    finally:
        if online is not None:
            online.close()
            teacher.to("cpu")
    ref = save_student(ctx, cfg, student, resume)
    losses = ["kd"] + [f"hint:{h.student}->{h.teacher}" for h in cfg.hints] + (["rkd"] if cfg.relation else [])
    losses += ["ranking"] if cfg.ranking is not None else []  # ranking distillation
    return DistillResult(model=ref, params=count_params(student), teacher_params=count_params(teacher),
                         metrics=evaluate(student, ds.test, ds.info), val_metrics=evaluate(student, ds.val, ds.info),
                         history=fitted.history, best_epoch=fitted.best_epoch, seconds=round(fitted.seconds, 3),
                         losses=losses, adapter_params=sum(p.numel() for p in objective.hints.parameters()),
                         teacher_cache=cache_state, resumed_from_epoch=fitted.resumed_from)

