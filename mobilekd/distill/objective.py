"""The distill stage's training objective: logit KD + FitNets hints + RKD, combined by YAML weights.

    L = [alpha * CE + (1 - alpha) * T^2 * KL]  +  sum_i w_i * hint_i  +  w_D * RKD_D + w_A * RKD_A

The teacher's side comes from a `TeacherSource`: cached arrays looked up by training-row index
(inputs not augmented), or the teacher run on the batch itself (augmented inputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import nn

from mobilekd.config import HintPair, RelationConfig
from mobilekd.distill.cache import LOGITS, TeacherOutputs
from mobilekd.distill.hints import FeatureTaps
from mobilekd.distill.losses import HintLoss, KDLoss, RKDLoss


class TeacherSource(Protocol):
    def __call__(self, xs: tuple[torch.Tensor, ...], idx: torch.Tensor) -> dict[str, torch.Tensor]: ...


class CachedTeacher:
    """Teacher outputs read from the memory-mapped cache by row index."""

    def __init__(self, outputs: TeacherOutputs, layers: Sequence[str]):
        self.outputs = outputs
        self.layers = list(dict.fromkeys([LOGITS, *layers]))

    def __call__(self, xs: tuple[torch.Tensor, ...], idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: self.outputs.batch(n, idx).to(xs[0].device) for n in self.layers}


class OnlineTeacher:
    """The teacher run on each (possibly augmented) batch; no gradient flows into it."""

    def __init__(self, teacher: nn.Module, layers: Sequence[str]):
        self.teacher = teacher.eval()
        self.taps = FeatureTaps(teacher, [n for n in layers if n != LOGITS], key="distill.teacher layers")

    @torch.no_grad()
    def __call__(self, xs: tuple[torch.Tensor, ...], idx: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.teacher(*xs)
        return {LOGITS: out, **dict(self.taps.outputs)}

    def close(self) -> None:
        self.taps.close()


class DistillObjective(nn.Module):
    """Callable as a trainer objective; its parameters (the hint adapters) train with the student."""

    def __init__(self, kd: KDLoss, hints: Sequence[tuple[HintPair, HintLoss]], relation: tuple[RelationConfig, RKDLoss] | None,
                 student_taps: FeatureTaps, teacher: TeacherSource, kd_new_items: bool = False):
        """kd_new_items: the KL term over the items not in the history (the student's first input)."""
        super().__init__()
        self.kd = kd
        self.kd_new_items = kd_new_items
        self.pairs = [p for p, _ in hints]
        self.hints = nn.ModuleList([h for _, h in hints])
        self.relation_cfg = relation[0] if relation else None
        self.rkd = relation[1] if relation else None
        self.student_taps = student_taps
        self.teacher = teacher

    def forward(self, model: nn.Module, xs: tuple[torch.Tensor, ...], y: torch.Tensor,
                idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        logits = model(*xs)
        t = self.teacher(xs, idx)
        loss, kd_terms = self.kd(logits, t[LOGITS], y, xs[0] if self.kd_new_items else None)
        terms = {f"kd_{k}": v for k, v in kd_terms.items()}
        for pair, hint in zip(self.pairs, self.hints):
            h, h_terms = hint(self.student_taps[pair.student], t[pair.teacher])
            loss = loss + h
            terms[f"hint_{pair.student}->{pair.teacher}_mse"] = h_terms["mse"]
        if self.rkd is not None and self.relation_cfg is not None:
            r, r_terms = self.rkd(self.student_taps[self.relation_cfg.student], t[self.relation_cfg.teacher])
            loss = loss + r
            terms.update({f"rkd_{k}": v for k, v in r_terms.items()})
        return loss, terms
