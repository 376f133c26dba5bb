"""ONNX export of each tiny net: the file is checked, simplified, keeps its names, runs in ONNX
Runtime and passes fp32 parity; options (opset, dynamic batch, .ort) take effect."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from mobilekd.errors import ExportError
from mobilekd.export.onnx import export_onnx
from mobilekd.export.runtime import open_runtime, run_file
from mobilekd.export.types import DEFAULT_TOLERANCES, OnnxOptions
from mobilekd.export.verify import verify_file
from mobilekd.store import sha256_file

from .nets import NETS, build


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory, nets):
    out = tmp_path_factory.mktemp("onnx")
    return {name: export_onnx(nets[name][0], nets[name][1], ["logits"], out / f"{name}.onnx", OnnxOptions())
            for name in NETS}


@pytest.mark.parametrize("name", list(NETS))
def test_exported_file_passes_fp32_parity(name, nets, onnx_files):
    model, specs, task, feeds, ref = nets[name]
    exported = onnx_files[name]
    parity = verify_file(exported, ref, feeds, task=task, tolerance=DEFAULT_TOLERANCES["fp32"])
    assert parity.status == "passed", parity.reason
    assert parity.metrics.samples == len(feeds)
    assert parity.metrics.max_abs_err < 1e-4
    agreement = parity.metrics.topk_overlap if task == "ranking" else parity.metrics.top1_agreement
    assert agreement == 1.0


@pytest.mark.parametrize("name", list(NETS))
def test_file_is_described_and_valid(name, nets, onnx_files):
    exported = onnx_files[name]
    proto = onnx.load(exported.path)
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == [s.name for s in nets[name][1]]
    assert [o.name for o in proto.graph.output] == ["logits"]
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    assert {o.domain or "": o.version for o in proto.opset_import}[""] == 18
    assert exported.bytes == len(open(exported.path, "rb").read())
    assert exported.sha256 == sha256_file(exported.path)
    assert exported.details["simplified"] is True and exported.details["opset"] == 18
    assert exported.outputs[0].shape[0] == 1 and exported.format == "onnx" and exported.variant == "fp32"


def test_simplify_folds_batchnorm_into_conv(onnx_files):
    # onnxsim fuses each inference BatchNorm into the preceding Conv: 3 convs, no BatchNormalization
    ops = onnx_files["cnn"].details["op_types"]
    assert ops.get("BatchNormalization", 0) == 0 and ops["Conv"] == 3


def test_recsys_takes_int64_ids(onnx_files):
    session = open_runtime("onnx", onnx_files["recsys"].path)
    scores = session.run({"ids": np.array([[1, 2, 3, 4, 5, 6, 7, 8]], dtype=np.int64)})[0]
    assert scores.shape == (1, 50)


def test_dynamic_batch_and_ort_file(tmp_path):
    model, specs = build("mlp"), NETS["mlp"][1]
    exported = export_onnx(model, specs, ["logits"], tmp_path / "mlp.onnx",
                           OnnxOptions(dynamic_batch=True, ort_format=True, simplify=False))
    assert exported.details["simplified"] is False and exported.details["dynamic_batch"] is True
    x = np.random.default_rng(0).standard_normal((5, 20)).astype(np.float32)
    (out,) = run_file("onnx", exported.path, {"x": x})
    assert out.shape == (5, 10)  # batch 5 through a graph traced at batch 2
    ort_path = tmp_path / "mlp.ort"
    assert exported.details["ort_path"] == str(ort_path) and ort_path.stat().st_size > 0
    import onnxruntime as ort

    (from_ort,) = ort.InferenceSession(str(ort_path), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(from_ort, out, rtol=1e-5, atol=1e-6)


def test_opset_below_exporter_is_converted_or_refused(tmp_path):
    model, specs = build("mlp"), NETS["mlp"][1]
    exported = export_onnx(model, specs, ["logits"], tmp_path / "mlp17.onnx", OnnxOptions(opset=17))
    assert {o.domain or "": o.version for o in onnx.load(exported.path).opset_import}[""] == 17
    # ReduceMean changed its signature at 18 and the converter cannot lower it: a clear error, no file
    with pytest.raises(ExportError, match="opset >= 18"):
        export_onnx(build("recsys"), NETS["recsys"][1], ["logits"], tmp_path / "r.onnx", OnnxOptions(opset=17))
    assert not (tmp_path / "r.onnx").exists()


def test_options_reject_out_of_range_opset():
    with pytest.raises(ValueError):
        OnnxOptions(opset=12)
    with pytest.raises(ValueError):
        OnnxOptions(opset=18, unknown=True)
