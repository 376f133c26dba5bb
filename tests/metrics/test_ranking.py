import math

import numpy as np
import pytest

from mobilekd.metrics import ranking_metrics

L2, L3, L4 = 1.0, 1 / math.log2(3), 1 / math.log2(4)  # discounts of ranks 1, 2, 3


def test_hand_made_customers():
    scores = np.array([
        [9, 8, 0.1, 0.5, 0.3, 0.2],  # ids 0, 1 excluded -> ranking 3, 4, 5, 2
        [0, 0, 1, 2, 3, 4],  # ranking 5, 4, 3, 2
        [0, 0, 4, 3, 2, 1],  # ranking 2, 3, 4, 5
        [0, 0, 0, 0, 0, 0],  # ties by lower id: 2, 3, 4, 5
    ])
    targets = np.array([[4, 2, -1], [5, -1, -1], [5, 4, 3], [5, -1, -1]])
    m = ranking_metrics(scores, targets, ks=(2, 3))
    # k=2. a: top [3, 4], one hit of 2 -> recall 1/2, DCG L3, IDCG L2 + L3.
    #      b: top [5, 4], hit at rank 1 -> recall 1, ndcg 1.
    #      c: top [2, 3], one hit of 3 -> recall 1/3, DCG L3, IDCG (min(2, 3) = 2) L2 + L3.
    #      d: top [2, 3], no hit.
    assert m["recall@2"] == pytest.approx((1 / 2 + 1 + 1 / 3 + 0) / 4)  # 0.4583
    assert m["hitrate@2"] == pytest.approx(3 / 4)
    assert m["ndcg@2"] == pytest.approx((L3 / (L2 + L3) + 1 + L3 / (L2 + L3)) / 4)  # 0.4434
    # k=3. a: top [3, 4, 5] still one hit; c: top [2, 3, 4] hits at ranks 2, 3 -> recall 2/3,
    #      DCG L3 + L4, IDCG L2 + L3 + L4; d: top [2, 3, 4], no hit.
    assert m["recall@3"] == pytest.approx((1 / 2 + 1 + 2 / 3 + 0) / 4)  # 0.5417
    assert m["ndcg@3"] == pytest.approx((L3 / (L2 + L3) + 1 + (L3 + L4) / (L2 + L3 + L4)) / 4)  # 0.4794
    assert m["hitrate@3"] == pytest.approx(3 / 4)


def test_default_keys_and_bad_rows():
    rng = np.random.default_rng(0)
    m = ranking_metrics(rng.normal(size=(5, 40)), np.array([[2], [3], [4], [5], [6]]))
    assert {"recall@10", "recall@20", "ndcg@10", "hitrate@10"} <= set(m)
    assert all(0.0 <= v <= 1.0 for v in m.values())
    with pytest.raises(ValueError, match="no relevant"):
        ranking_metrics(np.zeros((1, 5)), np.array([[-1]]))
