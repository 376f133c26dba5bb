"""Datasets. Each loader returns a `Dataset`: typed metadata plus train/val/test splits held as
numpy arrays, one array per model input, so every later stage (training, calibration, parity,
golden vectors) reads the same real examples."""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Sequence
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
    # Inputs only a server model may read, never part of the phone's contract (privileged information,
    # Lopez-Paz et al. 2016): a teacher names the ones it reads in `teacher.inputs`.
    privileged_inputs: tuple[TensorSpec, ...] = ()
    # ranking: the input whose ids are "the history" that splits relevant items into new and repeat
    # (None: the first input)
    history_input: str | None = None
    # ranking: a short text per output id (product descriptions), for models that read item features
    # (a builder with an `item_text` argument gets it); empty when the dataset has none
    item_text: tuple[str, ...] = ()

    def input_names(self) -> list[str]:
        """Every input a split of this dataset holds: the model inputs, then the privileged ones."""
        return [s.name for s in (*self.inputs, *self.privileged_inputs)]

    def view(self, names: "Sequence[str] | None") -> "DatasetInfo":
        """This dataset as seen by a model whose forward reads `names` (model or privileged inputs,
        in forward order); the new/repeat history stays the phone model's. None: unchanged."""
        if not names:
            return self
        specs = {s.name: s for s in (*self.inputs, *self.privileged_inputs)}
        missing = [n for n in names if n not in specs]
        if missing:
            raise KeyError(f"{', '.join(missing)} (this dataset has {', '.join(specs)})")
        return self.model_copy(update={"inputs": tuple(specs[n] for n in names),
                                       "history_input": self.history_input or self.inputs[0].name})


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
    # (W, P) row ids grouped by training window (mobilekd.data.windows), -1 padding: the trainer draws
    # whole windows, so one step trains every example of each window it drew. None: rows one by one.
    windows: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def take(self, index: np.ndarray | slice) -> "Split":
        """Rows `index` (the windows are dropped: they name rows of the whole split)."""
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
