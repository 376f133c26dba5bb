"""Datasets. Each loader returns a `Dataset`: typed metadata plus train/val/test splits held as
numpy arrays, one array per model input, so every later stage (training, calibration, parity,
golden vectors) reads the same real examples."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from mobilekd.specs import StrictModel, Task, TensorSpec

OptionsT = TypeVar("OptionsT", bound=StrictModel)


class DatasetInfo(StrictModel):
    """What a model trained on this data consumes and produces; goes into summary and manifest."""

    name: str
    task: Task
    inputs: tuple[TensorSpec, ...]  # batch dimension is 1
    num_outputs: int  # classes, or catalogue size for ranking
    labels: tuple[str, ...]  # class names, or item ids (index -> item)
    preprocessing: dict[str, Any] = {}
    postprocessing: dict[str, Any] = {}
    license: str = ""
    citation: str = ""
    notes: tuple[str, ...] = ()


@dataclass
class Split:
    """Examples of one split. `inputs` maps input name -> array with the batch on axis 0.

    targets: int64 (N,) class ids for classification; for ranking, int64 (N, R) relevant item ids
    padded with -1 (the training split holds one next item per row, R = 1).
    """

    inputs: dict[str, np.ndarray]
    targets: np.ndarray
    # Row-aligned outputs of a reference model, for metrics that compare with it (retrieval: the
    # teacher's embeddings under "teacher", set from the teacher stage's result).
    reference: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def take(self, index: np.ndarray | slice) -> "Split":
        return Split({k: v[index] for k, v in self.inputs.items()}, self.targets[index],
                     {k: v[index] for k, v in self.reference.items()})


@dataclass
class Dataset:
    info: DatasetInfo
    train: Split
    val: Split
    test: Split
    # Extra artifacts a loader wants in the data stage folder and the bundle (e.g. item vocabulary rows).
    extras: dict[str, Any] = field(default_factory=dict)


def parse_options(model: type[OptionsT], dataset: str, **values: Any) -> OptionsT:
    """A loader's keyword options as its typed model; a bad value is a ConfigError naming the dataset
    (the one place every built-in loader turns its options into a model)."""
    import pydantic

    from mobilekd.errors import ConfigError

    try:
        return model(**values)
    except pydantic.ValidationError as exc:
        raise ConfigError(f"{dataset} options: {exc}") from None
