"""Sentence-embedding losses against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mobilekd.distill.embedding import EmbeddingRegression, InBatchContrastive, SimilarityKL

E = torch.eye(3)


def test_regression_cosine_and_mse_by_hand():
    loss = EmbeddingRegression(2, 2, cosine_weight=1.0, mse_weight=1.0)
    s = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    t = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # cosine: row 0 identical -> 0; row 1 at 45 degrees -> 1 - 1/sqrt(2) = 0.292893; mean 0.146447
    # mse: only entry (1, 1) differs, by 1 -> 1 / 4 entries = 0.25
    total, terms = loss(s, t)
    assert terms["cosine"] == pytest.approx((1 - 1 / math.sqrt(2)) / 2, abs=1e-6)
    assert terms["mse"] == pytest.approx(0.25, abs=1e-6)
    assert float(total) == pytest.approx(0.146447 + 0.25, abs=1e-5)


def test_regression_projects_when_widths_differ():
    loss = EmbeddingRegression(4, 2, cosine_weight=1.0)
    assert tuple(loss.projection.weight.shape) == (2, 4)
    with torch.no_grad():
        loss.projection.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
    # P s = first two coordinates = [0, 3] vs t = [0, 1]: same direction -> cosine loss 0
    total, terms = loss(torch.tensor([[0.0, 3.0, 5.0, 7.0]]), torch.tensor([[0.0, 1.0]]))
    assert terms["cosine"] == pytest.approx(0.0, abs=1e-6)


def test_similarity_kl_by_hand():
    # teacher: three orthogonal unit vectors -> every off-diagonal similarity 0 -> p_t rows [1/2, 1/2]
    # student: s0 = s1 = e0, s2 = e1 (tau = 1):
    #   row 0: sims to (1, 2) = (1, 0) -> p_s = (e/(e+1), 1/(e+1)) = (0.731059, 0.268941); row 1 the same
    #   row 2: sims to (0, 1) = (0, 0) -> p_s = (1/2, 1/2)
    #   KL row 0 = 0.5 ln(0.5/0.731059) + 0.5 ln(0.5/0.268941) = 0.5(-0.379885) + 0.5(0.620115) = 0.120115
    #   mean over rows = (0.120115 * 2 + 0) / 3 = 0.080077
    kl, terms = SimilarityKL(temperature=1.0)(torch.stack([E[0], E[0], E[1]]), E)
    assert float(kl) == pytest.approx(0.080077, abs=1e-5)
    scaled, _ = SimilarityKL(temperature=1.0)(3.0 * torch.stack([E[0], E[0], E[1]]), E)
    assert float(scaled) == pytest.approx(0.080077, abs=1e-5)  # on unit vectors: the length does not matter
    zero, _ = SimilarityKL(0.05)(E, E)
    assert float(zero) == pytest.approx(0.0, abs=1e-7)


def test_contrastive_by_hand():
    q = torch.stack([E[0], E[1]])
    # logits (tau 1) = identity: CE of row 0 = -ln(e / (e + 1)) = ln(1 + e^-1) = 0.313262
    loss, _ = InBatchContrastive(temperature=1.0)(q, q, torch.tensor([7, 9]))
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    # the same product twice: the other copy is not a negative -> softmax over one entry -> 0
    same, _ = InBatchContrastive(temperature=1.0)(q, q, torch.tensor([7, 7]))
    assert float(same) == pytest.approx(0.0, abs=1e-6)


def test_losses_refuse_bad_temperatures():
    with pytest.raises(ValueError, match="temperature"):
        SimilarityKL(0.0)
    with pytest.raises(ValueError, match="temperature"):
        InBatchContrastive(-1.0)
