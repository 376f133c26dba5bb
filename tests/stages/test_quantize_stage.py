"""The quantize stage on real digits: sensitivity table, fallback that keeps named layers float in
the saved program, and QAT; each through a tiny pipeline that stops after quantize."""

from __future__ import annotations

import torch

from mobilekd.pipeline import run_pipeline
from mobilekd.pipeline_file import validate
from mobilekd.store import read_json
from tests.conftest import stop_after, tiny_pipeline


def upto_quantize(**quantize) -> dict:
    doc = tiny_pipeline(quantize={"calibration_samples": 64, "onnx": None, "coreml": None, **quantize})
    return stop_after(doc, "quantize")


def test_sensitivity_and_fallback_keep_layers_float(tmp_path):
    # max_metric_drop 0: any int8 loss on the validation split makes the fallback keep layers float,
    # most sensitive first (tests/compress/test_sensitivity.py forces that case on a planted outlier;
    # here the plumbing is checked on whatever the real run needed).
    doc = upto_quantize(sensitivity=True, max_metric_drop=0.0, max_float_layers=4)
    outcome = run_pipeline(validate(doc), run_dir=tmp_path / "r")
    result = read_json(tmp_path / "r" / "quantize" / "stage.json")["result"]
    table = read_json(tmp_path / "r" / result["sensitivity"])
    layers = {row["layer"] for row in table}
    assert {"features.0", "features.4", "classifier"} <= layers
    assert table == sorted(table, key=lambda r: -r["drop"])  # worst first
    keep = result["keep_float"]
    assert keep == [row["layer"] for row in table[: len(keep)]]
    assert outcome.summary["models"]["student_int8"]["keep_float"] == keep
    # In the saved program, a float layer's weight is a float32 parameter; a quantized one is int8.
    program = torch.export.load(str(tmp_path / "r" / result["model"]["path"]))
    dtypes = {name: t.dtype for name, t in program.state_dict.items()}
    dtypes.update({name: t.dtype for name, t in program.constants.items() if hasattr(t, "dtype")})
    int8 = [n for n, d in dtypes.items() if d == torch.int8]
    assert int8, dtypes
    for layer in keep:
        key = layer.replace(".", "_")
        assert not any(key in n for n in int8), (layer, int8)


def test_qat_scheme_runs_and_scores(tmp_path):
    doc = upto_quantize(executorch={"scheme": "qat"}, qat_epochs=1)
    outcome = run_pipeline(validate(doc), run_dir=tmp_path / "r")
    q = outcome.summary["models"]["student_int8"]
    assert "qat" in q["scheme"].lower()
    assert 0.0 < q["metrics"]["accuracy"] <= 1.0
