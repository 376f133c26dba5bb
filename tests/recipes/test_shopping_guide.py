"""The shopping guide recipe, end to end on a slice of the real Online Retail data.

The recipe file itself is run (pipelines/shopping_guide.yaml), shrunk with --set overrides to a few
hundred customers and one epoch, so the test checks what users run: every stage, parity of the
ONNX and ExecuTorch files at the recipe's own tolerances, and the gate's checks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mobilekd import load_pipeline
from mobilekd.pipeline import run_pipeline
from tests.conftest import REPO, shared_datasets

RECIPE = REPO / "pipelines" / "shopping_guide.yaml"
SHRINK = [
    "data.options.max_customers=300",
    "teacher.args={dim: 32, dropout: 0.1, transition: false}",
    "teacher.epochs=1",
    "distill.epochs=1",
    "export.formats=[onnx, executorch]",
    "bundle.formats=[onnx, executorch]",
    "verify.samples=30",
    "bench.min_runs=5",
    "bench.min_seconds=0.05",
    "bench.max_seconds=0.5",
    "bench.native=false",
]


def test_recipe_file_is_valid_and_phone_sized():
    cfg = load_pipeline(RECIPE)
    assert RECIPE.resolve() == (REPO / "mobilekd" / "recipes" / "shopping_guide.yaml").resolve()
    assert cfg.data.dataset == "online_retail" and cfg.prune is None
    assert cfg.distill is not None and cfg.distill.student == "rec_student"
    # the task users mean: full training data, a history of at least 50 lines, every relevant item
    opts = cfg.data.options
    assert opts["history"] >= 50 and "max_train_examples" not in opts and "max_relevant" not in opts
    assert cfg.teacher.early_stopping_patience is not None
    limits = {(b.metric, b.format, b.variant): b.max for b in cfg.gate.budgets}
    assert limits[("bytes", "executorch", "int8")] == 1_000_000
    assert limits[("latency_p90_ms", "executorch", "int8")] == 5
    assert cfg.verify.tolerances["fp32"].min_agreement == 0.99


@pytest.mark.skipif(shared_datasets() is None or not (shared_datasets() / "online-retail").is_dir(),
                    reason="needs the shared datasets folder with online-retail/ (../shared/datasets or $MOBILEKD_DATA_DIR)")
def test_recipe_runs_end_to_end_on_a_slice(tmp_path: Path):
    cfg = load_pipeline(RECIPE, SHRINK)
    outcome = run_pipeline(cfg, run_dir=tmp_path / "run", data_dir=shared_datasets())
    s = outcome.summary
    ran = {name: st["status"] for name, st in s["stages"].items()}
    assert ran["prune"] == "off"
    assert all(ran[n] == "ran" for n in ("data", "teacher", "distill", "quantize", "export", "verify", "bench", "gate", "bundle"))
    parity = {(a["format"], a["variant"]): a["parity"] for a in s["artifacts"]}
    assert set(parity) == {("onnx", "fp32"), ("onnx", "int8"), ("executorch", "fp32"), ("executorch", "int8")}
    for (fmt, variant), p in parity.items():
        assert p["status"] == "passed", (fmt, variant, p)
    for fmt in ("onnx", "executorch"):  # fp32 files rank exactly like PyTorch at the recipe's tolerance
        assert parity[(fmt, "fp32")]["topk_overlap"] >= 0.99
    for model in ("teacher", "student", "student_int8"):  # the shopping guide's split (Li et al. 2023)
        assert {"ndcg@10", "ndcg@10_new", "ndcg@10_repeat", "recall@10_new"} <= set(s["models"][model]["metrics"])
    names = [c["name"] for c in s["gate"]["checks"]]
    assert len(names) == len(cfg.gate.budgets)
    # Size budgets hold at any data size: the int8 student of a 300-customer catalogue is far below 1 MB.
    sizes = [c for c in s["gate"]["checks"] if c["name"].startswith("bytes")]
    assert sizes and all(c["passed"] for c in sizes)


@pytest.mark.skipif(shared_datasets() is None or not (shared_datasets() / "online-retail").is_dir(),
                    reason="needs the shared datasets folder with online-retail/ (../shared/datasets or $MOBILEKD_DATA_DIR)")
def test_qat_trains_on_whole_next_invoices(tmp_path: Path):
    """QAT fine-tunes with the KD loss against next-invoice targets: each (B, R) row of item ids
    becomes the invoice's distribution, as in the distill stage (raw rows used to crash the loss)."""
    later_off = [f"{stage}=null" for stage in ("export", "verify", "bench", "gate", "bundle")]
    cfg = load_pipeline(RECIPE, SHRINK + later_off + ["quantize.executorch={scheme: qat}", "quantize.qat_epochs=1",
                                                     "quantize.onnx=null", "quantize.coreml=null",
                                                     "quantize.sensitivity=false"])
    s = run_pipeline(cfg, run_dir=tmp_path / "run", data_dir=shared_datasets()).summary
    assert s["stages"]["quantize"]["status"] == "ran"
    m = s["models"]["student_int8"]["metrics"]
    assert 0.0 < m["ndcg@10"] <= 1.0 and "ndcg@10_new" in m
