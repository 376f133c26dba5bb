"""Each loss against a value worked out by hand (arithmetic in the comments)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mobilekd.distill.losses import HintLoss, KDLoss, RKDLoss, linear


def test_kd_loss_hand_value_t1():
    # teacher logits [ln 3, 0] -> softmax [3/4, 1/4]; student [0, 0] -> [1/2, 1/2]; label 0.
    # CE = -ln(1/2) = 0.693147
    # KL = 3/4 ln(3/4 / 1/2) + 1/4 ln(1/4 / 1/2) = 0.75 * 0.405465 - 0.25 * 0.693147 = 0.130812
    # alpha 0.5, T 1: 0.5 * 0.693147 + 0.5 * 1 * 0.130812 = 0.411980
    loss, terms = KDLoss(1.0, 0.5)(torch.zeros(1, 2), torch.tensor([[math.log(3.0), 0.0]]), torch.tensor([0]))
    assert terms["ce"] == pytest.approx(0.693147, abs=1e-5)
    assert terms["kl"] == pytest.approx(0.130812, abs=1e-5)
    assert loss.item() == pytest.approx(0.411980, abs=1e-5)


def test_kd_loss_hand_value_t2_scales_by_t_squared():
    # T = 2: teacher [ln 3 / 2, 0] = [ln sqrt 3, 0] -> [sqrt3/(1+sqrt3), 1/(1+sqrt3)] = [0.633975, 0.366025]
    # KL = 0.633975 ln(1.267949) + 0.366025 ln(0.732051) = 0.633975 * 0.237401 - 0.366025 * 0.311905
    #    = 0.150506 - 0.114165 = 0.036341
    # alpha 0.25: 0.25 * 0.693147 + 0.75 * 4 * 0.036341 = 0.173287 + 0.109022 = 0.282309
    loss, terms = KDLoss(2.0, 0.25)(torch.zeros(1, 2), torch.tensor([[math.log(3.0), 0.0]]), torch.tensor([0]))
    assert terms["kl"] == pytest.approx(0.036341, abs=1e-5)
    assert loss.item() == pytest.approx(0.282309, abs=1e-5)


def test_kd_loss_over_new_items_only_hand_value():
    """history [3]: the KL compares the distributions over items 0, 1, 2 only; CE sees all four."""
    s = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    t = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    y = torch.tensor([3])
    z_t, z_s = sum(math.exp(v) for v in (3, 2, 1)), sum(math.exp(v) for v in (0, 1, 2))
    p = [math.exp(v) / z_t for v in (3, 2, 1)]
    q = [math.exp(v) / z_s for v in (0, 1, 2)]
    want_kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    want_ce = -(3.0 - math.log(sum(math.exp(v) for v in (0, 1, 2, 3))))
    loss, terms = KDLoss(temperature=1.0, alpha=0.25)(s, t, y, history=torch.tensor([[3]]))
    assert terms["kl"] == pytest.approx(want_kl, rel=1e-5)
    assert terms["ce"] == pytest.approx(want_ce, rel=1e-5)
    assert float(loss) == pytest.approx(0.25 * want_ce + 0.75 * want_kl, rel=1e-5)
    _, everything = KDLoss(temperature=1.0, alpha=0.25)(s, t, y)
    assert everything["kl"] > want_kl  # over all four items the two disagree more


def test_kd_schedules_are_linear_over_epochs():
    kd = KDLoss(4.0, 0.5, temperature_end=2.0, alpha_end=0.9)
    kd.set_epoch(1, 5)
    assert (kd.temperature, kd.alpha) == (4.0, 0.5)
    kd.set_epoch(3, 5)  # halfway: T = 4 + (2 - 4) * 2/4 = 3; alpha = 0.5 + 0.4 * 2/4 = 0.7
    assert kd.temperature == pytest.approx(3.0) and kd.alpha == pytest.approx(0.7)
    kd.set_epoch(5, 5)
    assert kd.temperature == pytest.approx(2.0) and kd.alpha == pytest.approx(0.9)
    assert linear(1.0, None, 3, 5) == 1.0


def test_kd_rejects_bad_values():
    with pytest.raises(ValueError, match="temperature"):
        KDLoss(0.0, 0.5)
    with pytest.raises(ValueError, match="alpha_end"):
        KDLoss(1.0, 0.5, alpha_end=1.5)


def test_hint_loss_conv_adapter_hand_value():
    # student map (C=1, 1x1) value 2; 1x1 conv adapter weights [1, 3] -> [2, 6];
    # teacher [1, 4]: mse = ((2-1)^2 + (6-4)^2) / 2 = 2.5; weight 0.4 -> 1.0
    h = HintLoss((1, 1, 1), (2, 1, 1), weight=0.4)
    assert isinstance(h.adapter, nn.Conv2d)
    with torch.no_grad():
        h.adapter.weight.copy_(torch.tensor([1.0, 3.0]).view(2, 1, 1, 1))
    loss, terms = h(torch.full((1, 1, 1, 1), 2.0), torch.tensor([1.0, 4.0]).view(1, 2, 1, 1))
    assert terms["mse"] == pytest.approx(2.5)
    assert loss.item() == pytest.approx(1.0)


def test_hint_loss_pools_student_map_to_teacher_size():
    # student 2x2 map [[1, 2], [3, 6]], identity adapter -> average 3; teacher 1x1 value 1: mse = (3-1)^2 = 4
    h = HintLoss((1, 2, 2), (1, 1, 1))
    with torch.no_grad():
        h.adapter.weight.fill_(1.0)
    loss, _ = h(torch.tensor([[1.0, 2.0], [3.0, 6.0]]).view(1, 1, 2, 2), torch.ones(1, 1, 1, 1))
    assert loss.item() == pytest.approx(4.0)


def test_hint_loss_linear_adapter_and_gradient_reaches_adapter():
    # vectors: student [1, 2] -> linear [[1, 1]] -> 3; teacher 5: mse = (3-5)^2 = 4
    h = HintLoss((2,), (1,))
    with torch.no_grad():
        h.adapter[1].weight.fill_(1.0)
    loss, _ = h(torch.tensor([[1.0, 2.0]]), torch.tensor([[5.0]]))
    assert loss.item() == pytest.approx(4.0)
    loss.backward()
    # d/dW (Wx - 5)^2 = 2 (3 - 5) x = [-4, -8]
    assert h.adapter[1].weight.grad.tolist() == [[-4.0, -8.0]]


def test_rkd_distance_hand_value():
    # teacher points 0, 1, 2: distances d01=1, d02=2, d12=1; mu = 2*(1+2+1)/6 = 4/3 -> 0.75, 1.5, 0.75
    # student points 0, 1, 3: distances 1, 3, 2;        mu = 2*(1+3+2)/6 = 2   -> 0.5, 1.5, 1.0
    # |diff| 0.25, 0, 0.25, each twice in the 3x3 matrix; huber(0.25) = 0.5 * 0.25^2 = 0.03125
    # mean over 9 entries = 4 * 0.03125 / 9 = 0.0138889
    t = torch.tensor([[0.0], [1.0], [2.0]])
    s = torch.tensor([[0.0], [1.0], [3.0]])
    assert float(RKDLoss.distance_loss(s, t)) == pytest.approx(0.125 / 9, abs=1e-6)


def test_rkd_angle_hand_value_and_weights():
    # teacher (0,0), (1,0), (0,1); student (0,0), (1,0), (1,1). For each anchor j the cosine between
    # the unit vectors to the two other points:
    #   anchor 0: teacher (1,0).(0,1) = 0,           student (1,0).(1,1)/sqrt2 = 0.7071
    #   anchor 1: teacher (-1,0).(-1,1)/sqrt2 = 0.7071, student (-1,0).(0,1) = 0
    #   anchor 2: teacher (0,-1).(1,-1)/sqrt2 = 0.7071, student (-1,-1)/sqrt2.(0,-1) = 0.7071
    # i = k entries are 1 for both, i = j or k = j are 0 for both. So 4 of the 27 entries differ by
    # 0.7071: huber = 0.5 * 0.5 = 0.25 each -> mean = 1 / 27 = 0.037037
    t = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    s = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    assert float(RKDLoss.angle_loss(s, t)) == pytest.approx(1 / 27, abs=1e-6)
    loss, terms = RKDLoss(distance_weight=3.0, angle_weight=2.0)(s, t)
    assert loss.item() == pytest.approx(3.0 * terms["distance"] + 2.0 * (1 / 27), abs=1e-6)


def test_rkd_is_invariant_to_scale_and_width():
    # Relations only: a scaled (x10) and zero-padded (wider) copy of the teacher has loss 0.
    t = torch.randn(6, 4)
    s = torch.cat([10 * t, torch.zeros(6, 3)], dim=1)
    loss, _ = RKDLoss()(s, t)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
