"""A tiny synthetic next-item dataset shaped like online_retail (int64 "items" [1, K], a ranking
task, a `vocabulary` extra), so the bundle tests cover recommenders without the real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mobilekd.data import Dataset, DatasetInfo, Split
from mobilekd.specs import TensorSpec

NUM_ITEMS, K = 24, 5


def load(data_dir: Path | None = None, *, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)

    def split(n: int, relevant: int) -> Split:
        start = rng.integers(2, NUM_ITEMS, size=n)
        # Customers walk the catalogue in steps of 1: item i is followed by i + 1 (ids 0, 1 reserved).
        seq = 2 + (start[:, None] - 2 + np.arange(K + relevant)[None, :]) % (NUM_ITEMS - 2)
        return Split({"items": seq[:, :K].astype(np.int64)}, seq[:, K:].astype(np.int64))

    vocabulary = [{"id": i, "stock_code": f"SKU{i:03d}", "description": f"item {i}"} for i in range(NUM_ITEMS)]
    info = DatasetInfo(
        name="synthetic_shop", task="ranking",
        inputs=(TensorSpec(name="items", dtype="int64", shape=(1, K), low=0, high=NUM_ITEMS),),
        num_outputs=NUM_ITEMS, labels=tuple(v["stock_code"] for v in vocabulary),
        preprocessing={"input": "last K item ids, oldest first, left-padded with 0", "history": K, "padding_id": 0},
        postprocessing={"output": "scores over item ids; ignore ids 0 and 1", "exclude_ids": [0, 1]},
        license="CC0 (synthetic)", citation="",
    )
    return Dataset(info, split(400, 1), split(40, 2), split(40, 2), extras={"vocabulary": vocabulary})
