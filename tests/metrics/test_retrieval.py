"""Known-item retrieval metrics on a catalogue of three items, worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from mobilekd.data.queries import TYPO
from mobilekd.errors import DataError
from mobilekd.metrics.retrieval import retrieval_metrics

# rows: 3 queries, then the catalogue (items 2, 0, 1: out of order on purpose)
OUT = np.array([[1.0, 0.0, 0.0],     # query for item 0 (seen): nearest item 0 -> rank 1
                [0.9, 0.1, 0.0],     # query for item 1 (seen): item 0 scores 0.9 > item 1's 0.1 -> rank 2
                [0.0, 0.0, 1.0],     # query for item 2 (unseen, typo): rank 1
                [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
TARGETS = np.array([[0, 1, 1, 0], [1, 1, 1, 0], [2, 1, 0, TYPO],
                    [2, 0, 0, 0], [0, 0, 1, 0], [1, 0, 1, 0]])


def test_recall_and_mrr_by_hand():
    m = retrieval_metrics(OUT, TARGETS)
    assert m["recall@1"] == pytest.approx(2 / 3)
    assert m["recall@10"] == pytest.approx(1.0)
    assert m["mrr@10"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert m["recall@1_seen"] == pytest.approx(0.5) and m["mrr@10_seen"] == pytest.approx(0.75)
    assert m["recall@1_unseen"] == pytest.approx(1.0) and m["recall@1_typo"] == pytest.approx(1.0)
    assert "recall@1_reorder" not in m  # no reordered query


def test_overlap_and_cosine_with_the_teacher():
    same = retrieval_metrics(OUT, TARGETS, reference=OUT.copy())
    assert same["overlap@10"] == pytest.approx(0.3)  # only 3 items: top-10 holds all 3, |∩| = 3 -> 3/10
    assert same["cosine_to_teacher"] == pytest.approx(1.0)
    flipped = OUT.copy()
    flipped[0] = [0.0, 1.0, 0.0]  # row 0 orthogonal to the model's row: cosine 0 there
    m = retrieval_metrics(OUT, TARGETS, reference=flipped)
    assert m["cosine_to_teacher"] == pytest.approx(5 / 6)


def test_a_split_without_the_whole_catalogue_is_refused():
    with pytest.raises(DataError, match="every catalogue item"):
        retrieval_metrics(OUT[:4], TARGETS[:4])
