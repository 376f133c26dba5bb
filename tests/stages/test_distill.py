"""distill stage: the three losses logged per epoch, the teacher-output cache, determinism, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mobilekd.config import PipelineConfig
from mobilekd.errors import ConfigError
from mobilekd.pipeline import run_pipeline
from tests.conftest import stop_after, tiny_pipeline

pytestmark = pytest.mark.usefixtures("one_thread")


def config(**distill) -> PipelineConfig:
    doc = tiny_pipeline()
    doc["distill"].update(distill)
    return PipelineConfig.model_validate(stop_after(doc, "distill"))


ALL_LOSSES = {"hints": [{"teacher": "features.4", "student": "features.4", "weight": 0.5}],
              "relation": {"teacher": "embedding", "student": "embedding"},
              "temperature_end": 2.0, "alpha_end": 0.7}


def distill_result(run_dir: Path) -> dict:
    return json.loads((run_dir / "distill" / "stage.json").read_text())["result"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("distill") / "run"
    torch.set_num_threads(1)
    run_pipeline(config(**ALL_LOSSES), run_dir=d)
    return d


def test_each_term_is_logged_per_epoch(run_dir: Path):
    r = distill_result(run_dir)
    assert r["losses"] == ["kd", "hint:features.4->features.4", "rkd"]
    assert [h["epoch"] for h in r["history"]] == [1, 2]
    for row in r["history"]:
        assert {"loss", "kd_ce", "kd_kl", "hint_features.4->features.4_mse", "rkd_distance", "rkd_angle",
                "val_accuracy", "val_f1_macro"} <= set(row)
    # schedules: epoch 1 at the start values, epoch 2 (the last) at the end values
    # (epoch means of per-batch values, hence approx)
    assert [(h["kd_temperature"], h["kd_alpha"]) for h in r["history"]] == [pytest.approx((4.0, 0.5)),
                                                                         pytest.approx((2.0, 0.7))]
    # the adapter: 1x1 conv from the student's 8 channels to the teacher's 16, no bias
    assert r["adapter_params"] == 8 * 16
    # digits: the macro scores plus one recall per class (labels "0".."9")
    assert set(r["metrics"]) == {"accuracy", "precision_macro", "recall_macro", "f1_macro"} | {f"recall/{i}" for i in range(10)}


def test_teacher_outputs_are_cached_and_reused(run_dir: Path):
    first = distill_result(run_dir)
    assert first["teacher_cache"] == "built"
    cache = next((run_dir / ".cache" / "teacher-outputs").iterdir())
    import numpy as np

    logits = np.load(cache / "logits.npy", mmap_mode="r")
    assert isinstance(logits, np.memmap) and logits.shape == (1257, 10)  # digits: 1,257 training rows
    assert np.load(cache / "features.4.npy", mmap_mode="r").shape == (1257, 16, 4, 4)
    assert not any((run_dir / ".resume").iterdir())  # the resume checkpoint is removed when the stage ends
    run_pipeline(config(**ALL_LOSSES), run_dir=run_dir, from_stage="distill")
    second = distill_result(run_dir)
    assert second["teacher_cache"] == "hit"
    # same seed -> same metrics (losses to float32 noise: oneDNN conv kernels may sum in another order)
    assert second["metrics"] == first["metrics"]
    for a, b in zip(first["history"], second["history"]):
        assert a["val_accuracy"] == b["val_accuracy"] and a["loss"] == pytest.approx(b["loss"], rel=1e-5)


def test_without_cache_the_teacher_runs_every_batch_with_the_same_result(run_dir: Path, tmp_path: Path):
    run_pipeline(config(**ALL_LOSSES, cache_teacher=False), run_dir=run_dir, from_stage="distill")
    off = distill_result(run_dir)
    assert off["teacher_cache"] == "off"
    run_pipeline(config(**ALL_LOSSES), run_dir=run_dir, from_stage="distill")
    on = distill_result(run_dir)
    for a, b in zip(off["history"], on["history"]):
        assert a["val_accuracy"] == b["val_accuracy"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)  # float32 cache vs. live outputs


def test_unknown_hint_layer_names_close_matches(run_dir: Path):
    cfg = config(hints=[{"teacher": "feature.4", "student": "features.4"}])
    with pytest.raises(ConfigError, match=r"distill.hints.0.teacher: no module named 'feature.4'.*did you mean 'features.4'"):
        run_pipeline(cfg, run_dir=run_dir, from_stage="distill")
