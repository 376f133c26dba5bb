"""Pruning: shapes really shrink (structured), zeros really appear (unstructured), the pruned
model still runs and exports, and MACs / parameters fall by the hand-computed amounts."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from mobilekd.compress.macs import count_macs, count_params
from mobilekd.compress.prune import PruneOptions, final_layer, prune
from mobilekd.errors import ConfigError

from .nets import TinyCNN

X = (torch.rand(1, 1, 8, 8),)


class ResidualNet(nn.Module):
    """Two convs whose outputs are added: their out channels must be pruned together."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.branch = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                    nn.Conv2d(16, 16, 3, padding=1))
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        h = torch.relu(h + self.branch(h))
        return self.head(h.mean(dim=(2, 3)))


class EmbeddingMLP(nn.Module):
    """Embedding -> mean -> Linear stack: the embedding dimension is a prunable channel too."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(100, 16)
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(self.emb(ids).mean(1))))


def test_count_macs_and_params_by_hand():
    m = TinyCNN()
    # conv1 16*1*9 MACs per pixel * 64 pixels = 9,216; conv2 32*16*9*64 = 294,912; fc 32*10 = 320.
    assert count_macs(m, X) == 9_216 + 294_912 + 320
    # conv1 144+16, bn1 2*16, conv2 4,608+32, bn2 2*32, fc 320+10.
    assert count_params(m) == 160 + 32 + 4_640 + 64 + 330


def test_structured_halves_channels_keeps_output_and_exports():
    torch.manual_seed(0)
    m = TinyCNN().eval()
    assert final_layer(m, X) == "fc"
    report = prune(m, X, PruneOptions(method="structured", ratio=0.5))
    assert (m.conv1.out_channels, m.bn1.num_features, m.conv2.in_channels) == (8, 8, 8)
    assert (m.conv2.out_channels, m.fc.in_features, m.fc.out_features) == (16, 16, 10)
    assert report.pruned_layers == {"conv1": (16, 8), "conv2": (32, 16)}
    # conv1 8*9*64 = 4,608; conv2 16*8*9*64 = 73,728; fc 16*10 = 160.
    assert (report.macs_before, report.macs_after) == (304_448, 4_608 + 73_728 + 160)
    # conv1 72+8, bn1 16, conv2 1,152+16, bn2 32, fc 160+10.
    assert (report.params_before, report.params_after) == (5_226, 80 + 16 + 1_168 + 32 + 170)
    assert m(torch.rand(4, 1, 8, 8)).shape == (4, 10)
    ep = torch.export.export(m, X)
    torch.testing.assert_close(ep.module()(X[0]), m(X[0]))


def test_structured_user_ignore_adds_to_the_kept_output_layer():
    torch.manual_seed(0)
    m = TinyCNN().eval()
    report = prune(m, X, PruneOptions(method="structured", ratio=0.5, ignore=["conv1"]))
    assert (m.conv1.out_channels, m.conv2.in_channels, m.conv2.out_channels, m.fc.out_features) == (16, 16, 16, 10)
    assert report.pruned_layers == {"conv2": (32, 16)}


def test_structured_residual_add_prunes_coupled_convs_together():
    torch.manual_seed(0)
    m = ResidualNet().eval()
    report = prune(m, X, PruneOptions(method="structured", ratio=0.5, importance="l1"))
    # stem and the branch's last conv feed one add, so they keep the same (halved) width.
    assert m.stem.out_channels == m.branch[3].out_channels == m.head.in_features == 8
    assert m.branch[0].out_channels == m.branch[1].num_features == 8
    assert m.head.out_features == 10
    assert report.macs_after < report.macs_before
    assert m(X[0]).shape == (1, 10)
    torch.export.export(m, X)


def test_structured_embedding_dimension_and_linear_stack():
    torch.manual_seed(0)
    m = EmbeddingMLP().eval()
    ids = (torch.randint(0, 100, (1, 5)),)
    report = prune(m, ids, PruneOptions(method="structured", ratio=0.5))
    assert (m.emb.embedding_dim, m.fc1.in_features, m.fc1.out_features, m.fc2.out_features) == (8, 8, 16, 10)
    assert report.pruned_layers == {"emb": (16, 8), "fc1": (32, 16)}
    assert m(*ids).shape == (1, 10)


def test_structured_taylor_needs_a_loss_and_uses_it(digits):
    m = TinyCNN().eval()
    with pytest.raises(ConfigError, match="taylor_loss"):
        prune(m, X, PruneOptions(method="structured", ratio=0.5, importance="taylor"))

    def loss(model: nn.Module) -> torch.Tensor:
        return nn.functional.cross_entropy(model(digits["x_train"][:64]), digits["y_train"][:64])

    prune(m, X, PruneOptions(method="structured", ratio=0.25, importance="taylor"), taylor_loss=loss)
    assert (m.conv1.out_channels, m.conv2.out_channels) == (12, 24)  # 16*0.75, 32*0.75


def test_unstructured_zeroes_weights_but_keeps_shapes():
    torch.manual_seed(0)
    m = TinyCNN().eval()
    report = prune(m, X, PruneOptions(method="magnitude_unstructured", ratio=0.5))
    # fc is the default-ignored output layer, so conv1 (144 weights) and conv2 (4,608) are pruned:
    # round(0.5*144) = 72 and 0.5*4,608 = 2,304 zeros -> sparsity exactly 0.5.
    assert report.pruned_layers == {"conv1": (144, 72), "conv2": (4_608, 2_304)}
    assert report.sparsity == pytest.approx(0.5)
    assert m.conv1.weight.shape == (16, 1, 3, 3)  # dense: nothing removed, so same MACs
    assert report.macs_after == report.macs_before and report.params_after == report.params_before
    assert not hasattr(m.conv1, "weight_orig")  # prune.remove made it permanent
    assert int((m.fc.weight == 0).sum()) == 0
    torch.export.export(m, X)


def test_unstructured_global_ranks_across_layers():
    torch.manual_seed(0)
    m = TinyCNN().eval()
    with torch.no_grad():
        m.conv1.weight.mul_(100.0)  # conv1 now dominates: global ranking prunes conv2 first
    report = prune(m, X, PruneOptions(method="magnitude_unstructured", ratio=0.5, global_pruning=True))
    # 0.5 * (144 + 4,608) = 2,376 zeros in total, all of them in conv2.
    assert report.pruned_layers == {"conv1": (144, 144), "conv2": (4_608, 4_608 - 2_376)}


def test_options_reject_bad_values():
    with pytest.raises(ValidationError):
        PruneOptions(method="structured", ratio=0.0)
    with pytest.raises(ValidationError):
        PruneOptions(method="structured", ratio=0.99)
    with pytest.raises(ValidationError):
        PruneOptions(method="structured", ratio=0.5, importence="l1")  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="no module named"):
        prune(TinyCNN(), X, PruneOptions(method="structured", ratio=0.5, ignore=["head"]))
    with pytest.raises(ConfigError, match="structured"):
        prune(TinyCNN(), X, PruneOptions(method="magnitude_unstructured", ratio=0.5, importance="taylor"))
