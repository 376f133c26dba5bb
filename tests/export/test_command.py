"""export_command end to end (factory import, checkpoint, verify data, int8) and its user errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mobilekd.errors import DataError, ModelError
from mobilekd.export.command import ExportRequest, export_command, load_checkpoint, load_factory

FACTORY = '''
import torch
from torch import nn

def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))

def not_a_model():
    return 42
'''


@pytest.fixture
def factory(tmp_path, monkeypatch):
    (tmp_path / "cmdnets.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "cmdnets:build_model"


def test_export_and_verify_all_formats_with_real_data(tmp_path, factory):
    torch.manual_seed(1)
    trained = load_factory(factory)
    for p in trained.parameters():
        p.data.normal_()
    torch.save(trained.state_dict(), tmp_path / "w.pt")
    x = np.random.default_rng(0).standard_normal((20, 6)).astype(np.float32)
    np.savez(tmp_path / "samples.npz", x=x)
    results = export_command(ExportRequest(source=factory, inputs=["x:float32[1,6]"], formats=["onnx", "executorch", "coreml"],
                                           out=tmp_path / "out",
                                           checkpoint=tmp_path / "w.pt", verify_data=tmp_path / "samples.npz"))
    assert [(e.format, e.variant, p.status) for e, p in results] == [
        ("onnx", "fp32", "passed"), ("executorch", "fp32", "passed"), ("coreml", "fp32", "not_executed")]
    assert all(p.inputs == "real" for _, p in results)
    assert results[0][1].metrics.samples == 20
    assert (tmp_path / "out" / "model_fp32.onnx").is_file() and (tmp_path / "out" / "model_fp32.mlpackage").is_dir()
    # the checkpoint was loaded: the ONNX file reproduces the trained weights, not the factory's
    import onnxruntime as ort

    (onnx_out,) = ort.InferenceSession(str(tmp_path / "out" / "model_fp32.onnx")).run(None, {"x": x[:1]})
    np.testing.assert_allclose(onnx_out, trained(torch.from_numpy(x[:1])).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_random_inputs_and_int8(tmp_path, factory):
    results = export_command(ExportRequest(source=factory, inputs=["x:float32[1,6]"], formats=["onnx", "executorch"],
                                           out=tmp_path, quantize="int8"))
    assert [(e.format, e.variant) for e, _ in results] == [
        ("onnx", "fp32"), ("executorch", "fp32"), ("onnx", "int8"), ("executorch", "int8")]
    for exported, parity in results:
        assert parity.inputs == "random" and "random" in parity.reason
        assert parity.status == "passed", (exported.format, exported.variant, parity.reason)
        assert parity.tolerance.max_abs_err == (None if exported.variant == "int8" else 1e-4)
    assert "int8" in results[3][0].scheme and results[3][0].details["portable_ops"] == {}


def test_bad_factory_paths(factory):
    with pytest.raises(ModelError, match="module.path:function"):
        load_factory("cmdnets.build_model")
    with pytest.raises(ModelError, match="cannot import module 'nope_pkg.nets'"):
        load_factory("nope_pkg.nets:build")
    with pytest.raises(ModelError, match="has no attribute 'missing'"):
        load_factory("cmdnets:missing")
    with pytest.raises(ModelError, match="returned int"):
        load_factory("cmdnets:not_a_model")


def test_checkpoint_mismatch_names_keys(tmp_path, factory):
    model = load_factory(factory)
    state = model.state_dict()
    state["9.weight"] = state.pop("2.weight")
    state["0.bias"] = torch.zeros(5)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ModelError) as info:
        load_checkpoint(model, tmp_path / "bad.pt")
    message = str(info.value)
    assert "missing keys ['2.weight']" in message and "unexpected keys ['9.weight']" in message
    assert "0.bias: checkpoint (5,) vs model (16,)" in message
    with pytest.raises(ModelError, match="not found"):
        load_checkpoint(model, tmp_path / "absent.pt")


def test_verify_data_must_match_inputs(tmp_path, factory):
    np.savez(tmp_path / "s.npz", y=np.zeros((4, 6), np.float32))
    with pytest.raises(DataError, match=r"no array for input\(s\) \['x'\]"):
        export_command(ExportRequest(source=factory, inputs=["x:float32[1,6]"], formats=["onnx"],
                                     out=tmp_path, verify_data=tmp_path / "s.npz"))
    np.savez(tmp_path / "s.npz", x=np.zeros((4, 7), np.float32))
    with pytest.raises(DataError, match=r"sample shape \(7,\)"):
        export_command(ExportRequest(source=factory, inputs=["x:float32[1,6]"], formats=["onnx"],
                                     out=tmp_path, verify_data=tmp_path / "s.npz"))


DLRM = '''
import torch
from torch import nn

class DLRM(nn.Module):
    """DLRM-style: pairwise dot interactions of dense and sparse features picked with triu_indices
    of fixed sizes (not a core ATen op: ExecuTorch needs it folded into a constant)."""
    def __init__(self):
        super().__init__()
        self.bottom = nn.Linear(4, 8)
        self.emb = nn.ModuleList(nn.Embedding(20, 8) for _ in range(3))
        self.top = nn.Linear(6 + 8, 2)
    def forward(self, dense, sparse):
        x = self.bottom(dense)
        feats = torch.stack([x] + [e(sparse[:, i]) for i, e in enumerate(self.emb)], dim=1)
        inter = torch.bmm(feats, feats.transpose(1, 2))
        iu = torch.triu_indices(4, 4, offset=1)
        return self.top(torch.cat([x, inter[:, iu[0], iu[1]]], dim=1))

def build():
    torch.manual_seed(0)
    return DLRM()
'''


def test_triu_indices_model_through_executorch(tmp_path, monkeypatch):
    (tmp_path / "dlrmnets.py").write_text(DLRM)
    monkeypatch.syspath_prepend(str(tmp_path))
    rows = export_command(ExportRequest(source="dlrmnets:build", inputs=["dense:float32[1,4]", "sparse:int64[1,3]"], formats=["executorch"],
                                        out=tmp_path / "o", quantize="int8"))
    assert [(e.format, e.variant, p.status) for e, p in rows] == [
        ("executorch", "fp32", "passed"), ("executorch", "int8", "passed")], [p.reason for _, p in rows]
    assert rows[0][0].details["rewrites"] == ["constant_prop_pass"]  # folding alone was enough


def test_dynamic_int8_on_a_transformer(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=16, num_labels=3)
    transformers.BertForSequenceClassification(cfg).save_pretrained(tmp_path / "bert")
    rows = export_command(ExportRequest(source=f"hf:{tmp_path / 'bert'}", inputs=[], formats=["onnx", "executorch"],
                                        out=tmp_path / "o",
                                        quantize="int8-dynamic", task="sequence-classification"))
    assert [(e.format, e.variant, p.status) for e, p in rows] == [
        ("onnx", "fp32", "passed"), ("executorch", "fp32", "passed"),
        ("onnx", "int8", "passed"), ("executorch", "int8", "passed")], [p.reason for _, p in rows]
    assert [s.name for s in rows[0][0].inputs] == ["input_ids", "attention_mask", "token_type_ids"]
    assert rows[0][0].outputs[0].name == "logits"
    assert "dynamic" in rows[2][0].scheme and "dynamic" in rows[3][0].scheme
    assert rows[3][0].details["delegated_nodes"] > 0
