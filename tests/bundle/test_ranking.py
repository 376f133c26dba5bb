"""A recommender's bundle: int64 item-id inputs, raw scores, an item vocabulary."""

from __future__ import annotations

from pathlib import Path

from mobilekd.bundle.verify import verify_bundle
from mobilekd.store import read_json


def test_recommender_bundle_verifies(ranking_run: Path) -> None:
    report = verify_bundle(ranking_run / "bundle" / "bundle.zip")
    assert report.ok, report.failures
    status = {c.name: c.status for c in report.checks}
    assert status["golden models/student_fp32.onnx"] == "passed"
    assert status["golden models/student_fp32.pte"] == "passed"
    assert status["golden models/student_fp32.mlpackage"] == "not_executed"


def test_recommender_manifest_and_golden(ranking_run: Path) -> None:
    root = ranking_run / "bundle" / "bundle"
    m = read_json(root / "manifest.json")
    assert m["task"] == "ranking"
    assert m["files"][0]["inputs"][0] == {"name": "items", "dtype": "int64", "shape": [1, 5], "low": 0.0, "high": 24.0}
    assert m["files"][0]["outputs"][0]["name"] == "scores"
    assert m["postprocessing"]["activation"] == "none" and m["postprocessing"]["top_k"] == 5  # verify.k
    assert m["postprocessing"]["details"]["exclude_ids"] == [0, 1]
    assert m["vocabulary"] == {"kind": "items", "path": "vocabulary.json", "size": 24}
    assert read_json(root / "vocabulary.json")[7] == {"id": 7, "stock_code": "SKU007", "description": "item 7"}
    assert m["gate"] is None and set(m["metrics"]) == {"teacher"}
    golden = read_json(root / "golden.json")
    assert golden["inputs"][0]["items"]["dtype"] == "int64" and golden["inputs"][0]["items"]["shape"] == [1, 5]
    assert all(e["agreement"] == "topk" and e["k"] == 5 for e in golden["expected"])
    card = (root / "MODEL_CARD.md").read_text()
    assert "recommender that scores 24 items" in card and "as an `.int32` MLMultiArray" in card
