"""Known-item search metrics over the whole catalogue, from one model's own embeddings.

A retrieval split (mobilekd.data.catalogue) holds query rows and catalogue rows; the model embeds
both, so its index is the one it would ship. With q a query's embedding, c_j the catalogue's,
score_j = <q, c_j> (embeddings are L2-normalised, so this is the cosine) and rank r of the query's
own item (1 = best; ties broken by the lower item index):

    Recall@k = mean over queries of [r <= k]     (one relevant item: recall = hit rate)
    MRR@10   = mean over queries of 1/r if r <= 10 else 0

reported over all queries, over seen-item and unseen-item queries (`_seen`, `_unseen`), and over
queries with a typo and reordered ones (`_typo`, `_reorder`). Against a reference model's
embeddings of the same rows (the teacher's, in split.reference["teacher"]):

    overlap@10         = mean over queries of |top10(model) ∩ top10(teacher)| / 10
    cosine_to_teacher  = mean over every row of cos(model row, teacher row)   (same width only)
"""

from __future__ import annotations

import numpy as np

from mobilekd.data.catalogue import FLAGS, ITEM, QUERY_ROW, ROLE, SEEN
from mobilekd.data.queries import REORDER, TYPO
from mobilekd.errors import DataError

CHUNK = 1024


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def index_of(outputs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(catalogue embeddings in item order, query row mask)."""
    cat = targets[:, ROLE] != QUERY_ROW
    items = targets[cat, ITEM]
    if not cat.any() or not np.array_equal(np.sort(items), np.arange(len(items))):
        raise DataError("retrieval metrics: the split must hold every catalogue item once (ROLE 0 rows 0..M-1); "
                        f"got {int(cat.sum())} catalogue rows")
    index = np.empty((len(items), _unit(outputs[:1]).shape[1]), dtype=np.float32)
    index[items] = _unit(outputs[cat])
    return index, ~cat


def top_items(scores: np.ndarray, k: int) -> np.ndarray:
    """Top-k item indices (N, k) of each row of a score matrix, best first (ties: lower index)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    cand = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -cand), axis=1)  # by score, then by index
    return np.take_along_axis(part, order, axis=1)


def ranks(scores: np.ndarray, items: np.ndarray) -> np.ndarray:
    """1-based rank of each row's own item; a tie counts against it only from lower indices."""
    own = scores[np.arange(len(scores)), items][:, None]
    col = np.arange(scores.shape[1])[None, :]
    return ((scores > own) | ((scores == own) & (col < items[:, None]))).sum(axis=1) + 1


def rank_metrics(r: np.ndarray, query_targets: np.ndarray) -> dict[str, float]:
    """Recall@1/10 and MRR@10 from the ranks, overall and per query group (module docstring)."""
    t = query_targets
    result: dict[str, float] = {}
    groups = {"": np.ones(len(t), dtype=bool), "_seen": t[:, SEEN] == 1, "_unseen": t[:, SEEN] == 0,
              "_typo": (t[:, FLAGS] & TYPO) > 0, "_reorder": (t[:, FLAGS] & REORDER) > 0}
    for suffix, g in groups.items():
        if not g.any():
            continue
        rg = r[g]
        result[f"recall@1{suffix}"] = float((rg <= 1).mean())
        result[f"recall@10{suffix}"] = float((rg <= 10).mean())
        result[f"mrr@10{suffix}"] = float(np.where(rg <= 10, 1.0 / rg, 0.0).mean())
    return result


def retrieval_metrics(outputs: np.ndarray, targets: np.ndarray, reference: np.ndarray | None = None) -> dict[str, float]:
    index, is_query = index_of(outputs, targets)
    q = _unit(outputs[is_query])
    t = targets[is_query]
    r = np.concatenate([ranks(q[i : i + CHUNK] @ index.T, t[i : i + CHUNK, ITEM]) for i in range(0, len(q), CHUNK)])
    result = rank_metrics(r, t)
    if reference is not None and len(reference) == len(outputs):
        t_index, _ = index_of(reference, targets)
        tq = _unit(reference[is_query])
        overlap = []
        for i in range(0, len(q), CHUNK):
            mine = top_items(q[i : i + CHUNK] @ index.T, 10)
            theirs = top_items(tq[i : i + CHUNK] @ t_index.T, 10)
            overlap += [len(set(a) & set(b)) / 10 for a, b in zip(mine, theirs)]
        result["overlap@10"] = float(np.mean(overlap))
        a, b = _unit(outputs), _unit(reference)
        if a.shape == b.shape:
            result["cosine_to_teacher"] = float((a * b).sum(axis=1).mean())
    return result
