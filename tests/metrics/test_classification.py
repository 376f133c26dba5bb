import numpy as np
import pytest

from mobilekd.metrics import classification_metrics


def test_hand_checked():
    targets = np.array([0, 0, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0])
    m = classification_metrics(pred, targets)
    # correct: 0, 2, 3 -> accuracy 3/5. Per class (precision, recall):
    # 0: predicted {0, 4}, right 1 -> (1/2, 1/2); 1: predicted {1, 2, 3}, right 2 -> (2/3, 1);
    # 2: never predicted -> (0, 0). F1: 1/2, 0.8, 0.
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["precision_macro"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert m["recall_macro"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert m["f1_macro"] == pytest.approx((0.5 + 0.8 + 0) / 3)
    logits = np.eye(3)[pred] * 5.0  # argmax gives back pred
    assert classification_metrics(logits, targets) == m


def test_shape_mismatch():
    with pytest.raises(ValueError, match="do not match"):
        classification_metrics(np.zeros(3), np.zeros(4))
