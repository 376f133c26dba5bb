"""A wrong weight planted in an exported file (fp32 ONNX, int8 ONNX, or an ExecuTorch lowering) fails
verify, and the divergence finder names the layer it sits in; correct files name none. An operator
a target cannot take is reported with its module path."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from mobilekd.errors import ExportError
from mobilekd.export import export_model
from mobilekd.export.divergence import (
    _scope_by_name, find_divergence, first_jump, is_quantized, onnx_module_outputs, scopes_by_node_name,
)
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


# --------------------------------------------------------------------------- ExecuTorch and int8 ONNX

class _WrongWhenExported(nn.Linear):
    """A Linear whose exported graph uses a wrong weight (weight + 0.5) while eager PyTorch uses the
    right one: the .pte is wrong at this one layer, as a mis-lowered op or kernel makes it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight + 0.5 if torch.compiler.is_exporting() else self.weight
        return nn.functional.linear(x, weight, self.bias)


class _Stack(nn.Module):
    """Linear-ReLU-Linear-ReLU-Linear; `wrong_fc2` plants the fault in the middle Linear."""

    def __init__(self, wrong_fc2: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.act1 = nn.Linear(16, 32), nn.ReLU()
        self.fc2, self.act2 = (_WrongWhenExported if wrong_fc2 else nn.Linear)(32, 32), nn.ReLU()
        self.fc3 = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act2(self.fc2(self.act1(self.fc1(x)))))


STACK_SPECS = [TensorSpec(name="x", shape=(1, 16))]


@pytest.fixture(scope="module")
def stack_feeds():
    from mobilekd.export.runtime import random_feeds
    from mobilekd.export.verify import torch_reference

    feeds = random_feeds(STACK_SPECS, 16, seed=1)
    ref = torch_reference(_Stack().eval(), ["x"])
    return feeds, np.concatenate([ref(f) for f in feeds])


def test_first_jump_thresholds():
    errors = [("a", 0.01), ("b", 0.03), ("c", 0.5), ("d", 0.9)]
    assert first_jump(errors, floor=0.25, factor=4.0) == "c"  # 0.5 > 0.25 and > 4 * 0.03
    assert first_jump([("a", 0.3)], floor=0.25, factor=4.0) == "a"  # nothing before: the floor decides
    assert first_jump([("a", 0.1), ("b", 0.3)], floor=0.25, factor=4.0) is None  # 0.3 < 4 * 0.1: growth, no jump


def test_scope_by_quantizer_node_name():
    fallback = {"node_linear": "fc1", "node_linear_1": "fc2", "node_relu": "act1", "node_relu_1": ""}
    assert _scope_by_name("node_linear_MatMul_quant", fallback) == "fc1"
    assert _scope_by_name("node_linear_1_Add", fallback) == "fc2"  # the longer name wins
    assert _scope_by_name("node_relu_1", fallback) == ""  # outside any module
    assert _scope_by_name("node_relu_2", fallback) == ""  # another node, not an extension of node_relu
    assert _scope_by_name("x_QuantizeLinear", fallback) == ""


def test_pte_prefixes_name_the_planted_layer(tmp_path, stack_feeds):
    from mobilekd.export.executorch import export_executorch
    from mobilekd.export.types import ExecuTorchOptions

    feeds, ref = stack_feeds
    model = _Stack(wrong_fc2=True).eval()
    bad = export_executorch(model, STACK_SPECS, ["logits"], tmp_path / "bad.pte", ExecuTorchOptions())
    parity = verify_file(bad, ref, feeds, task="classification", tolerance=DEFAULT_TOLERANCES["fp32"], model=model)
    assert parity.status == "failed"
    assert parity.diverges_at == "fc2 (_WrongWhenExported)"  # fc1 and act1 agree; fc2 is the first off
    assert "first diverging layer: fc2 (_WrongWhenExported)" in parity.reason


def test_correct_pte_has_no_diverging_layer(tmp_path, stack_feeds, caplog):
    from mobilekd.export.divergence_executorch import find_executorch_divergence, leaf_layers
    from mobilekd.export.executorch import export_executorch
    from mobilekd.export.types import ExecuTorchOptions

    feeds, ref = stack_feeds
    model = _Stack().eval()
    good = export_executorch(model, STACK_SPECS, ["logits"], tmp_path / "good.pte", ExecuTorchOptions())
    assert verify_file(good, ref, feeds, task="classification", tolerance=DEFAULT_TOLERANCES["fp32"],
                       model=model).status == "passed"
    assert list(leaf_layers(model, feeds[0], ["x"])) == ["fc1", "act1", "fc2", "act2", "fc3"]
    with caplog.at_level(logging.WARNING, logger="mobilekd.export.divergence_executorch"):
        assert find_executorch_divergence(model, feeds[0], STACK_SPECS) is None
    assert not caplog.records  # the prefix was exported and run, not skipped


def plant_int8(src, dst, layer: str):
    """Negate the int8 weights of `layer` in a quantized ONNX file (a sign error in one layer)."""
    proto = onnx.load(str(src))
    (index,) = [i for i, t in enumerate(proto.graph.initializer)
                if t.name.startswith(f"{layer}.weight") and t.name.endswith("_quantized")]
    tensor = proto.graph.initializer[index]
    weights = numpy_helper.to_array(tensor)
    assert weights.dtype == np.int8
    flipped = np.clip(-weights.astype(np.int16), -127, 127).astype(np.int8)
    tensor.CopyFrom(numpy_helper.from_array(flipped, tensor.name))
    onnx.save(proto, str(dst))
    return dst


@pytest.fixture(scope="module")
def stack_int8(tmp_path_factory, stack_feeds):
    from mobilekd.compress.quantize import OnnxQuant, quantize_onnx

    feeds, _ = stack_feeds
    folder = tmp_path_factory.mktemp("int8")
    fp32 = export_onnx(_Stack().eval(), STACK_SPECS, ["logits"], folder / "fp32.onnx", OnnxOptions())
    files = {}
    for scheme in ("static", "dynamic"):
        path = folder / f"{scheme}.onnx"
        label = quantize_onnx(Path(fp32.path), path, options=OnnxQuant(scheme=scheme), calibration_feeds=feeds)
        files[scheme] = fp32.model_copy(update={"path": str(path), "variant": "int8", "scheme": label})
    return files


@pytest.mark.parametrize("scheme", ["static", "dynamic"])
def test_int8_onnx_names_the_planted_layer(tmp_path, stack_feeds, stack_int8, scheme):
    feeds, ref = stack_feeds
    model = _Stack().eval()
    bad = stack_int8[scheme].model_copy(update={"path": str(plant_int8(stack_int8[scheme].path, tmp_path / "bad.onnx", "fc2"))})
    parity = verify_file(bad, ref, feeds, task="classification", tolerance=DEFAULT_TOLERANCES["int8"], model=model)
    assert parity.status == "failed"
    assert parity.diverges_at == "fc2 (Linear)"


@pytest.mark.parametrize("scheme", ["static", "dynamic"])
def test_correct_int8_onnx_has_no_jump(stack_feeds, stack_int8, scheme):
    feeds, ref = stack_feeds
    model = _Stack().eval()
    good = stack_int8[scheme]
    proto = onnx.load(good.path)
    assert is_quantized(proto)
    fallback = scopes_by_node_name(model, (torch.from_numpy(feeds[0]["x"]),))
    observed = {m for m, _ in onnx_module_outputs(proto, fallback)}
    # the Linears are observable in both schemes (static keeps their metadata; dynamic's MatMulInteger
    # nodes are scoped by name), so "no jump" below is a comparison, not an empty search
    assert {"fc1", "fc2", "fc3"} <= observed
    assert verify_file(good, ref, feeds, task="classification", tolerance=DEFAULT_TOLERANCES["int8"],
                       model=model).status == "passed"
    assert all(find_divergence(model, good.path, feed, input_names=["x"]) is None for feed in feeds[:4])
