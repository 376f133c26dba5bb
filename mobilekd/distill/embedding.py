"""Sentence-embedding distillation losses (student embedding s_i, teacher embedding t_i, batch of N).

Each is a small nn.Module returning `(loss, terms)` like mobilekd.distill.losses; relation transfer
on embeddings reuses `RKDLoss` (Park et al. 2019) from there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class EmbeddingRegression(nn.Module):
    """Feature transfer of the sentence embedding: FitNets' regression (Romero et al. 2015, "FitNets:
    Hints for Thin Deep Nets") and DistilBERT's cosine embedding loss (Sanh et al. 2019, "DistilBERT,
    a distilled version of BERT").

        z_i   = P s_i              P: a learned linear projection (no bias) when widths differ, else identity
        L_cos = mean_i (1 - cos(z_i, t_i))
        L_mse = mean_{i,d} (z_id - t_id)^2
        L     = w_cos * L_cos + w_mse * L_mse

    P trains with the student and is not shipped (the student's own output is what the app uses).
    """

    def __init__(self, student_dim: int, teacher_dim: int, cosine_weight: float = 1.0, mse_weight: float = 0.0):
        super().__init__()
        self.projection = nn.Identity() if student_dim == teacher_dim else nn.Linear(student_dim, teacher_dim, bias=False)
        self.cosine_weight = cosine_weight
        self.mse_weight = mse_weight

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        z = self.projection(student)
        t = teacher.detach().float()
        cos = (1.0 - F.cosine_similarity(z, t, dim=-1)).mean()
        mse = F.mse_loss(z, t)
        loss = self.cosine_weight * cos + self.mse_weight * mse
        return loss, {"cosine": float(cos.detach()), "mse": float(mse.detach())}


class SimilarityKL(nn.Module):
    """Relation transfer as the batch similarity distribution (SEED: Fang et al., ICLR 2021,
    "SEED: Self-supervised Distillation for Visual Representation"; CompRess: Abbasi Koohpayegani et
    al., NeurIPS 2020), on unit vectors:

        p^t_ij = softmax_{j != i}( <t_i, t_j> / tau ),   p^s_ij = softmax_{j != i}( <s_i, s_j> / tau )
        L      = mean_i KL(p^t_i || p^s_i) = mean_i sum_{j != i} p^t_ij (log p^t_ij - log p^s_ij)

    The diagonal (each text with itself) is left out: it is 1 / tau for both models and carries no
    relation. The student learns which texts the teacher finds close, not the teacher's coordinates.
    """

    def __init__(self, temperature: float = 0.05):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        s = F.normalize(student.float(), dim=-1)
        t = F.normalize(teacher.detach().float(), dim=-1)
        n = len(s)
        if n < 3:  # one off-diagonal entry per row: the distribution is trivially 1
            zero = student.sum() * 0.0
            return zero, {"kl": 0.0}
        off = ~torch.eye(n, dtype=torch.bool, device=s.device)
        log_ps = F.log_softmax((s @ s.T / self.temperature)[off].reshape(n, n - 1), dim=-1)
        log_pt = F.log_softmax((t @ t.T / self.temperature)[off].reshape(n, n - 1), dim=-1)
        kl = F.kl_div(log_ps, log_pt, reduction="batchmean", log_target=True)
        return kl, {"kl": float(kl.detach())}


class InBatchContrastive(nn.Module):
    """In-batch contrastive loss on query-product pairs (InfoNCE: van den Oord et al. 2018,
    "Representation Learning with Contrastive Predictive Coding"; in-batch negatives as in DPR,
    Karpukhin et al. 2020), on unit vectors q_i (query) and p_i (its product's description):

        L = mean_i -log( exp(<q_i, p_i> / tau) / sum_j exp(<q_i, p_j> / tau) )

    where j runs over the batch's products except other copies of i's own product (same item id),
    which are not negatives. Needs no teacher: this is how the student is trained alone.
    """

    def __init__(self, temperature: float = 0.05):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, queries: torch.Tensor, products: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        q = F.normalize(queries.float(), dim=-1)
        p = F.normalize(products.float(), dim=-1)
        logits = q @ p.T / self.temperature
        same = items[:, None] == items[None, :]
        eye = torch.eye(len(q), dtype=torch.bool, device=q.device)
        logits = logits.masked_fill(same & ~eye, float("-inf"))
        loss = F.cross_entropy(logits, torch.arange(len(q), device=q.device))
        return loss, {"infonce": float(loss.detach())}
