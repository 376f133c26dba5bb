"""The catalogue split: seen/unseen items by seed, training on seen items only, eval over all."""

from __future__ import annotations

import numpy as np

from mobilekd.data.catalogue import CATALOGUE_ROW, ITEM, QUERY_ROW, ROLE, SEEN, CatalogueOptions, build
from mobilekd.data.wordpiece import SPECIALS

WORDS = ["red", "blue", "bag", "lunch", "heart", "box", "tin", "cake", "set", "pink"]
CODES = [f"{10000 + i}" for i in range(20)]
TEXTS = [f"{WORDS[i % 10]} {WORDS[(i * 3 + 1) % 10]} {WORDS[(i * 7 + 2) % 10]}".upper() for i in range(20)]
FULL = [*SPECIALS, "[MASK]", *WORDS] + [c for ch in "abcdefghijklmnopqrstuvwxyz0123456789" for c in (ch, "##" + ch)]


def make(seed: int):
    opts = CatalogueOptions(max_len=8, unseen_fraction=0.2, train_queries=3, val_queries=1, test_queries=2)
    return build(CODES, TEXTS, FULL, seed=seed, opts=opts)


def test_seen_unseen_split_and_what_each_split_holds():
    ds = make(0)
    seen = np.array([it["seen"] for it in ds.extras["catalogue"]])
    assert seen.sum() == 16 and (~seen).sum() == 4  # 20% of 20 items held out
    tr = ds.train.targets
    assert set(tr[:, ITEM]) == set(np.flatnonzero(seen))  # training texts: seen items only
    assert (tr[:, SEEN] == 1).all()
    assert (tr[:, ROLE] == CATALOGUE_ROW).sum() == 16 and (tr[:, ROLE] == QUERY_ROW).sum() == 16 * 3
    for split, per_item in ((ds.val, 1), (ds.test, 2)):
        t = split.targets
        queries, cat = t[t[:, ROLE] == QUERY_ROW], t[t[:, ROLE] == CATALOGUE_ROW]
        assert len(queries) == 20 * per_item and sorted(cat[:, ITEM]) == list(range(20))
        assert (t[: len(queries), ROLE] == QUERY_ROW).all()  # queries first
        assert ((queries[:, SEEN] == 1) == seen[queries[:, ITEM]]).all()
    assert ds.info.task == "retrieval" and [s.name for s in ds.info.inputs] == ["input_ids", "attention_mask"]


def test_the_split_follows_the_seed():
    a, b, c = make(0), make(0), make(1)
    seen = lambda ds: [it["seen"] for it in ds.extras["catalogue"]]  # noqa: E731
    assert seen(a) == seen(b) and seen(a) != seen(c)
    assert np.array_equal(a.train.inputs["input_ids"], b.train.inputs["input_ids"])
    # evaluation queries use eval_seed, not the pipeline seed: the same texts for every seed
    qa = [s["query"] for s in a.extras["query_samples"]["test"]]
    qc = [s["query"] for s in c.extras["query_samples"]["test"]]
    assert qa == qc
