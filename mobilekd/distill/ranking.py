"""Ranking distillation for recommenders: teach the student the teacher's top-k, not its whole
softmax. A catalogue of thousands of items spreads the teacher's probability thin; what the app
shows is the top of the ranking, so that is what this loss transfers.
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mobilekd.config import RankingKDConfig
from mobilekd.data import DatasetInfo
from mobilekd.distill.cache import LOGITS
from mobilekd.distill.losses import without_history


def position_weights(k: int, decay: float) -> torch.Tensor:
    """w_r = exp(-r / decay) / sum_{q=1..k} exp(-q / decay), r = 1..k: the teacher's first items count most."""
    w = torch.exp(-torch.arange(1, k + 1, dtype=torch.float32) / decay)
    return w / w.sum()


class RankingDistillLoss(nn.Module):
    """Ranking Distillation (Tang & Wang, KDD 2018, "Ranking Distillation: Learning Compact Ranking
    Models With High Performance for Recommender System"), position-importance weighting.

    pi_1..pi_k: the teacher's top-k items (ids in `exclude_ids`, e.g. padding/unknown, never count;
    with `new_items`, the items of the history are skipped too: the teacher's top-k *new* items,
    what the student cannot learn from its re-buy path, and the student's scores are ranked with
    the history removed, on the "discover" shelf the *_new metrics score, so the loss teaches the
    order of new items without pushing the re-buys down),
    w_r = exp(-r / lambda) normalised to sum 1 (`position_weights`), s: the student's scores.

        softmax form:  L_RD = - sum_r w_r * log softmax(s)_{pi_r}
        binary form:   L_RD = - sum_r w_r * log sigma(s_{pi_r})  -  mean_{j in N} log(1 - sigma(s_j))

    averaged over the batch; N = every item that is neither in the top-k nor excluded. The paper's
    binary form has only the positive sum, because its base loss already samples negatives; with a
    softmax base loss, which does not fix the level of the scores, a positives-only sigmoid term is
    met by shifting every score up, so here the rest of the catalogue are the negatives. The paper's
    total is L = L_R + lambda_RD * L_RD; the distill stage adds `weight * L_RD` to the KD loss (use
    alpha = 1 for the paper's L_R = cross-entropy on the next item).
    """

    def __init__(self, k: int = 10, decay: float = 5.0, *, form: Literal["softmax", "binary"] = "softmax",
                 exclude_ids: Sequence[int] = (), new_items: bool = False):
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if decay <= 0:
            raise ValueError(f"decay must be > 0, got {decay}")
        if form not in ("softmax", "binary"):
            raise ValueError(f"form must be 'softmax' or 'binary', got {form!r}")
        self.k, self.form = k, form
        self.exclude_ids = tuple(int(i) for i in exclude_ids)
        self.new_items = new_items
        self.register_buffer("weights", position_weights(k, decay), persistent=False)

    def teacher_topk(self, teacher_scores: torch.Tensor, history: torch.Tensor | None = None) -> torch.Tensor:
        """(B, k) item ids of the teacher's best k, excluded ids (and, with `history`, the items
        already bought: the teacher's top-k *new* items) pushed below every real item."""
        t = teacher_scores.detach().float().clone()
        if self.exclude_ids:
            t[:, list(self.exclude_ids)] = float("-inf")
        if history is not None:
            t.scatter_(1, history.long(), float("-inf"))
        k = min(self.k, t.shape[1] - len(self.exclude_ids))
        if k < 1:
            raise ValueError(f"no items left to rank: {t.shape[1]} outputs, {len(self.exclude_ids)} excluded")
        return t.topk(k, dim=1).indices

    def forward(self, student_scores: torch.Tensor, teacher_scores: torch.Tensor,
                history: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """history (B, K) item ids: used (top-k new items only) when the loss was built with new_items."""
        top = self.teacher_topk(teacher_scores, history if self.new_items else None)
        w = self.weights[: top.shape[1]]
        w = w / w.sum()
        s = student_scores.float()
        if self.new_items and history is not None:
            # the "discover" shelf: the student's new items ranked among themselves (history items
            # removed, as the *_new metrics rank them), so the loss never pushes a re-buy down
            s = without_history(s, history)
        if self.form == "softmax":
            picked = F.log_softmax(s, dim=1).gather(1, top)  # (B, k)
            loss = -(picked * w).sum(dim=1).mean()
            return loss, {"rd": float(loss.detach())}
        pos = -(F.logsigmoid(s.gather(1, top)) * w).sum(dim=1)  # (B,)
        neg_mask = torch.ones_like(s, dtype=torch.bool)
        neg_mask.scatter_(1, top, False)
        if self.new_items and history is not None:
            neg_mask.scatter_(1, history.long(), False)
        if self.exclude_ids:
            neg_mask[:, list(self.exclude_ids)] = False
        # log(1 - sigma(x)) = logsigmoid(-x); the mean runs over each row's negatives only.
        neg = -(F.logsigmoid(-s) * neg_mask).sum(dim=1) / neg_mask.sum(dim=1).clamp(min=1)
        loss = (pos + neg).mean()
        return loss, {"rd": float(loss.detach()), "rd_pos": float(pos.mean().detach()), "rd_neg": float(neg.mean().detach())}


class _LastBatch:
    """Remembers the teacher outputs of the last batch (same `idx` tensor), so a teacher run online
    is not run twice per batch when two objectives ask for it."""

    def __init__(self, source: Callable):
        self.source = source
        self._key: torch.Tensor | None = None
        self._value: dict[str, torch.Tensor] = {}

    def __call__(self, xs: tuple[torch.Tensor, ...], idx: torch.Tensor) -> dict[str, torch.Tensor]:
        if self._key is not idx:
            self._key, self._value = idx, self.source(xs, idx)
        return self._value


class RankingObjective(nn.Module):
    """A trainer objective that adds `weight * RankingDistillLoss` to another distillation objective.

    The student's scores are read with a forward hook during the wrapped objective's own forward
    pass, so the student runs once per batch; the teacher's scores come from the same teacher source
    (cache or online) under the key `LOGITS`. The wrapped objective's parameters (hint adapters)
    stay registered, so the trainer still optimises them.
    """

    def __init__(self, base: nn.Module, loss: RankingDistillLoss, teacher: Callable, weight: float = 1.0):
        super().__init__()
        self.base = base
        self.rank_loss = loss
        self.teacher = _LastBatch(teacher)
        if hasattr(base, "teacher"):  # share one teacher call per batch with the wrapped objective
            base.teacher = self.teacher
        self.weight = weight

    def forward(self, model: nn.Module, xs: tuple[torch.Tensor, ...], y: torch.Tensor,
                idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        seen: list[torch.Tensor] = []
        hook = model.register_forward_hook(lambda _m, _i, out: seen.append(out))
        try:
            loss, terms = self.base(model, xs, y, idx)
        finally:
            hook.remove()
        if not seen:
            raise RuntimeError("ranking distillation: the wrapped objective never ran the student")
        rd, rd_terms = self.rank_loss(seen[-1], self.teacher(xs, idx)[LOGITS], xs[0])
        return loss + self.weight * rd, {**terms, **{f"ranking_{k}": v for k, v in rd_terms.items()}}


def ranking_objective(cfg: RankingKDConfig, base: nn.Module, teacher: Callable, info: DatasetInfo) -> RankingObjective:
    """The distill stage's hook: wrap `base` when the pipeline's `distill.ranking` is set. Ids the
    dataset says never to rank (postprocessing.exclude_ids: padding, unknown) are never positives."""
    exclude = tuple(int(i) for i in (info.postprocessing or {}).get("exclude_ids", ()))
    loss = RankingDistillLoss(cfg.k, cfg.decay, form=cfg.form, exclude_ids=exclude, new_items=cfg.new_items)
    return RankingObjective(base, loss, teacher, weight=cfg.weight)
