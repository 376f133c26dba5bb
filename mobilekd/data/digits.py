"""UCI handwritten digits (8x8, 1,797 images): the quickstart dataset. It ships inside scikit-learn,
so the quickstart and CI run with no download and no data folder at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydantic

from mobilekd.data import Dataset, DatasetInfo, Split, parse_options
from mobilekd.data.download import resolve_data_dir
from mobilekd.specs import StrictModel, TensorSpec

LICENSE = "CC BY 4.0 (UCI Machine Learning Repository); copy shipped with scikit-learn (BSD-3-Clause)"
CITATION = (
    "Alpaydin, E. & Kaynak, C. (1998). Optical Recognition of Handwritten Digits. "
    "UCI Machine Learning Repository. doi:10.24432/C50P49"
)


class DigitsOptions(StrictModel):
    """Fractions of the 1,797 images held out; the rest trains. Stratified, so every split keeps
    the class balance (about 180 images per digit)."""

    val_fraction: float = pydantic.Field(0.1, gt=0.0, lt=1.0)
    test_fraction: float = pydantic.Field(0.2, gt=0.0, lt=1.0)

    @pydantic.model_validator(mode="after")
    def _leave_training(self) -> "DigitsOptions":
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                f"val_fraction + test_fraction must be < 0.9, got {self.val_fraction} + {self.test_fraction}"
            )
        return self


def load(data_dir: Path | None = None, *, seed: int, val_fraction: float = 0.1,
         test_fraction: float = 0.2) -> Dataset:
    """Digits as float32 (N, 1, 8, 8) in [0, 1] (pixel / 16), stratified train/val/test split.

    `data_dir` is not read (the data ships with scikit-learn) but, when given, must exist, so that
    a pipeline pointing at a wrong folder fails the same way for every dataset.
    """
    from sklearn.datasets import load_digits  # here, so that checking options stays light
    from sklearn.model_selection import train_test_split

    opts = parse_options(DigitsOptions, "digits",
                         val_fraction=val_fraction, test_fraction=test_fraction)
    if data_dir is not None:
        resolve_data_dir(data_dir)
    raw = load_digits()
    x = (raw.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = raw.target.astype(np.int64)
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=opts.test_fraction, stratify=y, random_state=seed)
    val_share = opts.val_fraction / (1.0 - opts.test_fraction)
    train, val = train_test_split(rest, test_size=val_share, stratify=y[rest], random_state=seed)
    info = DatasetInfo(
        name="digits",
        task="classification",
        inputs=(TensorSpec(name="image", dtype="float32", shape=(1, 1, 8, 8), low=0.0, high=1.0),),
        num_outputs=10,
        labels=tuple(str(d) for d in range(10)),
        preprocessing={"layout": "NCHW", "scale": "pixel/16", "range": [0, 1]},
        postprocessing={"output": "logits over labels; argmax is the digit"},
        license=LICENSE,
        citation=CITATION,
        notes=(f"stratified split with seed {seed}: {len(train)} train, {len(val)} val, {len(test)} test",),
    )

    def split(index: np.ndarray) -> Split:
        index = np.sort(index)
        return Split({"image": x[index]}, y[index])

    return Dataset(info=info, train=split(train), val=split(val), test=split(test))
