"""Each quantization route on the tiny digits CNN, checked in the runtime that will run it."""

from __future__ import annotations

import operator
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import calibration_batches
from mobilekd.compress.quantize import (
    CoreMLQuant,
    ExecuTorchQuant,
    OnnxQuant,
    convert_qat,
    prepare_qat,
    quantize_coreml,
    quantize_onnx,
    quantize_pt2e,
    scheme_label,
)
from mobilekd.errors import ConfigError, MobileKDError, StageError

QDQ_TARGETS = ("quantize_per_tensor", "quantize_per_channel", "dequantize_per_tensor", "dequantize_per_channel")


def _attr(gm: torch.fx.GraphModule, target: str) -> torch.Tensor:
    return operator.attrgetter(target)(gm)  # get_attr targets are dotted paths like "fc.weight"


def _agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.argmax(1) == b.argmax(1)).float().mean().item()


def test_pt2e_static_runs_eagerly_and_lowers_to_delegated_int8_pte(cnn, digits, tmp_path):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    x_test = digits["x_test"]
    with torch.no_grad():
        fp32 = cnn(x_test)
    # The fixture's model must be a real classifier, else agreement means nothing.
    assert (fp32.argmax(1) == digits["y_test"]).float().mean() > 0.85

    gm = quantize_pt2e(cnn, (x_test[:1],), calibration_batches(digits))
    targets = {str(n.target) for n in gm.graph.nodes if n.op == "call_function"}
    assert any("quantize_per_tensor" in t for t in targets)
    assert any("dequantize_per_channel" in t for t in targets)  # per-channel weights by default
    with torch.no_grad():
        eager = gm(x_test)  # whole test split in one batch: the batch axis stayed dynamic
    assert _agreement(eager, fp32) >= 0.95

    program = to_edge_transform_and_lower(
        torch.export.export(gm, (x_test[:1],)), partitioner=[XnnpackPartitioner()]).to_executorch()
    top = [n for n in program.exported_program().graph.nodes if n.op == "call_function"]
    # Fully delegated: one XNNPACK call (plus the getitem of its output), no int8 op left outside.
    assert [str(n.target) for n in top if "getitem" not in str(n.target)] == ["executorch_call_delegate"]
    pte = tmp_path / "m.pte"
    pte.write_bytes(program.buffer)
    method = Runtime.get().load_program(pte).load_method("forward")
    outs = torch.cat([method.execute((x_test[i:i + 1],))[0] for i in range(len(x_test))])
    assert _agreement(outs, fp32) >= 0.9


def test_pt2e_keep_float_leaves_that_layer_unquantized(cnn, digits):
    gm = quantize_pt2e(cnn, (digits["x_test"][:1],), calibration_batches(digits, n=2), keep_float=["fc"])
    linear = [n for n in gm.graph.nodes if n.target == torch.ops.aten.linear.default]
    assert len(linear) == 1
    # fc's weight feeds linear directly as a float32 parameter, not through a dequantize.
    weight = linear[0].args[1]
    assert weight.op == "get_attr"
    assert _attr(gm, weight.target).dtype == torch.float32
    # ... while conv weights are int8 tensors behind dequantize_per_channel.
    int8_params = [_attr(gm, n.target) for n in gm.graph.nodes
                   if n.op == "get_attr" and _attr(gm, n.target).dtype == torch.int8]
    assert len(int8_params) == 2  # conv1 and conv2 weights


def test_pt2e_dynamic_quantizes_weights_only(cnn, digits):
    gm = quantize_pt2e(cnn, (digits["x_test"][:1],), [], scheme="dynamic")
    targets = [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]
    assert any("choose_qparams" in t for t in targets)  # activation ranges computed at run time
    # Dynamic XNNPACK config covers Linear only: fc weight is int8, the two conv weights float32.
    params = {n.target: _attr(gm, n.target) for n in gm.graph.nodes if n.op == "get_attr"}
    assert params["conv1.weight"].dtype == params["conv2.weight"].dtype == torch.float32
    int8 = [t for t in params.values() if t.dtype == torch.int8]
    assert len(int8) == 1 and int8[0].shape == (10, 32)
    # The weight scale came from a real observation, not the observer default of 1.0
    # (with scale 1.0 every |w| < 0.5 would round to 0, and agreement fell to ~0.7).
    assert int8[0].abs().max() == 127
    with torch.no_grad():
        assert _agreement(gm(digits["x_test"]), cnn(digits["x_test"])) >= 0.95


def test_qat_prepare_train_convert(cnn, digits):
    prepared = prepare_qat(cnn, (digits["x_train"][:2],))
    opt = torch.optim.SGD(prepared.parameters(), lr=1e-3)
    for i in range(3):
        xb, yb = digits["x_train"][i * 32:(i + 1) * 32], digits["y_train"][i * 32:(i + 1) * 32]
        opt.zero_grad()
        torch.nn.functional.cross_entropy(prepared(xb), yb).backward()
        opt.step()
    gm = convert_qat(prepared)
    with torch.no_grad():
        assert _agreement(gm(digits["x_test"]), cnn(digits["x_test"])) >= 0.85


def test_pt2e_rejects_bad_input(cnn, digits):
    x = (digits["x_test"][:1],)
    with pytest.raises(ConfigError, match="no module named"):
        quantize_pt2e(cnn, x, calibration_batches(digits, n=1), keep_float=["conv9"])
    with pytest.raises(ConfigError, match="qat"):
        quantize_pt2e(cnn, x, calibration_batches(digits, n=1), scheme="qat")  # type: ignore[arg-type]
    with pytest.raises(StageError, match="calibration"):
        quantize_pt2e(cnn, x, [])


def test_onnx_static_qdq_smaller_and_runs(cnn, digits, tmp_path):
    import onnx
    import onnxruntime as ort

    fp32 = tmp_path / "fp32.onnx"
    torch.onnx.export(cnn, (digits["x_test"][:1],), str(fp32), input_names=["x"], output_names=["logits"],
                      dynamo=True, external_data=False)
    feeds = [{"x": digits["x_train"][i:i + 1].numpy()} for i in range(32)]
    out = tmp_path / "int8.onnx"
    label = quantize_onnx(fp32, out, options=OnnxQuant(), calibration_feeds=feeds)
    assert label == "int8 static QDQ per-channel, minmax calibration (ONNX Runtime quantize_static)"
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # ~5.1k weights (conv1 160 + conv2 4,640 + fc 330): ~20.5 KB as float32, ~5 KB as int8 plus
    # per-channel scales and graph overhead; the measured pair is ~29 KB -> ~16 KB.
    assert out.stat().st_size < 0.75 * fp32.stat().st_size
    x = digits["x_test"].numpy()
    q, f = ort.InferenceSession(str(out)), ort.InferenceSession(str(fp32))
    qa = np.concatenate([q.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))]).argmax(1)
    fa = np.concatenate([f.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))]).argmax(1)
    assert (qa == fa).mean() >= 0.95
    assert not list(tmp_path.glob(".int8.*"))  # atomic write left no temporary behind

    dyn = tmp_path / "dyn.onnx"
    quantize_onnx(fp32, dyn, options=OnnxQuant(scheme="dynamic"), calibration_feeds=[])
    assert "DynamicQuantizeLinear" in {n.op_type for n in onnx.load(str(dyn)).graph.node}


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


def test_scheme_labels_and_strict_options():
    assert scheme_label("executorch", ExecuTorchQuant()) == "int8 static per-channel (PT2E XNNPACKQuantizer)"
    assert scheme_label("executorch", ExecuTorchQuant(scheme="dynamic", per_channel=False),
                        keep_float=["fc"]) == "int8 dynamic per-tensor (PT2E XNNPACKQuantizer); kept float: fc"
    assert scheme_label("onnx", OnnxQuant(scheme="dynamic")) == "int8 dynamic per-channel (ONNX Runtime quantize_dynamic)"
    with pytest.raises(ConfigError):
        scheme_label("onnx", CoreMLQuant())
    with pytest.raises(ValueError):  # pydantic: unknown key refused
        OnnxQuant(calibraton="entropy")  # type: ignore[call-arg]
