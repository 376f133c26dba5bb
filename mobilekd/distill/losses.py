"""Distillation losses. Each is a small nn.Module whose docstring gives its formula and paper.

Every forward returns `(loss, terms)`: the scalar to back-propagate and the named float values the
trainer averages per epoch into stage.json's history, so each term of a combined loss is visible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def linear(start: float, end: float | None, epoch: int, epochs: int) -> float:
    """`start` at epoch 1, `end` at the last epoch, straight line in between (constant if end is None)."""
    if end is None or epochs <= 1:
        return start
    frac = (min(max(epoch, 1), epochs) - 1) / (epochs - 1)
    return start * (1.0 - frac) + end * frac  # exact at both ends


def without_history(scores: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
    """Scores (B, items) with the ids in each row's history (B, K) set to -1e4: the "discover"
    shelf the *_new metrics rank (finite, so an all-history row stays a valid softmax)."""
    return scores.scatter(1, history.long(), -1e4)


class KDLoss(nn.Module):
    """Logit distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network").

        L = alpha * CE(s, y) + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T))

    The T^2 factor keeps the soft term's gradients on the same scale as the hard term's when T
    changes. KL is averaged over the batch ("batchmean"), as the definition requires. With
    `temperature_end` / `alpha_end`, T and alpha move linearly from their start value at epoch 1 to
    the end value at the last epoch (`set_epoch`), e.g. trusting the labels more as training ends.
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 0.5, *, temperature_end: float | None = None,
                 alpha_end: float | None = None):
        super().__init__()
        for name, t in (("temperature", temperature), ("temperature_end", temperature_end)):
            if t is not None and t <= 0:
                raise ValueError(f"{name} must be > 0, got {t}")
        for name, a in (("alpha", alpha), ("alpha_end", alpha_end)):
            if a is not None and not 0.0 <= a <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {a}")
        self.start = (temperature, alpha)
        self.end = (temperature_end, alpha_end)
        self.temperature = temperature
        self.alpha = alpha

    def set_epoch(self, epoch: int, epochs: int) -> None:
        self.temperature = linear(self.start[0], self.end[0], epoch, epochs)
        self.alpha = linear(self.start[1], self.end[1], epoch, epochs)

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                targets: torch.Tensor, history: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """history (B, K) item ids (ranking): when given, the KL term compares the two models'
        distributions over the items *not* in the history only (both sides' history scores set to
        -1e4), the "discover" shelf; the cross-entropy still sees every item."""
        t = self.temperature
        ce = F.cross_entropy(student_logits, targets)
        s_kd, t_kd = student_logits, teacher_logits.float()
        if history is not None:
            s_kd, t_kd = without_history(s_kd, history), without_history(t_kd, history)
        kl = F.kl_div(F.log_softmax(s_kd / t, dim=-1), F.log_softmax(t_kd / t, dim=-1),
                      reduction="batchmean", log_target=True)
        loss = self.alpha * ce + (1.0 - self.alpha) * t * t * kl
        return loss, {"ce": float(ce.detach()), "kl": float(kl.detach()), "temperature": t, "alpha": self.alpha}


def make_adapter(student_shape: tuple[int, ...], teacher_shape: tuple[int, ...]) -> nn.Module:
    """The FitNets regressor: a 1x1 conv for (C, H, W) maps, a linear layer for vectors.

    Shapes exclude the batch axis. A map is compared after the adapter; if the spatial sizes
    differ, the adapted student map is average-pooled to the teacher's size.
    """
    if len(student_shape) == 3 and len(teacher_shape) == 3:
        return nn.Conv2d(student_shape[0], teacher_shape[0], kernel_size=1, bias=False)
    s, t = int(torch.tensor(student_shape).prod()), int(torch.tensor(teacher_shape).prod())
    return nn.Sequential(nn.Flatten(), nn.Linear(s, t, bias=False))


class HintLoss(nn.Module):
    """Feature (hint) transfer (Romero et al. 2015, "FitNets: Hints for Thin Deep Nets").

        L = w * mean((r(f_s) - f_t)^2)

    f_s, f_t: the outputs of a student and a teacher layer; r: a learned adapter (1x1 conv or
    linear, no bias) trained with the student, which matches the student's width to the teacher's.
    The teacher's features are fixed targets (no gradient).
    """

    def __init__(self, student_shape: tuple[int, ...], teacher_shape: tuple[int, ...], weight: float = 1.0):
        super().__init__()
        self.adapter = make_adapter(tuple(student_shape), tuple(teacher_shape))
        self.teacher_shape = tuple(teacher_shape)
        self.weight = weight

    def forward(self, student_feat: torch.Tensor, teacher_feat: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        r = self.adapter(student_feat)
        target = teacher_feat.detach().float()
        if r.ndim == 4 and r.shape[-2:] != target.shape[-2:]:
            r = F.adaptive_avg_pool2d(r, target.shape[-2:])
        mse = F.mse_loss(r, target.reshape(r.shape))
        return self.weight * mse, {"mse": float(mse.detach())}


def _pairwise_distances(e: torch.Tensor) -> torch.Tensor:
    # sqrt of a clamped square keeps the gradient finite on the zero diagonal.
    sq = (e.unsqueeze(0) - e.unsqueeze(1)).pow(2).sum(-1)
    d = sq.clamp(min=1e-12).sqrt()
    return d * (1 - torch.eye(len(e), device=e.device, dtype=e.dtype))


class RKDLoss(nn.Module):
    """Relational knowledge distillation (Park, Kim, Lu & Cho, CVPR 2019, "Relational Knowledge Distillation").

    On embeddings s_i, t_i of one batch (flattened to vectors):
        distance: psi_D(i, j) = ||x_i - x_j|| / mu,  mu = mean of ||x_i - x_j|| over pairs i != j
                  L_D = mean_{i,j} huber(psi_D^s(i, j), psi_D^t(i, j))
        angle:    psi_A(i, j, k) = <(x_i - x_j)/||x_i - x_j||, (x_k - x_j)/||x_k - x_j||>
                  L_A = mean_{i,j,k} huber(psi_A^s, psi_A^t)
        L = w_D * L_D + w_A * L_A
    huber is smooth-L1 with delta 1; like the authors' code, the means run over all N^2 (N^3)
    entries, degenerate ones (i = j) being 0 for both models. Only the relations are matched, so
    the two embeddings may have different widths and need no adapter.
    """

    def __init__(self, distance_weight: float = 1.0, angle_weight: float = 2.0):
        super().__init__()
        self.distance_weight = distance_weight
        self.angle_weight = angle_weight

    @staticmethod
    def distance_loss(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        def normalised(e: torch.Tensor) -> torch.Tensor:
            d = _pairwise_distances(e)
            n = len(e)
            mu = d.sum() / max(n * (n - 1), 1)
            return d / mu.clamp(min=1e-12)

        return F.smooth_l1_loss(normalised(s), normalised(t.detach()))

    @staticmethod
    def angle_loss(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        def angles(e: torch.Tensor) -> torch.Tensor:
            diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)  # [j, i] = unit(x_i - x_j)
            return torch.bmm(diff, diff.transpose(1, 2)).reshape(-1)

        return F.smooth_l1_loss(angles(s), angles(t.detach()))

    def forward(self, student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        s = student_emb.flatten(1).float()
        t = teacher_emb.flatten(1).float()
        dist = self.distance_loss(s, t)
        ang = self.angle_loss(s, t)
        loss = self.distance_weight * dist + self.angle_weight * ang
        return loss, {"distance": float(dist.detach()), "angle": float(ang.detach())}
