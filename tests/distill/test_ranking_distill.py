"""Ranking distillation loss (Tang & Wang 2018): values worked out by hand, and the distill-stage wrapper.

(Named test_ranking_distill.py, not test_ranking.py: tests/metrics/test_ranking.py exists and these
test folders have no __init__.py, so two files of one basename would clash under pytest.)
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mobilekd.config import RankingKDConfig
from mobilekd.data import DatasetInfo
from mobilekd.distill.cache import LOGITS
from mobilekd.distill.ranking import RankingDistillLoss, RankingObjective, position_weights, ranking_objective
from mobilekd.specs import TensorSpec

# Student scores s = [0, 0, ln 2, ln 2]  ->  softmax(s) = [1, 1, 2, 2] / 6
S = torch.tensor([[0.0, 0.0, math.log(2.0), math.log(2.0)]])
# Teacher scores: ranking 3 > 0 > 2 > 1, so the top-2 is pi = (3, 0).
T = torch.tensor([[0.5, 0.1, 0.2, 0.9]])


def test_position_weights_decay_and_sum_to_one():
    # k = 2, lambda = 1: exp(-1), exp(-2) normalised -> 1 / (1 + e^-1) = 0.731059, e^-1 / (1 + e^-1) = 0.268941
    w = position_weights(2, 1.0)
    assert w.tolist() == pytest.approx([0.731059, 0.268941], abs=1e-6)
    # a larger lambda flattens the weights: k = 3, lambda = 1e6 -> ~1/3 each
    assert position_weights(3, 1e6).tolist() == pytest.approx([1 / 3] * 3, abs=1e-6)


def test_softmax_form_matches_hand_value():
    # L = -(0.731059 * ln(2/6) + 0.268941 * ln(1/6)) = 0.731059 * 1.098612 + 0.268941 * 1.791759
    #   = 0.803150 + 0.481878 = 1.285028
    loss, terms = RankingDistillLoss(k=2, decay=1.0, form="softmax")(S, T)
    assert float(loss) == pytest.approx(1.285028, abs=1e-5)
    assert terms["rd"] == pytest.approx(1.285028, abs=1e-5)


def test_binary_form_matches_hand_value():
    # positives (3, 0): sigma(ln 2) = 2/3, sigma(0) = 1/2
    #   0.731059 * -ln(2/3) + 0.268941 * -ln(1/2) = 0.731059 * 0.405465 + 0.268941 * 0.693147 = 0.482835
    # negatives {1, 2}: 1 - sigma(0) = 1/2, 1 - sigma(ln 2) = 1/3 -> mean(ln 2, ln 3) = (0.693147 + 1.098612) / 2 = 0.895880
    # total 0.482835 + 0.895880 = 1.378714
    loss, terms = RankingDistillLoss(k=2, decay=1.0, form="binary")(S, T)
    assert float(loss) == pytest.approx(1.378714, abs=1e-5)
    assert terms["rd_pos"] == pytest.approx(0.482835, abs=1e-5)
    assert terms["rd_neg"] == pytest.approx(0.895880, abs=1e-5)


def test_excluded_ids_are_never_positives_or_negatives():
    # Excluding id 3 (the teacher's best): top-2 becomes (0, 2).
    # softmax: -(0.731059 * ln(1/6) + 0.268941 * ln(2/6)) = 0.731059 * 1.791759 + 0.268941 * 1.098612
    #   = 1.309881 + 0.295462 = 1.605343
    loss, _ = RankingDistillLoss(k=2, decay=1.0, exclude_ids=(3,))(S, T)
    assert float(loss) == pytest.approx(1.605343, abs=1e-5)
    # binary: positives (0, 2): 0.731059 * ln 2 + 0.268941 * -ln(2/3) = 0.506731 + 0.109046 = 0.615777;
    # negatives: only id 1 (3 excluded): -ln(1/2) = 0.693147; total 1.308924
    loss_b, _ = RankingDistillLoss(k=2, decay=1.0, form="binary", exclude_ids=(3,))(S, T)
    assert float(loss_b) == pytest.approx(1.308924, abs=1e-5)


def test_new_items_skip_the_history():
    # History [3, 3] (id 3, the teacher's best, bought before): the teacher's top-2 *new* items are
    # (0, 2), and the student is scored on the new-item shelf, its softmax over {0, 1, 2} only:
    # [1, 1, 2] / 4 -> -(0.731059 * ln(1/4) + 0.268941 * ln(2/4)) = 1.013463 + 0.186415 = 1.199878.
    # Without new_items the history is ignored: 1.285028.
    hist = torch.tensor([[3, 3]])
    loss, _ = RankingDistillLoss(k=2, decay=1.0, new_items=True)(S, T, hist)
    assert float(loss) == pytest.approx(1.199878, abs=1e-5)
    # binary: positives (0, 2) 0.615777 as above; negatives only id 1 (3 is history): 0.693147
    loss_b, _ = RankingDistillLoss(k=2, decay=1.0, form="binary", new_items=True)(S, T, hist)
    assert float(loss_b) == pytest.approx(1.308924, abs=1e-5)
    loss_all, _ = RankingDistillLoss(k=2, decay=1.0)(S, T, hist)
    assert float(loss_all) == pytest.approx(1.285028, abs=1e-5)


def test_batch_mean_and_gradient_direction():
    # Two identical rows average to the one-row value; the gradient raises the teacher's top item.
    s = S.repeat(2, 1).requires_grad_(True)
    loss, _ = RankingDistillLoss(k=2, decay=1.0)(s, T.repeat(2, 1))
    assert float(loss) == pytest.approx(1.285028, abs=1e-5)
    loss.backward()
    assert s.grad[0, 3] < 0 < s.grad[0, 1]  # descending the loss raises item 3, lowers item 1


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="k must be"):
        RankingDistillLoss(k=0)
    with pytest.raises(ValueError, match="decay"):
        RankingDistillLoss(decay=0.0)
    with pytest.raises(ValueError, match="form"):
        RankingDistillLoss(form="listwise")  # type: ignore[arg-type]


class _Base(nn.Module):
    """A stand-in for DistillObjective: runs the student once and asks the teacher source."""

    def __init__(self, teacher):
        super().__init__()
        self.teacher = teacher
        self.adapter = nn.Linear(1, 1)  # must stay visible to the optimiser through the wrapper

    def forward(self, model, xs, y, idx):
        out = model(*xs)
        self.teacher(xs, idx)
        return out.sum() * 0.0, {"kd_ce": 1.0}


def test_objective_wrapper_adds_weighted_term_and_calls_teacher_once():
    calls = []

    def teacher(xs, idx):
        calls.append(idx)
        return {LOGITS: T}

    student = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        student.weight.copy_(torch.eye(4))  # scores = inputs = S
    info = DatasetInfo(name="t", task="ranking", inputs=(TensorSpec(name="items", dtype="int64", shape=(1, 4)),),
                       num_outputs=4, labels=("a", "b", "c", "d"), postprocessing={"exclude_ids": []})
    obj = ranking_objective(RankingKDConfig(k=2, decay=1.0, weight=0.5), _Base(teacher), teacher, info)
    assert isinstance(obj, RankingObjective)
    loss, terms = obj(student, (S,), torch.tensor([3]), torch.tensor([0]))
    # base contributes 0; 0.5 * 1.285028 = 0.642514
    assert float(loss) == pytest.approx(0.642514, abs=1e-5)
    assert terms["kd_ce"] == 1.0 and terms["ranking_rd"] == pytest.approx(1.285028, abs=1e-5)
    assert len(calls) == 1  # the teacher source ran once for both objectives
    assert any(p.shape == (1, 1) for p in obj.parameters())  # the base's adapter is still trained
