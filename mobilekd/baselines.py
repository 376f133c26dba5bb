"""Non-learned recommenders that any distilled model must beat to be worth shipping.

Each is fitted on the training `Split` of the next-invoice task (inputs["items"] (N, K) histories,
targets (N, R) the next invoice's items padded with -1) and returns a (rows, num_items) float32
score matrix for any split, so the benchmark ranks them with exactly the metrics used for the
models (mobilekd.evaluate.metrics). Every score adds popularity / (1 + max popularity) < 1, which
only breaks ties between equal counts (and ranks rows whose history says nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from mobilekd.data import Split

PAD, UNK = 0, 1


def history_counts(history: np.ndarray, num_items: int, window: int | None = None,
                   decay: float | None = None) -> sp.csr_matrix:
    """(rows, items) sparse counts of each item in the last `window` history slots (all if None);
    with `decay`, the slot i lines back weighs decay**i instead of 1. Padding/unknown never count."""
    h = history if window is None else history[:, -window:]
    r, c = np.nonzero(h > UNK)
    w = np.ones(len(r), np.float32) if decay is None else (decay ** (h.shape[1] - 1 - c)).astype(np.float32)
    return sp.csr_matrix((w, (r, h[r, c])), shape=(len(h), num_items))


class MostPopular:
    """Score = how many training invoices held the item; the same ranking for every customer."""

    def __init__(self, num_items: int) -> None:
        self.num_items = num_items
        self.counts = np.zeros(num_items, dtype=np.float32)

    def fit(self, train: Split) -> "MostPopular":
        y = train.targets.reshape(-1)
        self.counts = np.bincount(y[y >= 0], minlength=self.num_items).astype(np.float32)
        return self

    def tie_break(self) -> np.ndarray:
        return self.counts / (1.0 + self.counts.max())

    def scores(self, split: Split) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(split), self.num_items)).copy()


class RepeatRule:
    """"Re-buy your recent items": score(b) = count of b in the last `window` lines of the
    history (`key`, default the model's own K), ties by popularity. No learned parameters."""

    def __init__(self, num_items: int, *, window: int | None = None, key: str = "items") -> None:
        self.num_items, self.window, self.key = num_items, window, key
        self.popular = MostPopular(num_items)

    def fit(self, train: Split) -> "RepeatRule":
        self.popular.fit(train)
        return self

    def scores(self, split: Split) -> np.ndarray:
        counts = history_counts(split.inputs[self.key], self.num_items, self.window)
        return np.asarray(counts.todense(), dtype=np.float32) + self.popular.tie_break()


def history_frequency(num_items: int) -> RepeatRule:
    """The customer's full-history frequency: the repeat rule over `long_items` (the loader's
    `long_history` option, e.g. 2,000 lines: every line of nearly every customer)."""
    return RepeatRule(num_items, key="long_items")


class CoOccurrence:
    """Item-to-next-invoice: C[a, b] counts training boundaries where a was in the last `window`
    history lines and b in the next invoice. score(history, b) = Σ_{a in last window} C[a, b],
    ties by popularity. Repeats count too (a == b): that is most of its strength on this data,
    which the `_new` metrics (history items removed) take away."""

    def __init__(self, num_items: int, *, window: int = 10) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.num_items = num_items
        self.window = window
        self.matrix = sp.csr_matrix((num_items, num_items), dtype=np.float32)
        self.popular = MostPopular(num_items)

    def fit(self, train: Split) -> "CoOccurrence":
        hist = history_counts(train.inputs["items"], self.num_items, self.window)
        hist.data[:] = 1.0  # each history item once per boundary
        t = train.targets
        r, c = np.nonzero(t >= 0)
        nxt = sp.csr_matrix((np.ones(len(r), np.float32), (r, t[r, c])), shape=(len(t), self.num_items))
        self.matrix = (hist.T @ nxt).tocsr()
        self.popular.fit(train)
        return self

    def scores(self, split: Split) -> np.ndarray:
        bag = history_counts(split.inputs["items"], self.num_items, self.window)
        bag.data[:] = 1.0
        return np.asarray((bag @ self.matrix).todense(), dtype=np.float32) + self.popular.tie_break()


def _row_normalised(x: np.ndarray) -> np.ndarray:
    """Each row divided by its largest value (rows of zeros stay zero): comparable scales to blend."""
    top = x.max(axis=1, keepdims=True)
    return x / np.where(top > 0, top, 1.0)


class Blend:
    """score = Σ_m w_m * row-normalised score of base m (tie-break parts removed), weights chosen
    by `tune` on validation NDCG@10 from a grid; the baseline a learned model must beat."""

    def __init__(self, bases: dict[str, object], weights: dict[str, float] | None = None) -> None:
        self.bases = bases
        self.weights = weights or {name: 1.0 for name in bases}
        self.popular = next((b.popular for b in bases.values() if hasattr(b, "popular")), None)

    def _parts(self, split: Split) -> dict[str, np.ndarray]:
        parts = {}
        for name, base in self.bases.items():
            s = base.scores(split)
            if getattr(base, "popular", None) is not None:
                s = s - base.popular.tie_break()
            parts[name] = _row_normalised(s)
        return parts

    def _combine(self, parts: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
        out = sum(weights[n] * p for n, p in parts.items())
        tb = self.popular.tie_break() * 1e-3 if self.popular is not None else 0.0
        return (out + tb).astype(np.float32)

    def scores(self, split: Split) -> np.ndarray:
        return self._combine(self._parts(split), self.weights)

    def tune(self, val: Split, score_fn, grid: Sequence[float] = (0.0, 0.1, 0.3, 1.0, 3.0)) -> "Blend":
        """Pick the weights (the first base's fixed at 1) maximising score_fn(scores) on `val`."""
        import itertools

        parts = self._parts(val)
        names = list(self.bases)
        best, best_w = -np.inf, self.weights
        for combo in itertools.product(grid, repeat=len(names) - 1):
            w = {names[0]: 1.0, **dict(zip(names[1:], combo))}
            value = score_fn(self._combine(parts, w))
            if value > best:
                best, best_w = value, w
        self.weights, self.best_val = best_w, float(best)
        return self
