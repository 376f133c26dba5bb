"""nn.EmbeddingBag rewritten in core ATen ops (mobilekd.export.decompositions): the same numbers as
eager, and a .pte that ExecuTorch's runtime loads (it has no embedding_bag kernel)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mobilekd.export.decompositions import needs_rewrite, rewrite_for_mobile


class Bag(nn.Module):
    def __init__(self, mode: str) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(6, 2, mode=mode, padding_idx=0)
        with torch.no_grad():
            self.bag.weight.copy_(torch.arange(12, dtype=torch.float32).view(6, 2))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.bag(ids)


IDS = torch.tensor([[0, 2, 3], [5, 5, 1]])  # row 0 holds the padding id: two real items


@pytest.mark.parametrize("mode,want", [
    # rows: id k holds (2k, 2k+1); padding id 0 counts for nothing
    ("sum", [[4.0 + 6.0, 5.0 + 7.0], [10.0 + 10.0 + 2.0, 11.0 + 11.0 + 3.0]]),
    ("mean", [[5.0, 6.0], [22.0 / 3, 25.0 / 3]]),
])
def test_rewrite_matches_eager_by_hand(mode, want):
    model = Bag(mode).eval()
    ep = torch.export.export(model, (IDS,))
    assert needs_rewrite(ep)
    rewritten = rewrite_for_mobile(ep)
    assert not needs_rewrite(rewritten)
    torch.testing.assert_close(model(IDS), torch.tensor(want))
    torch.testing.assert_close(rewritten.module()(IDS), torch.tensor(want))


def test_no_embedding_bag_no_change():
    ep = torch.export.export(nn.Linear(2, 2).eval(), (torch.ones(1, 2),))
    assert rewrite_for_mobile(ep) is ep


def test_pte_of_embedding_bag_loads_and_matches(tmp_path):
    from mobilekd.export.executorch import export_executorch
    from mobilekd.export.runtime import open_runtime
    from mobilekd.export.types import ExecuTorchOptions
    from mobilekd.specs import TensorSpec

    model = Bag("mean").eval()
    specs = (TensorSpec(name="ids", dtype="int64", shape=(2, 3), low=0, high=6),)
    exported = export_executorch(model, specs, ["out"], tmp_path / "bag.pte", ExecuTorchOptions())
    got = open_runtime("executorch", exported.path, input_names=["ids"]).run({"ids": IDS.numpy()})[0]
    torch.testing.assert_close(torch.as_tensor(got), model(IDS))


def test_coreml_converts_embedding_bag(tmp_path):
    from mobilekd.export.coreml import export_coreml, inspect_coreml
    from mobilekd.export.types import CoreMLOptions
    from mobilekd.specs import TensorSpec

    specs = (TensorSpec(name="ids", dtype="int64", shape=(2, 3), low=0, high=6),)
    exported = export_coreml(Bag("sum").eval(), specs, ["out"], tmp_path / "bag.mlpackage", CoreMLOptions())
    assert exported.details["frontend"].startswith("torch.export")  # not the TorchScript fallback
    assert inspect_coreml(exported.path)["outputs"][0]["shape"] == [2, 2]
