"""A wrong weight planted in an exported ONNX file fails verify, and the divergence finder names the
layer it sits in; an operator a target cannot take is reported with its module path."""

from __future__ import annotations

import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from mobilekd.errors import ExportError
from mobilekd.export import export_model
from mobilekd.export.divergence import find_divergence, onnx_module_outputs
from mobilekd.export.onnx import export_onnx
from mobilekd.export.types import DEFAULT_TOLERANCES, ExportedModel, OnnxOptions
from mobilekd.specs import TensorSpec
from mobilekd.export.verify import verify_file



def plant(src: str, dst, initializer: str, delta: float = 5.0) -> ExportedModel:
    proto = onnx.load(src)
    (index,) = [i for i, t in enumerate(proto.graph.initializer) if t.name == initializer]
    weights = numpy_helper.to_array(proto.graph.initializer[index]).copy()
    weights.flat[0] += delta
    proto.graph.initializer[index].CopyFrom(numpy_helper.from_array(weights, initializer))
    onnx.save(proto, str(dst))
    return dst


@pytest.fixture(scope="module")
def cnn_onnx(tmp_path_factory, nets):
    model, specs, *_ = nets["cnn"]
    return export_onnx(model, specs, ["logits"], tmp_path_factory.mktemp("div") / "cnn.onnx", OnnxOptions())


def test_module_outputs_follow_graph_order(cnn_onnx):
    pairs = onnx_module_outputs(onnx.load(cnn_onnx.path))
    # onnxsim folds each BatchNorm into its Conv; the fused node computes the BatchNorm's output,
    # so the observable layers are the BatchNorms, ReLU, pool and head, in forward order
    assert [m for m, _ in pairs] == ["stem.1", "stem.2", "stem", "bn1", "bn2", "pool", "head"]
    assert pairs[-1] == ("head", "logits")


@pytest.mark.parametrize(("initializer", "layer"), [("head.weight", "head (Linear)"),
                                                     ("conv1.weight", "bn1 (BatchNorm2d)")])
def test_planted_weight_fails_and_names_layer(tmp_path, nets, cnn_onnx, initializer, layer):
    model, specs, task, feeds, ref = nets["cnn"]
    bad = cnn_onnx.model_copy(update={"path": str(plant(cnn_onnx.path, tmp_path / "bad.onnx", initializer))})
    parity = verify_file(bad, ref, feeds, task=task, tolerance=DEFAULT_TOLERANCES["fp32"], model=model)
    assert parity.status == "failed"
    assert parity.diverges_at == layer  # conv1 is fused with bn1: the first observable layer is bn1
    assert layer in parity.reason


def test_mlp_first_layer(tmp_path, nets):
    model, specs, task, feeds, ref = nets["mlp"]
    exported = export_onnx(model, specs, ["logits"], tmp_path / "mlp.onnx", OnnxOptions())
    bad = plant(exported.path, tmp_path / "bad.onnx", "fc1.weight")
    assert find_divergence(model, bad, feeds[0], input_names=["x"]) == "fc1 (Linear)"
    # an intact file has no diverging layer
    assert find_divergence(model, exported.path, feeds[0], input_names=["x"]) is None


class _Inverse(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.inv(self.fc(x).reshape(-1, 4, 4)).reshape(1, -1)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Linear(4, 4), _Inverse())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


@pytest.mark.parametrize("fmt", ["onnx", "executorch"])
def test_unsupported_operator_names_op_and_module(tmp_path, fmt):
    with pytest.raises(ExportError) as info:
        export_model(fmt, _Net().eval(), [TensorSpec.parse("x:float32[1,4]")], ["y"], tmp_path / f"inv.{fmt}")
    message = str(info.value)
    assert "linalg_inv" in message and "block.1 (_Inverse)" in message and "What to try" in message
    assert not (tmp_path / f"inv.{fmt}").exists()
