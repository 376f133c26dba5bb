"""Shared fixtures: a tiny Conv-BN-ReLU x2 + Linear CNN trained briefly on sklearn digits, so
calibration and accuracy checks run on real data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn


class TinyCNN(nn.Module):
    """8x8x1 -> 10 classes. Conv(1->16)-BN-ReLU, Conv(16->32)-BN-ReLU, global pool, Linear(32->10)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


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
    torch.manual_seed(0)
    model = TinyCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = digits["x_train"], digits["y_train"]
    model.train()
    for step in range(150):  # ~1 s on one core; reaches ~0.9+ test accuracy
        idx = torch.randint(0, len(y), (64,), generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    return model.eval()


@pytest.fixture()
def cnn(trained_cnn) -> TinyCNN:
    """A fresh copy per test (quantization / pruning mutate or re-export the model)."""
    import copy

    return copy.deepcopy(trained_cnn).eval()


def calibration_batches(digits, n: int = 8, bs: int = 32) -> list[tuple[torch.Tensor]]:
    x = digits["x_train"]
    return [(x[i * bs:(i + 1) * bs],) for i in range(n)]
