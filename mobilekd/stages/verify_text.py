"""verify stage, retrieval tasks: each exported file embeds the whole test split (queries and
catalogue) on its own runtime, one row at a time as the app would, and is scored with the index it
built itself (mobilekd.metrics.retrieval via mobilekd.evaluate.metrics)."""

from __future__ import annotations

import numpy as np

from mobilekd.data import Dataset
from mobilekd.evaluate import metrics
from mobilekd.export.runtime import can_execute, open_runtime
from mobilekd.export.types import ExportedModel


def file_outputs(exported: ExportedModel, inputs: dict[str, np.ndarray]) -> np.ndarray:
    names = [s.name for s in exported.inputs]
    session = open_runtime(exported.format, exported.path, input_names=names)
    n = len(next(iter(inputs.values())))
    rows = [np.asarray(session.run({k: inputs[k][i : i + 1] for k in names})[0]).reshape(1, -1) for i in range(n)]
    return np.concatenate(rows)


def file_metrics(exported: ExportedModel, ds: Dataset) -> dict[str, float] | None:
    """The file's retrieval metrics on the test split; None where it cannot run here (CoreML)."""
    if not can_execute(exported.format):
        return None
    return metrics(file_outputs(exported, ds.test.inputs), ds.test, ds.info)
