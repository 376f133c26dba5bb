"""The quickstart end to end with tiny epoch counts: every stage, six artifacts, real parity."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mobilekd.cli import app
from mobilekd.pipeline_file import builtin_path

runner = CliRunner()

FAST = ["--set", "teacher.epochs=2", "--set", "distill.epochs=3", "--set", "verify.samples=40",
        "--set", "bench.min_runs=5", "--set", "bench.min_seconds=0.05", "--set", "bench.warmup=2",
        "--set", "quantize.calibration_samples=32"]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("qs") / "run"
    result = runner.invoke(app, ["pipeline", "run", str(builtin_path()), "--out", str(run_dir),
                                 "--set", "gate.budgets=[]", *FAST])
    return run_dir, result


def test_quickstart_runs_and_prints_table(quickstart):
    run_dir, result = quickstart
    assert result.exit_code == 0, result.output
    assert "student_int8" in result.output and "gate" in result.output
    for f in ("pipeline.yaml", "summary.json", "report.html", "bundle/bundle.zip"):
        assert (run_dir / f).exists(), f


def test_summary_contract(quickstart):
    run_dir, _ = quickstart
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["pipeline"] == "quickstart"
    assert set(s["stages"]) == {"data", "teacher", "distill", "prune", "quantize", "export", "verify", "bench", "gate", "bundle"}
    assert s["stages"]["prune"]["status"] == "off"
    for model in ("teacher", "student", "student_int8"):
        assert 0.0 <= s["models"][model]["metrics"]["accuracy"] <= 1.0
        assert s["models"][model]["params"] > 0
    assert s["models"]["student"]["params"] < s["models"]["teacher"]["params"]
    arts = {(a["format"], a["variant"]): a for a in s["artifacts"]}
    assert set(arts) == {(f, v) for f in ("onnx", "executorch", "coreml") for v in ("fp32", "int8")}
    for (fmt, _), a in arts.items():
        assert a["bytes"] > 0 and len(a["sha256"]) == 64 and (run_dir / a["path"]).exists()
        assert a["parity"]["status"] == ("not_executed" if fmt == "coreml" else "passed"), a["parity"]
    assert arts[("executorch", "int8")]["bytes"] < arts[("executorch", "fp32")]["bytes"]
    # every executable file scored on its own runtime over the test split; CoreML (Linux) never is
    student = s["models"]["student"]["metrics"]["accuracy"]
    for (fmt, variant), a in arts.items():
        if fmt == "coreml":
            assert "metrics" not in a
            continue
        assert set(a["metrics"]) >= {"accuracy"}
        # fp32 files compute the student's function: same test accuracy to within one digit in 360
        if variant == "fp32":
            assert abs(a["metrics"]["accuracy"] - student) < 1 / 300, (fmt, a["metrics"], student)
    assert arts[("onnx", "fp32")]["latency_ms"]["p90"] >= arts[("onnx", "fp32")]["latency_ms"]["p50"] > 0
    assert s["gate"] == {"passed": True, "checks": []}


def test_gate_failure_exits_1(quickstart, write_yaml):
    """Same run, a budget below what was measured: every stage but gate and bundle is cached."""
    run_dir, _ = quickstart
    budget = "gate.budgets=[{metric: bytes, format: executorch, variant: int8, max: 10}]"
    result = runner.invoke(app, ["pipeline", "run", str(builtin_path()), "--out", str(run_dir),
                                 "--set", budget, *FAST])
    assert result.exit_code == 1, result.output
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["gate"]["passed"] is False
    assert s["stages"]["export"]["status"] == "cached" and s["stages"]["gate"]["status"] == "ran"
    check = s["gate"]["checks"][0]
    assert check["limit"] == 10 and check["value"] > 10 and check["passed"] is False
