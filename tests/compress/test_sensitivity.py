"""Layer sensitivity and float fallback on the digits CNN with one layer made int8-hostile."""

from __future__ import annotations

import copy

import pytest
import torch

from mobilekd.compress.quantize import quantize_pt2e
from mobilekd.compress.sensitivity import fallback, layer_sensitivity
from mobilekd.errors import StageError

from .nets import attr, calibration_batches

DEAD = 5  # conv2 channel that is always 0 after ReLU


def _fragile_fc(model, x):
    """A model that int8 ruins in one place, fc. Channel DEAD of conv2 is forced to 0 after ReLU
    (bn2 gamma 0, beta -1 -> relu(-1) = 0), so fc's column DEAD can hold 1000 without changing any
    output. int8 then needs a scale >= 1000/127 ~ 7.9 per fc row, every other fc weight (|w| < ~1)
    rounds to 0, and the logits collapse to the bias."""
    with torch.no_grad():
        model.bn2.weight[DEAD] = 0.0
        model.bn2.bias[DEAD] = -1.0
        before = model(x)
        model.fc.weight[:, DEAD] = 1000.0
        torch.testing.assert_close(model(x), before)  # the 1000s are invisible in fp32
    return model


def _accuracy(digits):
    x, y = digits["x_test"], digits["y_test"]

    def evaluate(m: torch.nn.Module) -> float:
        with torch.no_grad():
            return (m(x).argmax(1) == y).float().mean().item()

    return evaluate


@pytest.fixture(scope="module")
def fragile(trained_cnn, digits):
    """The fragile model and its sensitivity table, computed once (3 quantizations) for the module."""
    model = _fragile_fc(copy.deepcopy(trained_cnn), digits["x_test"])
    calib = calibration_batches(digits, n=4)
    table = layer_sensitivity(model, (digits["x_test"][:1],), calib, _accuracy(digits))
    return model, calib, table


def test_sensitivity_ranks_the_fragile_layer_first(fragile):
    _, _, table = fragile
    assert [r.layer for r in table][0] == "fc"
    assert {r.layer for r in table} == {"conv1", "conv2", "fc"}
    assert table[0].drop > 0.5  # fc int8 alone: ~0.1 accuracy (bias-only logits)
    assert all(r.drop < 0.05 for r in table[1:])  # the convs alone cost almost nothing
    assert table[0].drop == pytest.approx(table[0].metric_fp32 - table[0].metric_int8_only_this_layer)


def test_fallback_keeps_fc_float_in_the_exported_graph(fragile, digits):
    model, calib, table = fragile
    x1, evaluate = (digits["x_test"][:1],), _accuracy(digits)
    result = fallback(model, x1, calib, evaluate, max_metric_drop=0.03, max_float_layers=2, table=table)
    assert result.keep_float == ["fc"]
    assert result.drop <= 0.03 and result.table[0].layer == "fc"

    gm = quantize_pt2e(copy.deepcopy(model), x1, calib, keep_float=result.keep_float)
    assert evaluate(gm) == pytest.approx(result.metric)  # same calibration -> same model
    (linear,) = [n for n in gm.graph.nodes if n.target == torch.ops.aten.linear.default]
    # fc's weight is a float32 parameter (no int8 tensor + dequantize) and its output is not
    # quantized: fc runs in float32. (Its input may come out of a dequantize: the pooled
    # activation before it is int8, which is fine.)
    weight = linear.args[1]
    assert weight.op == "get_attr" and attr(gm, weight.target).dtype == torch.float32
    assert all("quantize" not in str(u.target) for u in linear.users)
    # ... while both convs are int8.
    int8 = {n.target for n in gm.graph.nodes if n.op == "get_attr" and attr(gm, n.target).dtype == torch.int8}
    assert len(int8) == 2

    # The graph handed to ExecuTorch (torch.export of the converted module) keeps it that way.
    ep = torch.export.export(gm, x1)
    (linear,) = [n for n in ep.graph.nodes if n.target == torch.ops.aten.linear.default]
    assert linear.args[1].op == "placeholder" and linear.args[1].meta["val"].dtype == torch.float32


def test_fallback_raises_with_the_table_when_budget_is_impossible(fragile, digits):
    model, calib, table = fragile
    with pytest.raises(StageError, match=r"max_float_layers=0(.|\n)*fc"):
        fallback(model, (digits["x_test"][:1],), calib, _accuracy(digits),
                 max_metric_drop=0.03, max_float_layers=0, table=table)
