"""Shared fixtures: tiny pipelines on the real digits data, run once per session where possible."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from mobilekd.pipeline import STAGES

REPO = Path(__file__).resolve().parents[1]


def shared_datasets() -> Path | None:
    """The data directory CI points at (../shared/datasets), or $MOBILEKD_DATA_DIR."""
    env = os.environ.get("MOBILEKD_DATA_DIR")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "datasets"]:
        if cand.is_dir():
            return cand
    return None


@pytest.fixture
def write_yaml(tmp_path: Path):
    def _write(doc, name: str = "pipeline.yaml") -> Path:
        p = tmp_path / name
        p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
        return p

    return _write


STAGE_ORDER = tuple(STAGES)


@pytest.fixture
def one_thread():
    """One torch thread: on a shared CPU, faster than two contended ones for tiny models."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def stop_after(doc: dict, last: str) -> dict:
    """Switch off every stage after `last`, for tests of one stage."""
    for stage in STAGE_ORDER[STAGE_ORDER.index(last) + 1 :]:
        doc[stage] = None
    return doc


def tiny_pipeline(**overrides) -> dict:
    """The quickstart shrunk to seconds: 2 teacher and 2 student epochs, few samples."""
    doc = {
        "name": "tiny",
        "seed": 0,
        "data": {"dataset": "digits"},
        "teacher": {"model": "cnn", "args": {"channels": [8, 16], "hidden": 32}, "epochs": 2, "lr": 0.01},
        "distill": {"student": "cnn", "args": {"channels": [4, 8], "hidden": 16}, "epochs": 2, "lr": 0.01},
        "prune": None,
        "quantize": {"calibration_samples": 32},
        "verify": {"samples": 20},
        "bench": {"threads": [1], "warmup": 2, "min_runs": 5, "min_seconds": 0.05, "max_seconds": 1, "native": False,
                  "eager": False},
        "gate": {"budgets": [{"metric": "bytes", "format": "executorch", "variant": "int8", "max": 1000000}]},
        "bundle": {"variants": ["int8"], "golden_samples": 2},
    }
    for k, v in overrides.items():
        doc[k] = v
    return doc
