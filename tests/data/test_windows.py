"""Training windows (mobilekd.data.windows): one customer's stretch of lines, every invoice boundary
inside it an example whose history is a slice of the window's one sequence."""

import numpy as np
import pytest

from mobilekd.data import windows
from mobilekd.data import online_retail as ore

from tests.data.test_online_retail import _lines


def test_cut_by_hand():
    # customer X: lines 0-7, ids 5..12; customer Y: lines 8-10, ids 20, 21, 22.
    ids = np.array([5, 6, 7, 8, 9, 10, 11, 12, 20, 21, 22])
    customer_first = np.array([0] * 8 + [8] * 3)
    # examples (invoice starts) at lines 2, 3 and 5 of X and line 9 of Y; K = 2, 4 lines per window:
    # X's windows are lines [0, 4) and [4, 8), Y's [8, 12).
    w = windows.cut(ids, customer_first, np.array([2, 3, 5, 9]), history=2, length=4)
    assert w.rows.tolist() == [[0, 1], [2, -1], [3, -1]]
    assert w.offsets.tolist() == [[2, 3], [1, 0], [1, 0]]
    # each sequence: the 2 lines before the window, then its 4 lines; PAD outside the customer
    assert w.seq.tolist() == [[0, 0, 5, 6, 7, 8],  # lines -2..3
                              [7, 8, 9, 10, 11, 12],  # lines 2..7
                              [0, 0, 20, 21, 22, 0]]  # lines 6, 7 are X's, 11 does not exist
    # histories: the 2 lines before each example's first line
    assert w.histories().tolist() == [[5, 6], [6, 7], [8, 9], [0, 20]]


def test_cut_rejects_bad_input():
    ids, first = np.arange(4), np.zeros(4, np.int64)
    with pytest.raises(ValueError, match="at least 1 line"):
        windows.cut(ids, first, np.array([1]), history=2, length=0)
    with pytest.raises(ValueError, match="strictly increasing"):
        windows.cut(ids, first, np.array([2, 1]), history=2, length=4)


def test_loader_builds_training_examples_as_windows():
    """The hand-made customers of test_online_retail: ids 100 = I1 [3, 2], I2 [2, 4], I3 [3, 1] (val),
    I4 [4, 1] (test), lines 0-7; 200 = I5 [3, 4], I6 [2, 1], lines 8-11. Training examples I2
    (line 2) and I6 (line 10)."""
    opts = dict(history=3, min_count=2, long_history=5)
    by_rows = ore.build(_lines(), seed=0, opts=ore.OnlineRetailOptions(**opts, window=None))
    four = ore.build(_lines(), seed=0, opts=ore.OnlineRetailOptions(**opts, window=4))
    one_window = ore.build(_lines(), seed=0, opts=ore.OnlineRetailOptions(**opts, window=100))
    assert by_rows.train.windows is None
    # 4 lines per window: I2 in 100's window [0, 4), I6 in 200's window [8, 12): one example each
    assert four.train.windows.tolist() == [[0], [1]]
    # 100 lines per window: still one window per customer (a window never crosses customers)
    assert one_window.train.windows.tolist() == [[0], [1]]
    for ds in (four, one_window):  # the same examples whichever way they were built
        for name in ("items", "long_items"):
            assert ds.train.inputs[name].tolist() == by_rows.train.inputs[name].tolist()
        assert ds.train.targets.tolist() == by_rows.train.targets.tolist()
    assert four.train.inputs["long_items"].tolist() == [[0, 0, 0, 3, 2], [0, 0, 0, 3, 4]]
    assert four.extras["examples"]["train_windows"] == 2 and by_rows.extras["examples"]["train_windows"] is None
    # only training is drawn by window: validation and test are one example per customer anyway
    assert four.val.windows is None and four.test.windows is None
