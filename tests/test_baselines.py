from pathlib import Path

import numpy as np
import pytest

from mobilekd.baselines import Blend, CoOccurrence, MostPopular, RepeatRule, history_frequency
from mobilekd.data import Split, online_retail
from mobilekd.metrics import ranking_metrics

# The training split of the hand-made customers in tests/data/test_online_retail.py (K = 3):
# invoice boundaries I2 <- [0, 3, 2] -> {2, 4} and I6 <- [0, 3, 4] -> {2}.
TRAIN = Split({"items": np.array([[0, 3, 2], [0, 3, 4]])}, np.array([[2, 4], [2, -1]]))
EVAL = Split({"items": np.array([[2, 2, 4], [4, 3, 1]]), "long_items": np.array([[3, 2, 2, 4], [2, 4, 3, 1]])},
             np.array([[3], [4]]))


def test_most_popular():
    s = MostPopular(5).fit(TRAIN).scores(EVAL)
    # training invoices holding id 2: both; id 4: one
    assert s.tolist() == [[0, 0, 2, 0, 1]] * 2


def test_repeat_rule_by_hand():
    s = RepeatRule(5).fit(TRAIN).scores(EVAL)
    # tie-break = popularity / (1 + 2) = [0, 0, 2/3, 0, 1/3]
    # [2, 2, 4]: counts [0, 0, 2, 0, 1] -> [0, 0, 2.667, 0, 1.333]
    # [4, 3, 1]: counts (1 = unknown never counts) [0, 0, 0, 1, 1] -> [0, 0, .667, 1, 1.333]
    np.testing.assert_allclose(s, [[0, 0, 2 + 2 / 3, 0, 1 + 1 / 3], [0, 0, 2 / 3, 1, 1 + 1 / 3]], rtol=1e-6)
    # window 1: only the last line counts: [4] and [1] (unknown)
    s1 = RepeatRule(5, window=1).fit(TRAIN).scores(EVAL)
    np.testing.assert_allclose(s1, [[0, 0, 2 / 3, 0, 1 + 1 / 3], [0, 0, 2 / 3, 0, 1 / 3]], rtol=1e-6)
    # row 2's relevant 4 is ranked first by the rule -> hit@1; row 1's 3 is not in its history -> miss
    assert ranking_metrics(s, EVAL.targets, ks=(1,), exclude_ids=(0, 1))["hitrate@1"] == 0.5


def test_history_frequency_reads_long_items():
    s = history_frequency(5).fit(TRAIN).scores(EVAL)
    # [3, 2, 2, 4]: counts [0, 0, 2, 1, 1]; [2, 4, 3, 1]: [0, 0, 1, 1, 1]
    np.testing.assert_allclose(s - np.array([0, 0, 2 / 3, 0, 1 / 3]), [[0, 0, 2, 1, 1], [0, 0, 1, 1, 1]], atol=1e-6)


def test_cooccurrence_history_to_next_invoice():
    s = CoOccurrence(5, window=2).fit(TRAIN).scores(EVAL)
    # pairs (a in the last 2 history lines, b in the next invoice), each history item once:
    # [3, 2] -> {2, 4}: (3,2) (3,4) (2,2) (2,4); [3, 4] -> {2}: (3,2) (4,2)
    # C row 2 = [0,0,1,0,1], row 3 = [0,0,2,0,1], row 4 = [0,0,1,0,0]
    # [.., 2, 4]: row2 + row4 = [0,0,2,0,1]; [.., 3, 1]: row3 = [0,0,2,0,1]; + tie-break [0,0,2/3,0,1/3]
    np.testing.assert_allclose(s, [[0, 0, 2 + 2 / 3, 0, 1 + 1 / 3]] * 2, rtol=1e-6)


def test_blend_tuned_on_validation():
    pop = MostPopular(5).fit(TRAIN)
    blend = Blend({"repeat": RepeatRule(5).fit(TRAIN), "popular": pop})
    blend.tune(EVAL, lambda s: ranking_metrics(s, EVAL.targets, ks=(1,), exclude_ids=(0, 1))["ndcg@1"], grid=(0.0, 10.0))
    # popularity alone ranks 2 first (never relevant); the repeat part must dominate -> weight 0
    assert blend.weights == {"repeat": 1.0, "popular": 0.0} and blend.best_val == 0.5


def test_on_real_slice():
    data = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
    if not (data / "online-retail").is_dir():
        pytest.skip("shared datasets not found")
    ds = online_retail.load(data, seed=0, max_customers=400)
    n = ds.info.num_outputs
    pop = ranking_metrics(MostPopular(n).fit(ds.train).scores(ds.test), ds.test.targets, exclude_ids=ds.info.postprocessing["exclude_ids"])
    rep = ranking_metrics(RepeatRule(n).fit(ds.train).scores(ds.test), ds.test.targets, exclude_ids=ds.info.postprocessing["exclude_ids"])
    assert 0.0 < pop["ndcg@10"] < rep["ndcg@10"]  # personal history beats global popularity
