"""The dataset loader: `load(data_dir, *, seed, **options) -> mobilekd.data.Dataset`.

scikit-learn's wine recognition data (178 wines, 13 chemical measurements, 3 cultivars; it ships
with scikit-learn, so nothing is downloaded). Split 60/20/20, stratified, with the features
standardised on the training split only (the app applies the same mean and scale)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mobilekd.data import Dataset, DatasetInfo, Split
from mobilekd.specs import TensorSpec


def load(data_dir: Path | None = None, *, seed: int, test_fraction: float = 0.2) -> Dataset:
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    wine = load_wine()
    x, y = wine.data.astype(np.float32), wine.target.astype(np.int64)
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=2 * test_fraction, stratify=y,
                                                        random_state=seed)
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=seed)
    mean, scale = x_train.mean(axis=0), x_train.std(axis=0)

    def split(features: np.ndarray, targets: np.ndarray) -> Split:
        return Split({"features": ((features - mean) / scale).astype(np.float32)}, targets)

    info = DatasetInfo(
        name="wine", task="classification",
        inputs=(TensorSpec(name="features", dtype="float32", shape=(1, 13)),),
        num_outputs=3, labels=tuple(str(n) for n in wine.target_names),
        preprocessing={"input": "13 chemical measurements, standardised", "mean": mean.round(6).tolist(),
                       "scale": scale.round(6).tolist()},
        license="CC BY 4.0 (UCI Machine Learning Repository)",
        citation="Aeberhard, S. & Forina, M. (1991). Wine. UCI Machine Learning Repository.",
    )
    return Dataset(info, split(x_train, y_train), split(x_val, y_val), split(x_test, y_test))
