"""Each exported file of a tiny voice-commands student, run on real synthesized clips on its own
runtime, against the PyTorch model it was made from (the export/verify library, as the pipeline does)."""

import shutil

import onnx
import pytest
import torch

from mobilekd.compress.quantize import OnnxQuant, onnx_nodes_of_modules, quantize_onnx, quantize_pt2e
from mobilekd.data.voice_commands import load
from mobilekd.errors import ConfigError
from mobilekd.export import DEFAULT_TOLERANCES, export_model
from mobilekd.export.executorch import export_executorch
from mobilekd.export.types import ExecuTorchOptions
from mobilekd.export.verify import torch_reference, verify_file
from mobilekd.models.audio import build_ds_cnn

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng not installed (.ci/run installs the Debian package)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A width-8 DS-CNN fitted for a few steps on 2 speakers, and the clips of 2 held-out ones."""
    torch.manual_seed(0)
    ds = load(tmp_path_factory.mktemp("data"), seed=0, train_speakers=2, val_speakers=1, test_speakers=1,
              unknown_per_speaker=1, silence_per_speaker=1)
    model = build_ds_cnn(12, width=8, blocks=1, dropout=0.0)
    x, y = torch.from_numpy(ds.train.inputs["waveform"]), torch.from_numpy(ds.train.targets)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), ds


@pytest.mark.timeout(1800)  # five exports and two int8 routes: ~2 min on an idle 2-core machine, >10 under load
def test_each_exported_file_on_real_clips(trained, tmp_path):
    model, ds = trained
    spec = ds.info.inputs
    feeds = [{"waveform": ds.test.inputs["waveform"][i : i + 1]} for i in range(len(ds.test))]
    ref = torch_reference(model, ["waveform"])
    results, fp32 = {}, {}
    for fmt, suffix in (("onnx", "onnx"), ("executorch", "pte"), ("coreml", "mlpackage")):
        fp32[fmt] = export_model(fmt, model, spec, ["logits"], tmp_path / f"student_fp32.{suffix}")
        results[(fmt, "fp32")] = verify_file(fp32[fmt], ref, feeds, task="classification",
                                             tolerance=DEFAULT_TOLERANCES["fp32"])
    calib = [{"waveform": ds.train.inputs["waveform"][i : i + 1]} for i in range(len(ds.train))]
    onnx_int8 = tmp_path / "student_int8.onnx"
    # Every op type ORT can quantize, but the front end kept float (the recipe's quantize.keep_float).
    quantize_onnx(tmp_path / "student_fp32.onnx", onnx_int8, options=OnnxQuant(), calibration_feeds=calib,
                  keep_float=["front"])
    front = set(onnx_nodes_of_modules(tmp_path / "student_fp32.onnx", ["front"]))
    assert {"MatMul", "Mul"} <= {n.op_type for n in onnx.load(str(tmp_path / "student_fp32.onnx")).graph.node
                                 if n.name in front}
    q = onnx.load(str(onnx_int8)).graph.node
    made_by = {o: n for n in q for o in n.output}
    dq_fed = {n.name for n in q if any(made_by.get(i) is not None and made_by[i].op_type == "DequantizeLinear"
                                       for i in n.input)}
    assert dq_fed and not dq_fed & front  # the network runs int8; no front-end op reads a dequantized tensor
    with pytest.raises(ConfigError, match="no_such"):
        onnx_nodes_of_modules(tmp_path / "student_fp32.onnx", ["no_such"])
    exported = fp32["onnx"].model_copy(update={"path": str(onnx_int8), "variant": "int8"})
    results[("onnx", "int8")] = verify_file(exported, ref, feeds, task="classification",
                                            tolerance=DEFAULT_TOLERANCES["int8"])
    batches = [(torch.from_numpy(ds.train.inputs["waveform"][i : i + 8]),) for i in range(0, len(ds.train), 8)]
    program = quantize_pt2e(model, (torch.zeros(1, 16000),), batches, keep_float=["front"])
    pte = export_executorch(program, spec, ["logits"], tmp_path / "student_int8.pte", ExecuTorchOptions(),
                            variant="int8", scheme="int8")
    # The int8 .pte against the PT2E program it was lowered from (int8 tolerance: XNNPACK's int8
    # kernels round differently from the reference ops).
    results[("executorch", "int8")] = verify_file(pte, torch_reference(program, ["waveform"]), feeds,
                                                  task="classification", tolerance=DEFAULT_TOLERANCES["int8"])
    # ... and against the float student it was quantized from: the int8 network error only.
    against_float = verify_file(pte, ref, feeds, task="classification", tolerance=DEFAULT_TOLERANCES["int8"])
    assert against_float.status == "passed", against_float.reason
    for key, parity in results.items():
        expected = "not_executed" if key[0] == "coreml" else "passed"
        assert parity.status == expected, (key, parity.reason)
        if expected == "passed":
            assert parity.metrics.samples == len(feeds) == 12  # 1 test speaker x 12 clips
    assert results[("onnx", "fp32")].metrics.max_abs_err < 1e-4
    assert results[("executorch", "fp32")].metrics.max_abs_err < 1e-4
    assert results[("onnx", "int8")].metrics.cosine >= 0.98 and results[("executorch", "int8")].metrics.cosine >= 0.98
