"""Which layers does int8 hurt? Quantize one layer at a time, measure the metric drop, and keep the
worst layers in float until the whole model is within budget (mixed-precision fallback).

Measuring each layer alone (not removing one layer from a fully quantized model) is the usual
PT2E sensitivity analysis: it is additive enough to rank layers and costs one quantization per
layer. The metric is "higher is better" (accuracy, recall@k); drop = fp32 metric - int8 metric.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

from torch import Tensor, nn

from mobilekd.compress.quantize import quantize_pt2e
from mobilekd.errors import ConfigError, StageError
from mobilekd.specs import StrictModel

# The modules XNNPACKQuantizer annotates as a unit (weights + activations).
_QUANTIZABLE = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


class LayerSensitivity(StrictModel):
    """The metric with only `layer` quantized to int8 (everything else float)."""

    layer: str
    metric_fp32: float
    metric_int8_only_this_layer: float
    drop: float


class FallbackResult(StrictModel):
    """The layers to keep float and the metric of the model quantized that way.
    `quantize_pt2e(..., keep_float=result.keep_float)` with the same calibration rebuilds it."""

    keep_float: list[str]
    metric_fp32: float
    metric: float
    drop: float
    table: list[LayerSensitivity]


def quantizable_layers(model: nn.Module) -> list[str]:
    """Names of the Conv/Linear modules that PT2E int8 would quantize, in definition order."""
    return [name for name, m in model.named_modules() if isinstance(m, _QUANTIZABLE)]


def layer_sensitivity(
    model: nn.Module,
    example_inputs: tuple[Tensor, ...],
    calibration: Sequence[tuple[Tensor, ...]],
    evaluate: Callable[[nn.Module], float],
    *,
    per_channel: bool = True,
    layers: Sequence[str] | None = None,
) -> list[LayerSensitivity]:
    """Quantize each layer alone (static int8, XNNPACKQuantizer.set_module_name) and evaluate.

    Returns the table sorted most sensitive first (largest drop). `layers` defaults to every
    Conv/Linear; `evaluate` gets an nn.Module and returns a higher-is-better metric on validation data.
    """
    model = model.eval()
    metric_fp32 = float(evaluate(model))
    table = []
    for layer in layers if layers is not None else quantizable_layers(model):
        gm = quantize_pt2e(copy.deepcopy(model), example_inputs, calibration, per_channel=per_channel, only=layer)
        metric = float(evaluate(gm))
        table.append(LayerSensitivity(layer=layer, metric_fp32=metric_fp32,
                                      metric_int8_only_this_layer=metric, drop=metric_fp32 - metric))
    return sorted(table, key=lambda row: row.drop, reverse=True)


def format_table(table: Sequence[LayerSensitivity]) -> str:
    """Plain-text table for error messages and logs."""
    lines = [f"{'layer':<32} {'fp32':>8} {'int8 only':>10} {'drop':>8}"]
    lines += [f"{r.layer:<32} {r.metric_fp32:>8.4f} {r.metric_int8_only_this_layer:>10.4f} {r.drop:>8.4f}"
              for r in table]
    return "\n".join(lines)


def fallback(
    model: nn.Module,
    example_inputs: tuple[Tensor, ...],
    calibration: Sequence[tuple[Tensor, ...]],
    evaluate: Callable[[nn.Module], float],
    *,
    max_metric_drop: float,
    max_float_layers: int,
    per_channel: bool = True,
    table: Sequence[LayerSensitivity] | None = None,
    always_float: Sequence[str] = (),
) -> FallbackResult:
    """Keep the most sensitive layers float, one more at a time, until the int8 model's metric is
    within `max_metric_drop` of fp32; raise StageError (with the table) if that needs more than
    `max_float_layers` float layers. `table`: a layer_sensitivity result to reuse (else computed
    only when the fully int8 model misses the budget). `always_float`: modules kept float in every
    trial (quantize.keep_float) and in the result; they do not count against max_float_layers."""
    if max_metric_drop < 0:
        raise ConfigError(f"quantize.max_metric_drop: expected >= 0, got {max_metric_drop}")
    if max_float_layers < 0:
        raise ConfigError(f"quantize.max_float_layers: expected >= 0, got {max_float_layers}")
    model = model.eval()
    metric_fp32 = float(evaluate(model))

    base = list(always_float)

    def measure(keep: list[str]) -> float:
        gm = quantize_pt2e(copy.deepcopy(model), example_inputs, calibration,
                           per_channel=per_channel, keep_float=base + keep)
        return float(evaluate(gm))

    metric = measure([])
    if metric_fp32 - metric <= max_metric_drop:
        return FallbackResult(keep_float=base, metric_fp32=metric_fp32, metric=metric,
                              drop=metric_fp32 - metric, table=list(table or []))
    if table is None:
        table = layer_sensitivity(model, example_inputs, calibration, evaluate, per_channel=per_channel)
    table = sorted(table, key=lambda row: row.drop, reverse=True)
    keep: list[str] = []
    for row in [r for r in table if r.layer not in base][:max_float_layers]:
        keep.append(row.layer)
        metric = measure(keep)
        if metric_fp32 - metric <= max_metric_drop:
            return FallbackResult(keep_float=base + keep, metric_fp32=metric_fp32, metric=metric,
                                  drop=metric_fp32 - metric, table=table)
    raise StageError(
        f"quantize: int8 drop {metric_fp32 - metric:.4f} (fp32 {metric_fp32:.4f} -> {metric:.4f}) is above "
        f"max_metric_drop={max_metric_drop} even with {len(keep)} layer(s) kept float "
        f"(max_float_layers={max_float_layers}); raise max_float_layers or max_metric_drop, or train "
        f"with scheme 'qat'.\nPer-layer sensitivity (only that layer int8):\n{format_table(table)}")
