"""Two real runs, built once per session and shared read-only: the tiny digits pipeline (classifier,
all three formats, fp32 + int8) and a tiny synthetic recommender (int64 inputs, ranking, vocabulary).
Tests that damage a bundle work on a copy (`bundle_copy`)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import tiny_pipeline

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # bundle_ranking_data, imported by the ranking pipeline as module:function


def _run(doc: dict, run_dir: Path) -> Path:
    from mobilekd.config import PipelineConfig
    from mobilekd.pipeline import run_pipeline

    run_pipeline(PipelineConfig.model_validate(doc), run_dir=run_dir)
    return run_dir


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    doc = tiny_pipeline(bench=None, bundle={"variants": ["fp32", "int8"], "golden_samples": 2})
    return _run(doc, tmp_path_factory.mktemp("bundle-digits"))


@pytest.fixture(scope="session")
def ranking_run(tmp_path_factory) -> Path:
    doc = {
        "name": "tiny-shop", "seed": 0,
        "data": {"dataset": "bundle_ranking_data:load"},
        "teacher": {"model": "rec_student", "args": {"dim": 8}, "epochs": 1, "lr": 0.01},
        "distill": None, "prune": None, "quantize": None,
        "export": {"formats": ["onnx", "executorch", "coreml"], "variants": ["fp32"]},
        "verify": {"samples": 10, "k": 5}, "bench": None, "gate": None,
        "bundle": {"variants": ["fp32"], "golden_samples": 3},
    }
    return _run(doc, tmp_path_factory.mktemp("bundle-shop"))


@pytest.fixture
def bundle_copy(digits_run: Path, tmp_path: Path) -> Path:
    """A private copy of the digits bundle folder, to damage."""
    return Path(shutil.copytree(digits_run / "bundle" / "bundle", tmp_path / "bundle"))
