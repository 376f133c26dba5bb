"""The distill objective for sentence encoders, combined by the YAML weights (distill.embedding):

    L = w_cos L_cos + w_mse L_mse                    feature transfer (EmbeddingRegression)
      + w_D RKD_D + w_A RKD_A + w_KL L_simKL         relation transfer (RKDLoss, SimilarityKL)
      + w_c L_InfoNCE                                in-batch contrastive on the batch's query rows

Teacher embeddings are the teacher stage's, read by training-row index (the teacher never runs
here). The contrastive term embeds each query row's product description with the student too.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mobilekd.config import EmbeddingKDConfig
from mobilekd.data import Split
from mobilekd.data.catalogue import ITEM, QUERY_ROW, ROLE
from mobilekd.distill.embedding import EmbeddingRegression, InBatchContrastive, SimilarityKL
from mobilekd.distill.losses import RKDLoss


def gather(array: np.ndarray, idx: torch.Tensor) -> torch.Tensor:
    rows = idx.cpu().numpy()
    order = np.argsort(rows)
    out = np.empty((len(rows), *array.shape[1:]), dtype=np.float32)
    out[order] = np.asarray(array[rows[order]], dtype=np.float32)  # sorted reads of a memmap
    return torch.from_numpy(out)


class EmbeddingObjective(nn.Module):
    """Trainer objective; its parameters (the regression projection) train with the student."""

    def __init__(self, cfg: EmbeddingKDConfig, train: Split, teacher: np.ndarray | None, student_dim: int):
        super().__init__()
        self.cfg = cfg
        needs_teacher = cfg.cosine or cfg.mse or cfg.rkd_distance or cfg.rkd_angle or cfg.similarity_kl
        if needs_teacher and teacher is None:
            raise ValueError("distill.embedding: the teacher terms need the teacher stage's embeddings")
        self.teacher = teacher
        teacher_dim = teacher.shape[1] if teacher is not None else student_dim
        self.regression = EmbeddingRegression(student_dim, teacher_dim, cfg.cosine, cfg.mse)
        self.rkd = RKDLoss(cfg.rkd_distance, cfg.rkd_angle)
        self.similarity = SimilarityKL(cfg.similarity_temperature)
        self.contrastive = InBatchContrastive(cfg.contrastive_temperature)
        self.targets = torch.from_numpy(np.asarray(train.targets)).long()
        catalogue = np.flatnonzero(train.targets[:, ROLE] != QUERY_ROW)
        # item id -> its description row's tokens (every training item has one)
        self.item_row = {int(train.targets[r, ITEM]): int(r) for r in catalogue}
        self.ids = torch.from_numpy(train.inputs["input_ids"])
        self.mask = torch.from_numpy(train.inputs["attention_mask"])

    def forward(self, model: nn.Module, xs: tuple[torch.Tensor, ...], y: torch.Tensor,
                idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.cfg
        ids, mask = xs
        width = max(int(mask.sum(dim=1).max()), 1)  # batches hold short texts: drop the all-padding tail
        s = model(ids[:, :width], mask[:, :width])
        loss = s.sum() * 0.0
        terms: dict[str, float] = {}
        if self.teacher is not None and (c.cosine or c.mse or c.rkd_distance or c.rkd_angle or c.similarity_kl):
            t = gather(self.teacher, idx).to(s.device)
            if c.cosine or c.mse:
                r, rt = self.regression(s, t)
                loss = loss + r
                terms.update({f"feature_{k}": v for k, v in rt.items()})
            if c.rkd_distance or c.rkd_angle:
                r, rt = self.rkd(s, t)
                loss = loss + r
                terms.update({f"rkd_{k}": v for k, v in rt.items()})
            if c.similarity_kl:
                r, rt = self.similarity(s, t)
                loss = loss + c.similarity_kl * r
                terms["similarity_kl"] = rt["kl"]
        if c.contrastive:
            rows = self.targets[idx]
            is_query = rows[:, ROLE] == QUERY_ROW
            if int(is_query.sum()) >= 2:
                items = rows[is_query, ITEM]
                prod = torch.tensor([self.item_row[int(i)] for i in items])
                pm = self.mask[prod]
                w = max(int(pm.sum(dim=1).max()), 1)
                p = model(self.ids[prod][:, :w].to(s.device), pm[:, :w].to(s.device))
                r, rt = self.contrastive(s[is_query.to(s.device)], p, items.to(s.device))
                loss = loss + c.contrastive * r
                terms["contrastive"] = rt["infonce"]
        return loss, terms
