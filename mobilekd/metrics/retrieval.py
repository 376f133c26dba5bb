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


def top_items(queries: np.ndarray, index: np.ndarray, k: int) -> np.ndarray:
    """Top-k item indices (N, k) of each query, best first (stable: ties go to the lower index)."""
    tops = []
    for i in range(0, len(queries), CHUNK):
        s = queries[i : i + CHUNK] @ index.T
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]
        tops.append(order)
    return np.concatenate(tops) if tops else np.zeros((0, k), dtype=np.int64)


def ranks(queries: np.ndarray, index: np.ndarray, items: np.ndarray) -> np.ndarray:
    """1-based rank of each query's own item; a tie counts against it only from lower indices."""
    out = np.empty(len(queries), dtype=np.int64)
    for i in range(0, len(queries), CHUNK):
        s = queries[i : i + CHUNK] @ index.T
        own = s[np.arange(len(s)), items[i : i + CHUNK]][:, None]
        col = np.arange(index.shape[0])[None, :]
        better = (s > own) | ((s == own) & (col < items[i : i + CHUNK, None]))
        out[i : i + CHUNK] = better.sum(axis=1) + 1
    return out


def retrieval_metrics(outputs: np.ndarray, targets: np.ndarray, reference: np.ndarray | None = None) -> dict[str, float]:
    index, is_query = index_of(outputs, targets)
    q = _unit(outputs[is_query])
    t = targets[is_query]
    r = ranks(q, index, t[:, ITEM])
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
    if reference is not None and len(reference) == len(outputs):
        t_index, _ = index_of(reference, targets)
        tq = _unit(reference[is_query])
        mine = top_items(q, index, 10)
        theirs = top_items(tq, t_index, 10)
        result["overlap@10"] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(mine, theirs)]))
        a, b = _unit(outputs), _unit(reference)
        if a.shape == b.shape:
            result["cosine_to_teacher"] = float((a * b).sum(axis=1).mean())
    return result
