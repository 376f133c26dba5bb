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
    m = ranking_metrics(scores, targets, ks=(2, 3), exclude_ids=(0, 1))
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
    m = ranking_metrics(rng.normal(size=(5, 40)), np.array([[2], [3], [4], [5], [6]]), exclude_ids=(0, 1))
    assert {"recall@10", "recall@20", "ndcg@10", "hitrate@10"} <= set(m)
    assert all(0.0 <= v <= 1.0 for v in m.values())
    with pytest.raises(ValueError, match="no relevant"):
        ranking_metrics(np.zeros((1, 5)), np.array([[-1]]), exclude_ids=(0, 1))


def test_new_and_repeat_split_by_hand():
    """Li et al. (TOIS 2023): repeat items scored in the full ranking, new items in the ranking with
    the history removed; each averaged over the rows that have such items."""
    scores = np.array([
        [0, 0, 5, 4, 3, 2, 1],  # full ranking 2, 3, 4, 5, 6
        [0, 0, 1, 2, 3, 4, 5],  # full ranking 6, 5, 4, 3, 2
    ], dtype=float)
    history = np.array([[0, 2, 4], [0, 0, 6]])  # padding 0 is not an item
    targets = np.array([[2, 5, -1], [3, -1, -1]])
    m = ranking_metrics(scores, targets, ks=(1, 2), history=history, exclude_ids=(0, 1))
    # Overall, k=1: row a top [2] hit (rel {2, 5}) -> recall 1/2, ndcg 1; row b top [6] miss.
    assert m["recall@1"] == pytest.approx(0.25) and m["ndcg@1"] == pytest.approx(0.5)
    # Repeat: only row a has a relevant item in its history ({2}); full ranking top [2, 3]:
    # hit at rank 1 -> recall@1 = 1, ndcg@2 = 1; row b is left out (rows_repeat = 1/2).
    assert m["recall@1_repeat"] == pytest.approx(1.0) and m["ndcg@2_repeat"] == pytest.approx(1.0)
    assert m["rows_repeat"] == pytest.approx(0.5)
    # New: a's new item {5}, ranking without 2 and 4 -> 3, 5, 6: hit at rank 2 -> recall@1 0,
    # recall@2 1, ndcg@2 = L3 / L2. b's new item {3}, ranking without 6 -> 5, 4, 3: no hit in 2.
    assert m["recall@1_new"] == pytest.approx(0.0)
    assert m["recall@2_new"] == pytest.approx((1 + 0) / 2)
    assert m["ndcg@2_new"] == pytest.approx((L3 / L2 + 0) / 2)
    assert m["hitrate@2_new"] == pytest.approx(0.5) and m["rows_new"] == pytest.approx(1.0)
    # Without history only the overall keys exist.
    assert not any(k.endswith(("_new", "_repeat")) for k in ranking_metrics(scores, targets, ks=(1,), exclude_ids=(0, 1)))


def test_exclude_ids_come_from_the_caller():
    scores = np.array([[9.0, 1.0, 0.5]])
    targets = np.array([[0]])
    # id 0 is relevant and, excluding nothing, ranked first
    assert ranking_metrics(scores, targets, ks=(1,), exclude_ids=())["recall@1"] == 1.0
    assert ranking_metrics(scores, targets, ks=(1,), exclude_ids=(0,))["recall@1"] == 0.0
