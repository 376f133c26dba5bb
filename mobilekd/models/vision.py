"""Built-in image models: a small VGG-style CNN (teacher or student by width) and an MLP.

Both expose `features` (the conv/hidden stack) and `embedding` (the penultimate vector) by
module name, so feature (FitNets) and relation (RKD) transfer can hook them from the YAML.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class CNN(nn.Module):
    """Conv-BN-ReLU blocks (max-pool after each but the last), global average pool, MLP head."""

    def __init__(self, num_outputs: int, in_channels: int, channels: Sequence[int], hidden: int, dropout: float,
                 pool: int = 2):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for i, c in enumerate(channels):
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            if i < len(channels) - 1:
                layers.append(nn.MaxPool2d(2))
            c_in = c
        self.features = nn.Sequential(*layers)
        # A small pooled grid (not a single vector) keeps where strokes are, which 8x8 digits need.
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.embedding = nn.Sequential(nn.Flatten(), nn.Linear(c_in * pool * pool, hidden), nn.ReLU())
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_outputs)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.embedding(self.pool(self.features(image)))))


def build_cnn(num_outputs: int, in_channels: int = 1, channels: Sequence[int] = (16, 32),
              hidden: int = 64, dropout: float = 0.0, pool: int = 2, image_size: int | None = None) -> CNN:
    """`image_size` is accepted and unused: the adaptive pool makes the model size-agnostic."""
    return CNN(num_outputs, in_channels, tuple(channels), hidden, dropout, pool)


class MLP(nn.Module):
    def __init__(self, num_outputs: int, in_features: int, hidden: Sequence[int], dropout: float):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        d = in_features
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU(), nn.Dropout(dropout)]
            d = h
        self.features = nn.Sequential(*layers)
        self.embedding = nn.Identity()
        self.classifier = nn.Linear(d, num_outputs)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embedding(self.features(image)))


def build_mlp(num_outputs: int, in_channels: int = 1, image_size: int = 8,
              hidden: Sequence[int] = (128,), dropout: float = 0.0) -> MLP:
    return MLP(num_outputs, in_channels * image_size * image_size, tuple(hidden), dropout)
