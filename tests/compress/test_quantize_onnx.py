"""ONNX Runtime int8 (static QDQ and dynamic) of the tiny digits CNN, run in ONNX Runtime; scheme labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mobilekd.compress.quantize import CoreMLQuant, ExecuTorchQuant, OnnxQuant, quantize_onnx, scheme_label
from mobilekd.errors import ConfigError


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


def test_scheme_labels_and_strict_options():
    assert scheme_label("executorch", ExecuTorchQuant()) == "int8 static per-channel (PT2E XNNPACKQuantizer)"
    assert scheme_label("executorch", ExecuTorchQuant(scheme="dynamic", per_channel=False),
                        keep_float=["fc"]) == "int8 dynamic per-tensor (PT2E XNNPACKQuantizer); kept float: fc"
    assert scheme_label("onnx", OnnxQuant(scheme="dynamic")) == "int8 dynamic per-channel (ONNX Runtime quantize_dynamic)"
    with pytest.raises(ConfigError):
        scheme_label("onnx", CoreMLQuant())
    with pytest.raises(ValueError):  # pydantic: unknown key refused
        OnnxQuant(calibraton="entropy")  # type: ignore[call-arg]


def test_reduce_range_defaults_to_the_host_cpu(monkeypatch, tmp_path):
    """None: 7-bit weights only on x86-64 without VNNI (ORT's u8 x s8 kernels saturate there)."""
    import platform

    from mobilekd.compress import quantize as q

    info = tmp_path / "cpuinfo"
    info.write_text("flags\t\t: fpu avx2 avx512f\n")
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert q.x86_without_vnni(info) is False  # a phone-class ARM host: never
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    for flags, expected in (("fpu avx2 avx512f", True), ("fpu avx2 avx512_vnni", False), ("fpu avx2 avx_vnni", False)):
        info.write_text(f"flags\t\t: {flags}\n")
        assert q.x86_without_vnni(info) is expected, flags
    assert q.x86_without_vnni(tmp_path / "missing") is False
    assert OnnxQuant().reduce_range is None and OnnxQuant(reduce_range=True).reduce_range is True
