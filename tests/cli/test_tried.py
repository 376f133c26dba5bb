"""Each bullet of issue 14's "Tried" list, as a new user hits it: the exit code and the message.

Exit codes: 0 passed, 1 a budget/parity check failed, 2 the user's input or code, 3 a mobilekd bug.
A 2 or 3 is one short screen naming what failed and where the full traceback is; never a bare one.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from mobilekd.cli import app
from tests.conftest import stop_after, tiny_pipeline
from tests.pipeline.userpkg import write_userpkg

runner = CliRunner()


@pytest.fixture(scope="module")
def pkg(tmp_path_factory):
    return write_userpkg(tmp_path_factory.mktemp("code"), "userpkg_tried")


def run(path, out, *extra):
    return runner.invoke(app, ["pipeline", "run", str(path), "--out", str(out), "--quiet", *extra])


def validate(path, *extra):
    return runner.invoke(app, ["pipeline", "validate", str(path), *extra])


def check(result, code, *needles):
    out = result.output
    assert result.exit_code == code, out
    assert "Traceback" not in out
    for n in needles:
        assert n in out, f"{n!r} not in:\n{out}"
    return out


def early(**sections):
    """A pipeline that stops after distill: user errors surface before or during these stages."""
    doc = stop_after(tiny_pipeline(), "distill")
    for k, v in sections.items():
        doc[k] = {**(doc.get(k) or {}), **v}
    return doc


# -- a crash looks like a missed budget --------------------------------------------------------------

def test_loader_returning_a_tuple(pkg, write_yaml, tmp_path):
    r = run(write_yaml(early(data={"dataset": f"{pkg}.data:load_tuple"})), tmp_path / "r")
    out = check(r, 2, f"data.dataset: {pkg}.data:load_tuple returned a tuple", "expected a mobilekd.data.Dataset",
                "in stage: data")
    assert "error.log" in out
    assert (tmp_path / "r" / "logs" / "error.log").is_file()


def test_loader_float64_arrays(pkg, write_yaml, tmp_path):
    r = run(write_yaml(early(data={"dataset": f"{pkg}.data:load_float64"})), tmp_path / "r")
    check(r, 2, "input 'image' has dtype float64; expected float32", "in stage: data")


def test_loader_labels_out_of_range(pkg, write_yaml, tmp_path):
    r = run(write_yaml(early(data={"dataset": f"{pkg}.data:load_labels_out_of_range"})), tmp_path / "r")
    check(r, 2, "targets range 0..42; expected labels in [0, 10)")


def test_factory_raising_valueerror(pkg, write_yaml, tmp_path):
    r = run(write_yaml(early(distill={"student": f"{pkg}.nets:build_bad", "args": {}})), tmp_path / "r")
    out = check(r, 2, f"distill.student: {pkg}.nets:build_bad raised ValueError: width must be even, got 7",
                "in stage: validate", "exception: ValueError: width must be even, got 7")
    log = (tmp_path / "r" / "logs" / "error.log").read_text()
    assert "Traceback" in log and "build_bad" in log  # the user's own frame is in the full traceback
    assert not (tmp_path / "r" / "teacher" / "stage.json").exists()  # refused before the teacher trained
    assert "full traceback:" in out


def test_builtin_model_with_negative_hidden(write_yaml, tmp_path):
    doc = early(teacher={"args": {"channels": [8, 16], "hidden": -5}})
    check(validate(write_yaml(doc)), 2, "teacher.model: cannot build 'cnn' with args", "hidden")


def test_builtin_model_with_unknown_argument(write_yaml):
    check(validate(write_yaml(early(teacher={"args": {"widht": 3}}))), 2, "takes no argument(s) widht", "channels")


def test_student_returning_a_tuple(pkg, write_yaml):
    r = validate(write_yaml(early(distill={"student": f"{pkg}.nets:build_tuple", "args": {}})))
    check(r, 2, f"distill.student: '{pkg}.nets:build_tuple' returned a tuple of 2 on a real batch",
          "expected one float tensor of shape (2, 10)")


def test_export_wrong_input_shape(pkg, tmp_path):
    r = runner.invoke(app, ["export", f"{pkg}.nets:build_tuple_free", "--input", "image:float32[1,3]",
                            "--formats", "onnx", "--out", str(tmp_path / "e")])
    check(r, 2, "has no attribute 'build_tuple_free'")
    (tmp_path / "m.py").write_text("import torch\ndef build():\n    return torch.nn.Linear(64, 10)\n")
    sys.path.insert(0, str(tmp_path))
    try:
        r = runner.invoke(app, ["export", "m:build", "--input", "x:float32[1,3]", "--formats", "onnx",
                                "--out", str(tmp_path / "e")])
    finally:
        sys.path.remove(str(tmp_path))
    check(r, 2, "--input x:float32[1,3]: m:build failed on inputs of these shapes with RuntimeError")


def test_internal_error_is_exit_3_with_log(write_yaml, tmp_path, monkeypatch):
    def boom(cfg, ctx):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("mobilekd.stages.teacher.run", boom)
    path = write_yaml(early())
    out = check(run(path, tmp_path / "r"), 3, "internal error in stage teacher", "ZeroDivisionError: division by zero",
                "logs/error.log")
    assert "bug" in out
    assert "ZeroDivisionError" in (tmp_path / "r" / "logs" / "error.log").read_text()
    summary = yaml.safe_load((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "error" and summary["error"]["stage"] == "teacher"
    debug = runner.invoke(app, ["--debug", "pipeline", "run", str(path), "--out", str(tmp_path / "r"), "--quiet"])
    assert debug.exit_code == 3 and "Traceback (most recent call last)" in debug.output


# -- validation passes what the run refuses later ---------------------------------------------------

def test_prune_taylor_refused(write_yaml):
    check(validate(write_yaml({**tiny_pipeline(), "prune": {"importance": "taylor"}}), "--no-models"), 2,
          "prune.importance: 'taylor'", "l1, l2 or random")


def test_coreml_int8_weights_activations_refused(write_yaml):
    doc = tiny_pipeline(quantize={"coreml": {"scheme": "int8_weights_activations"}})
    check(validate(write_yaml(doc), "--no-models"), 2, "quantize.coreml.scheme: 'int8_weights_activations'",
          "int8_weights")


def test_misspelled_import_path_refused(pkg, write_yaml, tmp_path):
    doc = early(distill={"student": f"{pkg}.nets:build_studnet"})
    check(validate(write_yaml(doc), "--no-models"), 2, "distill.student", "has no attribute 'build_studnet'")
    r = run(write_yaml(doc), tmp_path / "r")
    check(r, 2, "build_studnet")
    assert not (tmp_path / "r" / "teacher").exists()  # found before the teacher trained


def test_misspelled_hint_and_relation_layers_name_their_key(write_yaml):
    doc = early(distill={"hints": [{"teacher": "classifer", "student": "classifier"}]})
    check(validate(write_yaml(doc)), 2, "distill.hints.0.teacher: no module named 'classifer'", "did you mean")
    doc = early(distill={"relation": {"teacher": "embedding", "student": "embeding"}})
    check(validate(write_yaml(doc)), 2, "distill.relation.student: no module named 'embeding'")


def test_budget_naming_unknown_model(write_yaml):
    doc = tiny_pipeline(gate={"budgets": [{"metric": "accuracy", "model": "studnet_int8", "min": 0.9}]})
    check(validate(write_yaml(doc), "--no-models"), 2, "gate.budgets.0", "'studnet_int8' is not produced",
          "student_int8")


def test_budget_naming_file_that_will_not_be_exported(write_yaml):
    doc = tiny_pipeline(quantize=None)
    check(validate(write_yaml(doc), "--no-models"), 2, "gate.budgets.0 (bytes[executorch,int8])",
          "no exported file has format=executorch variant=int8")


def test_bad_dataset_option_value(write_yaml):
    out = check(validate(write_yaml(early(data={"options": {"val_fraction": 1.5}})), "--no-models"), 2,
                "data.options.val_fraction: must be < 1.0, got 1.5")
    assert "input_value" not in out and "pydantic" not in out  # no raw pydantic dump


def test_budget_min_and_max_swapped(write_yaml):
    doc = tiny_pipeline(gate={"budgets": [{"metric": "accuracy", "model": "student_int8", "max": 0.9}]})
    check(validate(write_yaml(doc), "--no-models"), 2, "sets max: 0.9, but higher accuracy is better",
          "direction: upper")
    doc["gate"]["budgets"][0]["direction"] = "upper"
    assert validate(write_yaml(doc), "--no-models").exit_code == 0


# -- a failed run leaves a summary that says "passed" -----------------------------------------------

def test_failed_gate_status_and_no_bundle(write_yaml, tmp_path):
    """A run that passes, then the same directory with a budget that fails: status failed, exit 1,
    the old report/bundle moved to .previous/, and no new bundle (unless bundle.on_gate_failure)."""
    doc = tiny_pipeline(quantize=None, export={"formats": ["onnx"], "variants": ["fp32"]}, bench=None,
                        verify={"samples": 10},
                        gate={"budgets": [{"metric": "bytes", "format": "onnx", "variant": "fp32", "max": 10_000_000}]},
                        bundle={"formats": ["onnx"], "variants": ["fp32"], "golden_samples": 1})
    out = tmp_path / "r"
    r = run(write_yaml(doc), out)
    assert r.exit_code == 0, r.output
    assert "status: passed" in r.output
    assert yaml.safe_load((out / "summary.json").read_text())["status"] == "passed"
    assert (out / "bundle" / "bundle").is_dir()
    doc["gate"]["budgets"][0]["max"] = 10  # 10 bytes: fails
    r = run(write_yaml(doc), out)
    check(r, 1, "status: failed")
    summary = yaml.safe_load((out / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["gate"]["passed"] is False
    assert summary["stages"]["bundle"]["status"] == "skipped"
    assert not (out / "bundle" / "bundle").exists()
    assert (out / ".previous" / "summary.json").is_file() and (out / ".previous" / "report.html").is_file()
    assert "failed" in (out / "report.html").read_text()
    doc["bundle"]["on_gate_failure"] = True
    r = run(write_yaml(doc), out)
    check(r, 1, "status: failed")
    assert (out / "bundle" / "bundle").is_dir()


def test_error_midway_leaves_status_error(pkg, write_yaml, tmp_path):
    out = tmp_path / "r"
    (out).mkdir()
    (out / "summary.json").write_text('{"status": "passed", "gate": {"passed": true}}')
    (out / "report.html").write_text("<html>old</html>")
    r = run(write_yaml(early(data={"dataset": f"{pkg}.data:load_tuple"})), out)
    check(r, 2)
    assert yaml.safe_load((out / "summary.json").read_text())["status"] == "error"
    assert not (out / "report.html").exists() and (out / ".previous" / "report.html").is_file()


# -- non-UTF-8 file -------------------------------------------------------------------------------

def test_non_utf8_file(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_bytes(bytes(np.random.default_rng(0).integers(1, 256, 300, dtype=np.uint8)))
    check(validate(p), 2, "not UTF-8 text", "byte")
