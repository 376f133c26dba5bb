"""Full-catalogue ranking metrics for next-purchase (next-basket) recommendation.

Each row ranks every item; its relevant set is the distinct items of one held-out invoice
(targets padded with -1). The ids in `exclude_ids` (the dataset's padding and unknown ids, from
`DatasetInfo.postprocessing["exclude_ids"]`) are never recommended: their scores are set to -inf
before ranking. Definitions, with rel the relevant set and top_k the k best ids:

    Recall@k  = |top_k ∩ rel| / |rel|            (the common definition; it cannot reach 1 when
                                                  |rel| > k, which is why NDCG is reported too)
    HitRate@k = 1 if |top_k ∩ rel| > 0 else 0
    NDCG@k    = DCG@k / IDCG@k, DCG@k = Σ_{i<k, top_k[i] ∈ rel} 1 / log2(i + 2),
                IDCG@k = Σ_{i < min(k, |rel|)} 1 / log2(i + 2)   (binary relevance)

Split by what a shopping guide is for (Li et al., "A Next Basket Recommendation Reality Check",
ACM TOIS 2023), when the rows' histories are given:

    *_repeat  rel = relevant items that are in the row's history; the full ranking is scored;
              averaged over the rows with at least one such item.
    *_new     rel = relevant items not in the history; the ranking with the history's items
              removed is scored (what a "discover" shelf shows); averaged over the rows with at
              least one new item.

`rows_new` / `rows_repeat` are the fractions of rows each split averages over. Each metric is a
mean over rows. Ties are broken by the lower item id (a stable sort), so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CHUNK = 512


def _top(scores: np.ndarray, kmax: int) -> np.ndarray:
    """(b, kmax) ids of the best scores, ties to the lower id."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :kmax]


def _add(sums: dict[str, float], suffix: str, top: np.ndarray, targets: np.ndarray, rel: np.ndarray,
         ks: Sequence[int], discounts: np.ndarray) -> int:
    """Add the rows of one chunk that have a relevant item to `sums`; returns how many they were."""
    nr = rel.sum(axis=1)
    rows = nr > 0
    if not rows.any():
        return 0
    top, targets, rel, nr = top[rows], targets[rows], rel[rows], nr[rows]
    # hit[i, j]: the j-th recommendation of row i is relevant. Relevant ids are distinct.
    hit = (top[:, :, None] == np.where(rel, targets, -2)[:, None, :]).any(axis=2)
    for k in ks:
        kk = min(k, top.shape[1])
        h = hit[:, :kk]
        hits = h.sum(axis=1)
        idcg = np.cumsum(discounts)[np.minimum(nr, kk) - 1]
        sums[f"recall@{k}{suffix}"] += float((hits / nr).sum())
        sums[f"hitrate@{k}{suffix}"] += float((hits > 0).sum())
        sums[f"ndcg@{k}{suffix}"] += float(((h * discounts[:kk]).sum(axis=1) / idcg).sum())
    return int(rows.sum())


def ranking_metrics(scores: np.ndarray, targets: np.ndarray, ks: tuple[int, ...] = (10, 20), *,
                    history: np.ndarray | None = None,
                    exclude_ids: Sequence[int]) -> dict[str, float]:
    """{"recall@k", "ndcg@k", "hitrate@k"} for every k in ks, averaged over the rows; with
    `history` (N, K) item ids (padding allowed), also each with the suffixes `_new` and `_repeat`
    plus `rows_new` and `rows_repeat` (see the module docstring).

    scores: (N, num_items) float; targets: (N, R) int relevant ids padded with -1, each row with at
    least one relevant id (a row with none has no defined recall: that is a caller's bug).
    """
    scores = np.asarray(scores)
    targets = np.asarray(targets)
    if targets.ndim == 1:
        targets = targets[:, None]
    if scores.ndim != 2 or targets.ndim != 2 or scores.shape[0] != targets.shape[0]:
        raise ValueError(f"scores {scores.shape} and targets {targets.shape}: expected (N, items) and (N, R)")
    if history is not None and (history.ndim != 2 or history.shape[0] != scores.shape[0]):
        raise ValueError(f"history {history.shape}: expected (N, K) with N = {scores.shape[0]}")
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    n, num_items = scores.shape
    kmax = min(max(ks), num_items)
    rel_mask = targets >= 0
    if (rel_mask.sum(axis=1) == 0).any():
        raise ValueError(f"{int((rel_mask.sum(axis=1) == 0).sum())} rows have no relevant item")
    excluded = [int(i) for i in exclude_ids if 0 <= int(i) < num_items]
    discounts = 1.0 / np.log2(np.arange(kmax) + 2.0)
    suffixes = ("", "_new", "_repeat") if history is not None else ("",)
    sums = {f"{m}@{k}{sfx}": 0.0 for sfx in suffixes for k in ks for m in ("recall", "ndcg", "hitrate")}
    counts = dict.fromkeys(suffixes, 0)
    for a in range(0, n, CHUNK):
        s = scores[a : a + CHUNK].astype(np.float64, copy=True)
        s[:, excluded] = -np.inf
        t, rel = targets[a : a + CHUNK], rel_mask[a : a + CHUNK]
        top = _top(s, kmax)
        counts[""] += _add(sums, "", top, t, rel, ks, discounts)
        if history is None:
            continue
        h = np.asarray(history[a : a + CHUNK])
        seen = (t[:, :, None] == h[:, None, :]).any(axis=2) & rel  # (b, R) relevant and bought before
        counts["_repeat"] += _add(sums, "_repeat", top, t, seen, ks, discounts)
        np.put_along_axis(s, np.clip(h, 0, num_items - 1), -np.inf, axis=1)  # the discover shelf
        counts["_new"] += _add(sums, "_new", _top(s, kmax), t, rel & ~seen, ks, discounts)
    out = {key: value / max(counts[next((x for x in suffixes[1:] if key.endswith(x)), "")], 1)
           for key, value in sums.items()}
    if history is not None:
        out["rows_new"] = counts["_new"] / n
        out["rows_repeat"] = counts["_repeat"] / n
    return out
