"""The prune stage in a pipeline: channels really removed, a KD recovery fine-tune, and the pruned
student exports to ONNX and ExecuTorch and passes parity there."""

from __future__ import annotations

from mobilekd.pipeline import run_pipeline
from mobilekd.pipeline_file import validate
from mobilekd.store import read_json
from tests.conftest import tiny_pipeline


def test_structured_prune_shrinks_exports_and_passes_parity(tmp_path):
    doc = tiny_pipeline(
        distill={"student": "cnn", "args": {"channels": [8, 16], "hidden": 16}, "epochs": 2, "lr": 0.01},
        prune={"method": "structured", "ratio": 0.5, "finetune_epochs": 1},
        quantize=None, export={"formats": ["onnx", "executorch"], "variants": ["fp32"]},
        bench=None, gate=None, bundle=None)
    outcome = run_pipeline(validate(doc), run_dir=tmp_path / "r")
    result = read_json(tmp_path / "r" / "prune" / "stage.json")["result"]
    # The student's convs have 8 and 16 output channels; at ratio 0.5 each keeps half.
    assert result["pruned_layers"]["features.0"] == [8, 4]
    assert result["pruned_layers"]["features.4"] == [16, 8]
    assert result["params_after"] < result["params_before"] and result["macs_after"] < result["macs_before"]
    assert outcome.summary["models"]["student_pruned"]["params"] == result["params_after"]
    arts = {a["format"]: a for a in outcome.summary["artifacts"]}
    assert set(arts) == {"onnx", "executorch"}
    for a in arts.values():
        assert a["parity"]["status"] == "passed", a["parity"]
    assert "prune" in read_json(tmp_path / "r" / "verify" / "stage.json")["result"]["reference"]
