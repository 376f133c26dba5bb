"""`mobilekd gate RUN_DIR`: exit 0 when every budget holds, 1 when one fails, 2 on bad input; JUnit
and Markdown outputs. A hand-built run directory, then one real tiny pipeline run."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import yaml
from typer.testing import CliRunner

from mobilekd.cli import app
from mobilekd.store import write_json
from tests.conftest import tiny_pipeline
from tests.test_gate import SUMMARY

runner = CliRunner()


@pytest.fixture
def run(tmp_path):
    """A quickstart-like run directory: summary.json plus the resolved pipeline.yaml with a gate."""
    d = tmp_path / "run"
    write_json(d / "summary.json", SUMMARY)
    (d / "pipeline.yaml").write_text(yaml.safe_dump({"name": "handmade", "gate": {"budgets": [
        {"metric": "bytes", "format": "executorch", "variant": "int8", "max": 1000000},
        {"metric": "accuracy", "model": "student_int8", "min": 0.9}]}}))
    return d


def budget_file(tmp_path, *budgets) -> str:
    f = tmp_path / "budgets.yaml"
    f.write_text(yaml.safe_dump({"budgets": list(budgets)}))
    return str(f)


def gate(*args):
    return runner.invoke(app, ["gate", *map(str, args)])


def test_passes_with_the_runs_own_gate_section(run):
    r = gate(run)
    assert r.exit_code == 0, r.output
    assert "passed" in r.output and "bytes[executorch,int8]" in r.output  # brackets printed, not eaten as markup


def test_budget_below_the_measured_value_fails_with_exit_1(run, tmp_path):
    # measured: executorch/int8 is 13,736 B and its native p50 0.004 ms; student_int8 accuracy 0.92
    over = budget_file(tmp_path, {"metric": "bytes", "format": "executorch", "variant": "int8", "max": 13000},
                       {"metric": "latency_p50_ms", "format": "executorch", "variant": "int8",
                        "runtime": "executorch-native", "max": 1.0})
    junit, md = tmp_path / "gate.xml", tmp_path / "gate.md"
    r = gate(run, "--budget", over, "--junit", junit, "--markdown", md)
    assert r.exit_code == 1, r.output
    assert "FAILED" in r.output
    cases = ET.parse(junit).getroot().findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == ["bytes[executorch,int8]",
                                             "latency_p50_ms[executorch,int8,executorch-native]"]
    assert cases[0].find("failure").get("message") == "bytes[executorch,int8]: value 13,736 B is not <= 13,000 B"
    assert cases[1].find("failure") is None
    assert "❌ FAILED (1 of 2 checks)" in md.read_text()
    # the same budget just above the measured value passes
    ok = budget_file(tmp_path, {"metric": "bytes", "format": "executorch", "variant": "int8", "max": 13736})
    assert gate(run, "--budget", ok).exit_code == 0


@pytest.mark.parametrize("make, needle", [
    (lambda run, tmp: [tmp / "nowhere"], "is not a directory"),
    (lambda run, tmp: [(run / "summary.json").unlink(), run][1:], "summary.json' does not exist"),
    (lambda run, tmp: [(run / "summary.json").write_text("{oops"), run][1:], "not valid JSON"),
    (lambda run, tmp: [(run / "pipeline.yaml").unlink(), run][1:], "pass --budget"),
    (lambda run, tmp: [run, "--budget", tmp / "missing.yaml"], "not found"),
    (lambda run, tmp: [run, "--budget", budget_file(tmp, {"metric": "bytes", "format": "onnx", "maxx": 1})],
     "budgets[0].maxx: unknown key"),
    (lambda run, tmp: [run, "--budget", budget_file(tmp, {"metric": "bytes", "format": "executorch", "variant": "fp32",
                                                          "max": 1})], "no file with format=executorch variant=fp32"),
    (lambda run, tmp: [run, "--budget", budget_file(tmp, {"metric": "f1_macro", "model": "student", "min": 0.5})],
     "has no metric 'f1_macro'"),
])
def test_bad_input_exits_2_with_a_named_error(run, tmp_path, make, needle):
    r = gate(*make(run, tmp_path))
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert needle in r.output


def test_a_real_tiny_run_gates_against_its_measured_numbers(tmp_path):
    """One real pipeline (digits, 1 epoch each, ONNX only) gated twice: a byte budget just above the
    measured size passes, one byte below fails."""
    doc = tiny_pipeline(export={"formats": ["onnx"], "variants": ["fp32", "int8"]}, verify={"samples": 10},
                        quantize={"calibration_samples": 32, "executorch": None, "coreml": None},
                        bench={"threads": [1], "warmup": 1, "min_runs": 3, "min_seconds": 0.0, "max_seconds": 0.5,
                               "native": False, "eager": False},
                        gate={"budgets": [{"metric": "bytes", "format": "onnx", "variant": "int8", "max": 10_000_000}]},
                        bundle=None)
    doc["teacher"]["epochs"] = doc["distill"]["epochs"] = 1
    pipeline = tmp_path / "tiny.yaml"
    pipeline.write_text(yaml.safe_dump(doc))
    out = tmp_path / "tiny"
    r = runner.invoke(app, ["pipeline", "run", str(pipeline), "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    (row,) = [a for a in summary["artifacts"] if a["variant"] == "int8"]
    assert row["latency_ms"]["runtime"] == "onnxruntime" and row["macs"] > 0
    size = row["bytes"]
    assert gate(out).exit_code == 0  # its own gate section
    just_above = budget_file(tmp_path, {"metric": "bytes", "format": "onnx", "variant": "int8", "max": size},
                             {"metric": "latency_p90_ms", "format": "onnx", "variant": "int8", "max": 1000})
    assert gate(out, "--budget", just_above).exit_code == 0
    below = budget_file(tmp_path, {"metric": "bytes", "format": "onnx", "variant": "int8", "max": size - 1})
    assert gate(out, "--budget", below).exit_code == 1
