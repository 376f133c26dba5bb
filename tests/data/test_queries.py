"""The query generator: seeded determinism and each edit worked out by hand."""

from __future__ import annotations

import numpy as np

from mobilekd.data.queries import PLURAL, REORDER, SUBSET, TYPO, QueryOptions, change_number, make_queries, make_query, typo

DESCRIPTIONS = ["LUNCH BAG RED RETROSPOT", "JUMBO BAG PINK POLKADOT", "WHITE HANGING HEART T-LIGHT HOLDER", "DOORMAT"]


def test_same_seed_same_queries_other_seed_other_queries():
    a = make_queries(DESCRIPTIONS, 5, seed=3)
    b = make_queries(DESCRIPTIONS, 5, seed=3)
    c = make_queries(DESCRIPTIONS, 5, seed=4)
    assert a[0] == b[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
    assert a[0] != c[0]
    assert list(a[1]) == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5  # item-major


def test_number_changes_by_hand():
    assert [change_number(w) for w in ("bag", "bags", "box", "party", "day", "glass", "ox")] == \
        ["bags", "bag", "boxes", "parties", "days", "glasses", "ox"]


def test_typo_is_one_edit():
    rng = np.random.default_rng(0)
    for _ in range(50):
        t = typo("retrospot", rng)
        w = "retrospot"
        if len(t) == len(w):  # replace (<= 1 position differs) or adjacent swap (2 positions)
            assert sum(a != b for a, b in zip(t, w)) <= 2
        else:  # delete or insert: removing one letter of the longer gives the shorter
            long, short = (t, w) if len(t) > len(w) else (w, t)
            assert len(long) == len(short) + 1
            assert any(long[:i] + long[i + 1:] == short for i in range(len(long)))


def test_flags_describe_the_edits():
    never = QueryOptions(p_reorder=0.0, p_plural=0.0, p_typo=0.0)
    always = QueryOptions(p_reorder=1.0, p_plural=1.0, p_typo=1.0)
    rng = np.random.default_rng(1)
    for _ in range(30):
        q, f = make_query("LUNCH BAG RED RETROSPOT", rng, never)
        words = q.split()
        assert f & ~SUBSET == 0 and set(words) <= {"lunch", "bag", "red", "retrospot"}
        assert (f & SUBSET > 0) == (len(words) < 4) and len(words) >= 2
    q, f = make_query("DOORMAT", np.random.default_rng(0), always)
    assert f & SUBSET == 0 and f & REORDER == 0  # one word: nothing to drop or reorder
    assert f & PLURAL and f & TYPO
