"""The model factory: `build_mlp(num_outputs=..., **args)` returns a torch.nn.Module.

mobilekd calls a factory as `factory(num_outputs=N, **args)`, where N comes from the dataset's
`num_outputs` and `args` is the YAML's `args:` mapping (teacher.args, distill.args)."""

from __future__ import annotations

from torch import Tensor, nn


class WineMLP(nn.Module):
    def __init__(self, in_features: int, hidden: int, num_outputs: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, num_outputs))

    def forward(self, features: Tensor) -> Tensor:  # (B, 13) float32 -> (B, 3) logits
        return self.net(features)


def build_mlp(num_outputs: int, in_features: int = 13, hidden: int = 64) -> nn.Module:
    return WineMLP(in_features, hidden, num_outputs)
