"""Non-learned recommenders that any distilled model must beat to be worth shipping.

Both are fitted on a training `Split` of the next-purchase task (inputs["items"] (N, K) histories,
targets (N, 1) next items) and return a (rows, num_items) float32 score matrix for any split, so
the benchmark ranks them with exactly the metrics it uses for the models.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from mobilekd.data import Split

PAD, UNK = 0, 1


class MostPopular:
    """Score = how often the item was a training target; the same ranking for every customer."""

    def __init__(self, num_items: int) -> None:
        self.num_items = num_items
        self.counts = np.zeros(num_items, dtype=np.float32)

    def fit(self, train: Split) -> "MostPopular":
        y = train.targets.reshape(-1)
        self.counts = np.bincount(y[y >= 0], minlength=self.num_items).astype(np.float32)
        return self

    def scores(self, split: Split) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(split), self.num_items)).copy()


class CoOccurrence:
    """Item-to-item: C[a, b] counts training examples where b was bought within `window` items
    after a (symmetric). Within one invoice, neighbours are co-bought items; across invoices,
    consecutive purchases. Each training example is one prefix, so every pair at distance
    <= window in a customer's history is counted exactly once (a repeat a == a once, on the diagonal).

    score(history, b) = Σ_{a in history} C[a, b] + popularity(b) / (1 + max popularity), the
    second term only breaking ties (and ranking for histories whose items never co-occur).
    """

    def __init__(self, num_items: int, *, window: int = 5) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.num_items = num_items
        self.window = window
        self.matrix = sp.csr_matrix((num_items, num_items), dtype=np.float32)
        self.popular = MostPopular(num_items)

    def fit(self, train: Split) -> "CoOccurrence":
        hist = train.inputs["items"]
        target = train.targets.reshape(-1)
        a = hist[:, -self.window :]  # the last `window` items before the target
        b = np.broadcast_to(target[:, None], a.shape)
        ok = (a > UNK) & (b > UNK)
        mirror = ok & (a != b)  # a re-purchase (a == b) is counted once, on the diagonal
        rows = np.r_[a[ok], b[mirror]]
        cols = np.r_[b[ok], a[mirror]]
        data = np.ones(len(rows), dtype=np.float32)
        shape = (self.num_items, self.num_items)
        self.matrix = sp.csr_matrix((data, (rows, cols)), shape=shape)  # duplicates are summed
        self.popular.fit(train)
        return self

    def scores(self, split: Split) -> np.ndarray:
        hist = split.inputs["items"]
        r, c = np.nonzero(hist > UNK)
        bag = sp.csr_matrix((np.ones(len(r), dtype=np.float32), (r, hist[r, c])), shape=(len(split), self.num_items))
        out = np.asarray((bag @ self.matrix).todense(), dtype=np.float32)
        pop = self.popular.counts
        return out + pop / (1.0 + pop.max())
