"""Core ML weight compression of the tiny digits CNN. Core ML cannot run on Linux, so the check
is on the saved spec: which constexpr ops hold the weights, and their dtype."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mobilekd.compress.quantize import CoreMLQuant, quantize_coreml
from mobilekd.errors import MobileKDError


def _constexpr_ops(path: Path) -> dict[str, list]:
    import coremltools as ct

    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    ops: dict[str, list] = {}
    for fn in spec.mlProgram.functions.values():
        for block in fn.block_specializations.values():
            for op in block.operations:
                ops.setdefault(op.type, []).append(op)
    return ops


def test_coreml_int8_weights_and_palettize(cnn, digits, tmp_path):
    import coremltools as ct
    from coremltools.proto import MIL_pb2

    ep = torch.export.export(cnn, (digits["x_test"][:1],)).run_decompositions({})
    ml = ct.convert(ep, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                    compute_precision=ct.precision.FLOAT32, skip_model_load=True)
    fp = tmp_path / "fp.mlpackage"
    ml.save(str(fp))

    out = tmp_path / "int8.mlpackage"
    # threshold 100 < 144 (conv1: 16x1x3x3) so all three weight tensors are compressed.
    label = quantize_coreml(fp, out, options=CoreMLQuant(weight_threshold=100))
    assert label.startswith("int8 weights")
    ops = _constexpr_ops(out)
    deq = ops["constexpr_affine_dequantize"]
    assert len(deq) == 3  # conv1, conv2, fc
    for op in deq:
        assert op.attributes["quantized_data"].type.tensorType.dataType == MIL_pb2.DataType.INT8
    assert "constexpr_lut_to_dense" not in ops

    pal = tmp_path / "pal4.mlpackage"
    quantize_coreml(fp, pal, options=CoreMLQuant(scheme="palettize4", weight_threshold=100))
    assert len(_constexpr_ops(pal)["constexpr_lut_to_dense"]) == 3

    with pytest.raises(MobileKDError, match="macOS"):
        quantize_coreml(fp, tmp_path / "a8.mlpackage", options=CoreMLQuant(scheme="int8_weights_activations"))
