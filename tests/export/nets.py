"""Tiny CPU models covering the layer kinds mobilekd exports: each takes its inputs positionally in
TensorSpec order and returns one (batch, C) tensor, the model contract of the export stage."""

from __future__ import annotations

import torch
from torch import nn

from mobilekd.specs import TensorSpec


class ResidualCNN(nn.Module):
    """Conv-BN-ReLU stem, one residual block (two conv-BN and an add), global pool, linear head."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        z = torch.relu(self.bn1(self.conv1(y)))
        y = torch.relu(y + self.bn2(self.conv2(z)))
        return self.head(torch.flatten(self.pool(y), 1))


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(20, 32)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class BagRecommender(nn.Module):
    """Embedding of the last item ids, mean-pooled, scored against every item (ranking)."""

    def __init__(self, items: int = 50, dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(items, dim)
        self.proj = nn.Linear(dim, dim)
        self.score = nn.Linear(dim, items)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.score(torch.tanh(self.proj(self.embed(ids).mean(dim=1))))


class TinyTransformer(nn.Module):
    """One pre-norm transformer block (multi-head attention + FFN, both residual) and a pooled head."""

    def __init__(self, dim: int = 16, classes: int = 5) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 32), nn.GELU(), nn.Linear(32, dim))
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.ffn(self.norm2(x))
        return self.head(x.mean(dim=1))


class GRUClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(8, 16, batch_first=True)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.head(out[:, -1])


# name -> (factory, input specs, task)
NETS: dict[str, tuple[type[nn.Module], list[TensorSpec], str]] = {
    "cnn": (ResidualCNN, [TensorSpec(name="x", shape=(1, 3, 16, 16))], "classification"),
    "mlp": (MLP, [TensorSpec(name="x", shape=(1, 20))], "classification"),
    "recsys": (BagRecommender, [TensorSpec(name="ids", dtype="int64", shape=(1, 8), low=0, high=50)], "ranking"),
    "transformer": (TinyTransformer, [TensorSpec(name="x", shape=(1, 8, 16))], "classification"),
    "gru": (GRUClassifier, [TensorSpec(name="x", shape=(1, 6, 8))], "classification"),
}


def build(name: str) -> nn.Module:
    """The named net with fixed random weights and non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(0)
    model = NETS[name][0]()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()
