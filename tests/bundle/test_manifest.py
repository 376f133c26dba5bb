"""The manifest as built, its schema, and the model card rendered from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobilekd.bundle.manifest import load_schema, schema_errors
from mobilekd.store import read_json


def test_built_manifest_is_valid_and_complete(digits_run: Path) -> None:
    m = read_json(digits_run / "bundle" / "bundle" / "manifest.json")
    assert schema_errors(m) == []
    assert m["schema_version"] == 1 and m["pipeline"]["name"] == "tiny"
    assert {(f["format"], f["variant"]) for f in m["files"]} == {
        (fmt, v) for fmt in ("onnx", "executorch", "coreml") for v in ("fp32", "int8")}
    onnx = next(f for f in m["files"] if f["format"] == "onnx" and f["variant"] == "int8")
    assert onnx["min_runtime"]["opset"] == 18 and onnx["min_runtime"]["min_version"] == "1.14"
    coreml = next(f for f in m["files"] if f["format"] == "coreml")
    assert coreml["min_runtime"]["min_version"] == "iOS17"  # export.coreml.minimum_deployment_target default
    assert coreml["parity"]["status"] == "not_executed"
    assert m["files"][0]["inputs"][0] == {"name": "image", "dtype": "float32", "shape": [1, 1, 8, 8], "low": 0.0, "high": 1.0}
    assert m["preprocessing"]["layout"] == "NCHW"
    assert m["postprocessing"] == {"output": "logits", "activation": "softmax", "top_k": 1,
                                   "details": {"output": "logits over labels; argmax is the digit"}}
    assert m["vocabulary"] == {"kind": "labels", "path": "labels.json", "size": 10}
    assert set(m["metrics"]) == {"teacher", "student", "student_int8"}
    assert m["gate"]["passed"] is True and m["gate"]["checks"][0]["name"] == "bytes[executorch,int8]"
    assert [a["role"] for a in m["assets"]] == ["labels", "golden", "model_card"]
    golden = read_json(digits_run / "bundle" / "bundle" / "golden.json")
    by = {e["path"]: e for e in golden["expected"]}
    assert by["models/student_int8.mlpackage"]["executed"] is False
    assert by["models/student_int8.mlpackage"]["source"] == "pytorch"
    assert by["models/student_fp32.onnx"]["tolerance"]["max_abs_err"] == 1e-4  # DEFAULT_TOLERANCES["fp32"]
    assert by["models/student_int8.pte"]["tolerance"]["min_cosine"] == 0.98  # DEFAULT_TOLERANCES["int8"]


@pytest.mark.parametrize("path,ok", [("models/a.onnx", True), ("a..b.json", True), ("../a", False),
                                     ("models/../../a", False), ("/etc/a", False), ("C:/a", False), ("..\\a", False)])
def test_schema_refuses_paths_leaving_the_bundle(path: str, ok: bool) -> None:
    import jsonschema

    schema = load_schema()
    validator = jsonschema.Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/relpath"})
    assert validator.is_valid(path) is ok


def test_model_card_says_what_how_and_limits(digits_run: Path) -> None:
    card = (digits_run / "bundle" / "bundle" / "MODEL_CARD.md").read_text()
    for text in ("## What it does", "classifier over 10 classes", "## Data it learned from", "CC BY 4.0",
                 "## Metrics", "| student_int8 |", "## Budgets", "All budgets met: **yes**", "## Limits",
                 "OrtSession", "org.pytorch.executorch.Module", "MLModel", "student_int8.mlpackage",
                 'longArrayOf(1, 1, 8, 8)'):
        assert text in card, text
