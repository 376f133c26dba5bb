from pathlib import Path

import numpy as np
import pytest

from mobilekd.baselines import CoOccurrence, MostPopular
from mobilekd.data import Split, online_retail
from mobilekd.metrics import ranking_metrics

# The training split of the hand-made customers in tests/data/test_online_retail.py (K = 3).
TRAIN = Split({"items": np.array([[0, 0, 3], [0, 3, 2], [3, 2, 2], [0, 0, 3], [0, 3, 4]])},
              np.array([[2], [2], [4], [4], [2]]))
EVAL = Split({"items": np.array([[2, 2, 4], [4, 3, 1]])}, np.array([[3], [4]]))


def test_most_popular():
    s = MostPopular(5).fit(TRAIN).scores(EVAL)
    # targets: id 2 three times, id 4 twice
    assert s.tolist() == [[0, 0, 3, 0, 2]] * 2


def test_cooccurrence_window_1():
    s = CoOccurrence(5, window=1).fit(TRAIN).scores(EVAL)
    # (last history item, target) pairs: (3,2) (2,2) (2,4) (3,4) (4,2); mirrored unless equal:
    # C row 2 = [0,0,1,1,2], row 3 = [0,0,1,0,1], row 4 = [0,0,2,1,0].
    # Tie-break = popularity / (1 + 3) = [0, 0, .75, 0, .5].
    # [2,2,4]: 2*row2 + row4 = [0,0,4,3,4] -> [0,0,4.75,3,4.5]
    # [4,3,1]: row4 + row3 (1 = unknown ignored) = [0,0,3,1,1] -> [0,0,3.75,1,1.5]
    np.testing.assert_allclose(s, [[0, 0, 4.75, 3, 4.5], [0, 0, 3.75, 1, 1.5]])
    m = ranking_metrics(s, EVAL.targets, ks=(1,))
    # row 1 ranks 2 first (relevant 3) -> miss; row 2 ranks 2 first (relevant 4) -> miss
    assert m["hitrate@1"] == 0.0


def test_on_real_slice():
    data = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
    if not (data / "online-retail").is_dir():
        pytest.skip("shared datasets not found")
    ds = online_retail.load(data, seed=0, max_customers=400)
    n = ds.info.num_outputs
    pop = ranking_metrics(MostPopular(n).fit(ds.train).scores(ds.test), ds.test.targets)
    co = ranking_metrics(CoOccurrence(n).fit(ds.train).scores(ds.test), ds.test.targets)
    assert 0.0 < pop["recall@20"] < co["recall@20"]  # personal history beats global popularity
