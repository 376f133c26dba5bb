"""Shared fixtures: a tiny Conv-BN-ReLU x2 + Linear CNN trained briefly on sklearn digits, so
calibration and accuracy checks run on real data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from .nets import TinyCNN


@pytest.fixture(scope="package", autouse=True)
def one_thread():
    """Package-scoped, so the thread count is restored once tests/compress is done. The CI box has
    2 shared cores; intra-op threads fight each other on these tiny tensors
    (150 training steps take ~10 s with 2 threads under load, ~1 s with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits() -> dict[str, torch.Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)  # (1797, 1, 8, 8) in [0, 1]
    y = torch.tensor(d.target, dtype=torch.int64)
    perm = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    x, y = x[perm], y[perm]
    return {"x_train": x[:1200], "y_train": y[:1200], "x_test": x[1200:], "y_test": y[1200:]}


@pytest.fixture(scope="session")
def trained_cnn(digits) -> TinyCNN:
    # One thread while training, whatever ran before: the thread count changes the float summation
    # order, and 150 steps ended at 0.92 test accuracy with 2 threads but 0.83 with 1.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = TinyCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = digits["x_train"], digits["y_train"]
    model.train()
    for step in range(400):  # ~2 s on one core; 0.953 test accuracy
        idx = torch.randint(0, len(y), (64,), generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    torch.set_num_threads(before)
    return model.eval()


@pytest.fixture()
def cnn(trained_cnn) -> TinyCNN:
    """A fresh copy per test (quantization / pruning mutate or re-export the model)."""
    import copy

    return copy.deepcopy(trained_cnn).eval()
