"""distill stage, retrieval tasks: train the text student against the teacher's sentence
embeddings (mobilekd.distill.embedding_objective). The teacher's embeddings of the training rows
come from the teacher stage (the text teacher-output cache), so the teacher model is not loaded."""

from __future__ import annotations

import torch

from mobilekd.config import DistillConfig, EmbeddingKDConfig
from mobilekd.context import RunContext
from mobilekd.distill.cache import split_digest
from mobilekd.distill import ddp
from mobilekd.distill.embedding_objective import EmbeddingObjective
from mobilekd.distill.trainer import TrainSpec, fit, seed_everything
from mobilekd.evaluate import evaluate
from mobilekd.compress.macs import count_params
from mobilekd.models import build_model
from mobilekd.store import sha256_file


def run_text(cfg: DistillConfig, ctx: RunContext):
    from mobilekd.stages.distill import DistillResult, resume_path, save_student

    ddp.setup()
    ds = ctx.dataset()
    teacher_result = ctx.require("teacher", "distill")
    emb_cfg = cfg.embedding or EmbeddingKDConfig()
    seed_everything(ctx.config.seed)
    student = build_model(cfg.student, cfg.args, ds.info, key="distill.student")
    example = tuple(torch.from_numpy(ds.train.inputs[s.name][:2]) for s in ds.info.inputs)
    with torch.no_grad():
        student_dim = int(student.eval()(*example).shape[-1])
    objective = EmbeddingObjective(emb_cfg, ds.train, ds.train.reference.get("teacher"), student_dim)
    resume = resume_path(ctx, "distill", cfg, sha256_file(ctx.path(teacher_result.model.path)), split_digest(ds.train))
    fitted = fit(student, TrainSpec(ds.train, ds.val, ds.info, cfg, ctx.config.seed, desc="distill epochs",
                                    reporter=ctx.reporter, resume=resume), objective, aux=objective)
    ref = save_student(ctx, cfg, student, resume)
    losses = [name for name, w in (("feature_cosine", emb_cfg.cosine), ("feature_mse", emb_cfg.mse),
                                   ("rkd_distance", emb_cfg.rkd_distance), ("rkd_angle", emb_cfg.rkd_angle),
                                   ("similarity_kl", emb_cfg.similarity_kl), ("contrastive", emb_cfg.contrastive)) if w]
    return DistillResult(model=ref, params=count_params(student), teacher_params=teacher_result.params,
                         metrics=evaluate(student, ds.test, ds.info), val_metrics=evaluate(student, ds.val, ds.info),
                         history=fitted.history, best_epoch=fitted.best_epoch, seconds=round(fitted.seconds, 3),
                         losses=losses, adapter_params=sum(p.numel() for p in objective.parameters()),
                         teacher_cache="hit", resumed_from_epoch=fitted.resumed_from)
