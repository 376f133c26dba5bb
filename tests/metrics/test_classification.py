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


def test_per_class_recall_and_false_accepts():
    labels = ("silence", "unknown", "yes", "no")
    targets = np.array([0, 0, 1, 1, 1, 2, 2, 3])
    pred = np.array([0, 2, 1, 0, 3, 2, 1, 3])
    m = classification_metrics(pred, targets, labels=labels, reject=("silence", "unknown"))
    # recall (exact class): silence rows 0-1 -> row 0 right: 1/2; unknown rows 2-4 -> row 2 right
    # (row 3 said silence, row 4 said no): 1/3; yes rows 5-6 -> row 5 right: 1/2; no row 7: 1/1.
    assert m["recall/silence"] == pytest.approx(1 / 2)
    assert m["recall/unknown"] == pytest.approx(1 / 3)
    assert m["recall/yes"] == pytest.approx(1 / 2)
    assert m["recall/no"] == pytest.approx(1.0)
    # false accepts: reject rows 0-4 predicted 0, 2, 1, 0, 3 -> a command (2 or 3) in rows 1 and 4:
    # 2/5 overall; silence rows {0, 1}: 1/2; unknown rows {2, 3, 4}: 1/3. Unknown predicted as
    # silence (row 3) is a confusion, not a false accept.
    assert m["false_accept_rate"] == pytest.approx(2 / 5)
    assert m["false_accept_rate/silence"] == pytest.approx(1 / 2)
    assert m["false_accept_rate/unknown"] == pytest.approx(1 / 3)
    assert "recall/yes" not in classification_metrics(pred, targets)
