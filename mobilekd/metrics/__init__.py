"""Evaluation metrics shared by training, verification, benchmarks and the gate, so that every
number with one name is computed one way."""

from mobilekd.metrics.classification import classification_metrics
from mobilekd.metrics.ranking import ranking_metrics

__all__ = ["classification_metrics", "ranking_metrics"]
