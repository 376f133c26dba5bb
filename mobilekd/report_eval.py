"""What the report shows beyond summary.json's averages: where the shipped model errs. For a
classifier, its confusion matrix and per-class F1 on the test split; for a ranker, NDCG@10 and
Recall@10 by the length of the customer's history. Computed from the live run's models."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def shipped_model(ctx: Any) -> tuple[str, Any]:
    """The int8 program when quantization ran, else the newest float student."""
    q = ctx.result("quantize")
    if q is not None and getattr(q, "model", None) is not None:
        return "student_int8", ctx.load_model(q.model, "quantize")
    stage, _ = ctx.student_ref()
    return {"prune": "student_pruned", "distill": "student", "teacher": "teacher"}[stage], ctx.student()


def classification_breakdown(outputs: np.ndarray, targets: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """confusion[i][j]: test samples of true class i predicted as j; F1 per class
    (2PR/(P+R), 0 when the class is never predicted nor present)."""
    n = outputs.shape[1]
    pred = outputs.argmax(axis=1)
    cm = np.zeros((n, n), dtype=int)
    np.add.at(cm, (targets.astype(int), pred), 1)
    tp = np.diag(cm).astype(float)
    precision = np.divide(tp, cm.sum(axis=0), out=np.zeros(n), where=cm.sum(axis=0) > 0)
    recall = np.divide(tp, cm.sum(axis=1), out=np.zeros(n), where=cm.sum(axis=1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n), where=(precision + recall) > 0)
    names = [str(x) for x in (labels[:n] if len(labels) >= n else range(n))]
    return {"labels": names, "confusion": cm.tolist(),
            "per_class": [{"class": names[i], "support": int(cm[i].sum()), "precision": float(precision[i]),
                           "recall": float(recall[i]), "f1": float(f1[i])} for i in range(n)]}


BUCKETS = ((1, 2), (3, 5), (6, 10), (11, 20), (21, 10**9))


def ranking_by_history(scores: np.ndarray, targets: np.ndarray, history: np.ndarray, *,
                       exclude_ids: Sequence[int]) -> list[dict[str, Any]]:
    """NDCG@10 and Recall@10 per bucket of history length (the dataset's `exclude_ids`, padding
    and unknown, are not items of a history)."""
    from mobilekd.metrics.ranking import ranking_metrics

    lengths = (~np.isin(history, list(exclude_ids))).sum(axis=1)
    rows = []
    for lo, hi in BUCKETS:
        mask = (lengths >= lo) & (lengths <= hi)
        if mask.sum() == 0:
            continue
        m = ranking_metrics(scores[mask], targets[mask], ks=(10,), exclude_ids=exclude_ids)
        rows.append({"history": f"{lo}-{hi}" if hi < 10**9 else f"{lo}+", "samples": int(mask.sum()),
                     "ndcg@10": m["ndcg@10"], "recall@10": m["recall@10"]})
    return rows


def breakdown(ctx: Any) -> dict[str, Any] | None:
    """The shipped model's breakdown on the test split, or None when there is no model."""
    from mobilekd.evaluate import predict

    if ctx is None or ctx.result("data") is None or ctx.result("teacher") is None:
        return None
    ds = ctx.dataset()
    name, model = shipped_model(ctx)
    # The stored int8 program is exported for batch 1 (the phone's shape); float models take batches.
    outputs = predict(model, ds.test, ds.info, batch_size=1 if name == "student_int8" else 256)
    if ds.info.task == "classification":
        return {"model": name, **classification_breakdown(outputs, ds.test.targets, list(ds.info.labels))}
    first = ds.info.inputs[0].name
    exclude = [int(i) for i in (ds.info.postprocessing or {}).get("exclude_ids", ())]
    return {"model": name, "by_history": ranking_by_history(outputs, ds.test.targets, ds.test.inputs[first],
                                                           exclude_ids=exclude)}
