"""Classification metrics, computed by scikit-learn so that they match what users compute."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support


def classification_metrics(logits_or_pred: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Accuracy and macro precision/recall/F1.

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
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "precision_macro": float(p),
        "recall_macro": float(r),
        "f1_macro": float(f),
    }
