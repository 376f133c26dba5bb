"""Full-catalogue ranking metrics for next-purchase recommendation.

Each row ranks every item; its relevant set is the distinct items of one held-out invoice
(targets padded with -1). Ids 0 (padding) and 1 (unknown) are never recommended, so their scores
are set to -inf before ranking. Definitions, with rel the relevant set and top_k the k best ids:

    Recall@k  = |top_k ∩ rel| / |rel|            (the common definition; it cannot reach 1 when
                                                  |rel| > k, which is why NDCG is reported too)
    HitRate@k = 1 if |top_k ∩ rel| > 0 else 0
    NDCG@k    = DCG@k / IDCG@k, DCG@k = Σ_{i<k, top_k[i] ∈ rel} 1 / log2(i + 2),
                IDCG@k = Σ_{i < min(k, |rel|)} 1 / log2(i + 2)   (binary relevance)

Each is averaged over rows. Ties are broken by the lower item id (a stable sort), so results are
deterministic.
"""

from __future__ import annotations

import numpy as np

EXCLUDED_IDS = (0, 1)
CHUNK = 1024


def ranking_metrics(scores: np.ndarray, targets: np.ndarray, ks: tuple[int, ...] = (10, 20)) -> dict[str, float]:
    """{"recall@k", "ndcg@k", "hitrate@k"} for every k in ks, averaged over the rows.

    scores: (N, num_items) float; targets: (N, R) int relevant ids padded with -1, each row with at
    least one relevant id (a row with none has no defined recall: that is a caller's bug).
    """
    scores = np.asarray(scores)
    targets = np.asarray(targets)
    if targets.ndim == 1:
        targets = targets[:, None]
    if scores.ndim != 2 or targets.ndim != 2 or scores.shape[0] != targets.shape[0]:
        raise ValueError(f"scores {scores.shape} and targets {targets.shape}: expected (N, items) and (N, R)")
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    n, num_items = scores.shape
    kmax = min(max(ks), num_items)
    rel_mask = targets >= 0
    n_rel = rel_mask.sum(axis=1)
    if (n_rel == 0).any():
        raise ValueError(f"{int((n_rel == 0).sum())} rows have no relevant item")
    discounts = 1.0 / np.log2(np.arange(kmax) + 2.0)
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg", "hitrate")}
    for a in range(0, n, CHUNK):
        s = scores[a : a + CHUNK].astype(np.float64, copy=True)
        s[:, [i for i in EXCLUDED_IDS if i < num_items]] = -np.inf
        top = np.argsort(-s, axis=1, kind="stable")[:, :kmax]  # (b, kmax)
        t = targets[a : a + CHUNK]
        # hit[i, j]: the j-th recommendation of row i is relevant. Relevant ids are distinct.
        hit = (top[:, :, None] == np.where(rel_mask[a : a + CHUNK], t, -2)[:, None, :]).any(axis=2)
        nr = n_rel[a : a + CHUNK]
        for k in ks:
            kk = min(k, kmax)
            h = hit[:, :kk]
            hits = h.sum(axis=1)
            idcg = np.cumsum(discounts)[np.minimum(nr, kk) - 1]
            sums[f"recall@{k}"] += float((hits / nr).sum())
            sums[f"hitrate@{k}"] += float((hits > 0).sum())
            sums[f"ndcg@{k}"] += float(((h * discounts[:kk]).sum(axis=1) / idcg).sum())
    return {key: value / n for key, value in sums.items()}
