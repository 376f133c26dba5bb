"""Cache: an unchanged pipeline is reused; a changed field re-runs that stage and every stage after
it, none before; --force and --from re-run; a stage killed midway re-runs and finishes cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from mobilekd.pipeline import STAGES, plan, run_pipeline
from mobilekd.pipeline_file import validate
from mobilekd.store import read_json
from tests.conftest import tiny_pipeline


def lean(**overrides) -> dict:
    """Every stage on but cheap: ONNX fp32 only, no quantization, a few timed runs."""
    doc = tiny_pipeline(quantize=None, export={"formats": ["onnx"], "variants": ["fp32"]},
                        gate={"budgets": [{"metric": "bytes", "format": "onnx", "variant": "fp32", "max": 10_000_000}]},
                        bundle={"formats": ["onnx"], "variants": ["fp32"], "golden_samples": 2})
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        doc[section] = {**doc[section], key: value}
    return doc


def statuses(outcome) -> dict[str, str]:
    return {k: v["status"] for k, v in outcome.statuses.items()}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cache") / "run"
    outcome = run_pipeline(validate(lean()), run_dir=run_dir)
    return run_dir, outcome


def test_first_run_runs_everything(first_run):
    _, outcome = first_run
    expected = {name: "ran" for name in STAGES}
    expected["prune"] = expected["quantize"] = "off"
    assert statuses(outcome) == expected


def test_unchanged_pipeline_is_all_cached_and_fast(first_run):
    run_dir, _ = first_run
    t0 = time.perf_counter()
    outcome = run_pipeline(validate(lean()), run_dir=run_dir)
    seconds = time.perf_counter() - t0
    assert set(statuses(outcome).values()) <= {"cached", "off"}
    assert seconds < 10, seconds
    assert [r["state"] for r in plan(validate(lean()), run_dir) if r["state"] != "off"] == ["cached"] * 8


def test_changing_one_field_reruns_that_stage_and_after_only(first_run):
    run_dir, _ = first_run
    before = read_json(run_dir / "teacher" / "stage.json")["key"]
    outcome = run_pipeline(validate(lean(distill__epochs=1)), run_dir=run_dir)
    s = statuses(outcome)
    assert s["data"] == s["teacher"] == "cached"
    assert all(s[n] == "ran" for n in ("distill", "export", "verify", "bench", "gate", "bundle"))
    assert read_json(run_dir / "teacher" / "stage.json")["key"] == before
    # A late stage's change leaves everything before it alone.
    outcome = run_pipeline(validate(lean(distill__epochs=1, bench__min_runs=6)), run_dir=run_dir)
    s = statuses(outcome)
    assert [n for n, v in s.items() if v == "ran"] == ["bench", "gate", "bundle"]


def test_force_and_from(first_run):
    run_dir, _ = first_run
    cfg = validate(lean())
    run_pipeline(cfg, run_dir=run_dir)
    s = statuses(run_pipeline(cfg, run_dir=run_dir, from_stage="verify"))
    assert [n for n, v in s.items() if v == "ran"] == ["verify", "bench", "gate", "bundle"]
    s = statuses(run_pipeline(cfg, run_dir=run_dir, force=True))
    assert [n for n, v in s.items() if v == "ran"] == [n for n in STAGES if n not in ("prune", "quantize")]


def test_tampered_output_is_not_trusted(first_run):
    run_dir, _ = first_run
    cfg = validate(lean())
    run_pipeline(cfg, run_dir=run_dir)
    onnx_file = run_dir / "export" / "student_fp32.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:-10])  # truncated, as by a crash or a bad copy
    s = statuses(run_pipeline(cfg, run_dir=run_dir))
    assert s["distill"] == "cached" and s["export"] == "ran"


def test_killed_stage_resumes_without_corrupt_artifacts(tmp_path, write_yaml):
    """SIGKILL the run while the teacher trains, then run again: it finishes, nothing half-written."""
    doc = lean(teacher__epochs=400)
    path = write_yaml(doc)
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "mobilekd", "pipeline", "run", str(path), "--out", str(run_dir), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (run_dir / "data" / "stage.json").exists() and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)  # well inside the teacher's 400 epochs
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not (run_dir / "teacher" / "stage.json").exists()
    assert read_json(run_dir / "summary.json")["status"] == "running"  # a killed run never says passed
    doc["teacher"]["epochs"] = 2
    outcome = run_pipeline(validate(doc), run_dir=run_dir)
    s = statuses(outcome)
    assert s["data"] == "cached" and s["teacher"] == "ran" and s["bundle"] == "ran"
    leftovers = [p for p in run_dir.rglob("*") if ".tmp" in p.name]
    assert leftovers == []
    state = torch.load(run_dir / "teacher" / "teacher.pt", weights_only=True)
    assert isinstance(state, dict) and state
    assert read_json(run_dir / "summary.json")["artifacts"][0]["parity"]["status"] == "passed"
