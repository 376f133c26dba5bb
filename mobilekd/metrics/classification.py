"""Classification metrics, computed by scikit-learn so that they match what users compute."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support


def classification_metrics(logits_or_pred: np.ndarray, targets: np.ndarray, *, labels: Sequence[str] = (),
                           reject: Sequence[str] = ()) -> dict[str, float]:
    """Accuracy and macro precision/recall/F1; with `labels` (class id -> name) also the recall of
    each class present in targets (`recall/<name>`); with `reject` (names of the not-a-command
    classes, e.g. keyword spotting's silence and unknown) the false-accept rate: the share of
    reject-class rows predicted as any other class (`false_accept_rate`, and per reject class
    `false_accept_rate/<name>`).

    logits_or_pred: (N, C) scores (argmax is the prediction) or (N,) predicted class ids.
    Macro averages are over the classes present in targets or predictions; a class never predicted
    has precision 0 (scikit-learn's zero_division=0), not an undefined value.
    """
    pred = np.asarray(logits_or_pred)
    if pred.ndim == 2:
        pred = pred.argmax(axis=1)
    y = np.asarray(targets).reshape(-1)
    if pred.ndim != 1 or pred.shape[0] != y.shape[0]:
        raise ValueError(f"predictions {np.asarray(logits_or_pred).shape} do not match targets {y.shape}")
    p, r, f, _ = precision_recall_fscore_support(y, pred, average="macro", zero_division=0)
    out = {
        "accuracy": float(accuracy_score(y, pred)),
        "precision_macro": float(p),
        "recall_macro": float(r),
        "f1_macro": float(f),
    }
    if labels:
        for c in np.unique(y):
            out[f"recall/{labels[int(c)]}"] = float(np.mean(pred[y == c] == c))
    if reject:
        ids = [labels.index(name) for name in reject]
        rows = np.isin(y, ids)
        accepted = ~np.isin(pred, ids)
        if rows.any():
            out["false_accept_rate"] = float(np.mean(accepted[rows]))
        for name, c in zip(reject, ids):
            if (y == c).any():
                out[f"false_accept_rate/{name}"] = float(np.mean(accepted[y == c]))
    return out
