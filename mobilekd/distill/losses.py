"""Distillation losses. Each is a small nn.Module whose docstring gives its formula and paper."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class KDLoss(nn.Module):
    """Logit distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network").

        L = alpha * CE(s, y) + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T))

    The T^2 factor keeps the soft term's gradients on the same scale as the hard term's when T
    changes. KL is averaged over the batch ("batchmean"), as the definition requires.
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 0.5):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.temperature = temperature
        self.alpha = alpha

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        t = self.temperature
        ce = F.cross_entropy(student_logits, targets)
        kl = F.kl_div(F.log_softmax(student_logits / t, dim=-1), F.log_softmax(teacher_logits / t, dim=-1),
                      reduction="batchmean", log_target=True)
        loss = self.alpha * ce + (1.0 - self.alpha) * t * t * kl
        return loss, {"ce": float(ce.detach()), "kl": float(kl.detach())}
