"""Tiny models and helpers shared by the compress tests."""

from __future__ import annotations

import operator

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


def calibration_batches(digits, n: int = 8, bs: int = 32) -> list[tuple[torch.Tensor]]:
    x = digits["x_train"]
    return [(x[i * bs:(i + 1) * bs],) for i in range(n)]


def attr(gm: torch.fx.GraphModule, target: str) -> torch.Tensor:
    """A get_attr node's tensor; targets are dotted paths like "fc.weight"."""
    return operator.attrgetter(target)(gm)


def agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fraction of rows whose arg-max class is the same."""
    return (a.argmax(1) == b.argmax(1)).float().mean().item()
