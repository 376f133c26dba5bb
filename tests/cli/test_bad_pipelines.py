"""Bad pipeline files: each must be refused before any work, with exit code 2, no traceback, and a
message that names the key, the value and what was expected."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mobilekd.cli import app
from tests.conftest import tiny_pipeline

runner = CliRunner()


def validate(path, *extra):
    return runner.invoke(app, ["pipeline", "validate", str(path), *extra])


def check(result, *needles):
    out = result.output
    assert result.exit_code == 2, out
    assert "Traceback" not in out
    for n in needles:
        assert n in out, f"{n!r} not in:\n{out}"


def with_(section: str, **values):
    doc = tiny_pipeline()
    doc[section] = {**(doc.get(section) or {}), **values}
    return doc


CASES = {
    "negative temperature": (with_("distill", temperature=-1), ["distill.temperature", "must be > 0", "-1"]),
    "unknown top-level key": ({**tiny_pipeline(), "distil": {}}, ["distil", "unknown key", "distill"]),
    "unknown nested key": (with_("teacher", epoch=3), ["teacher.epoch", "unknown key", "epochs"]),
    "wrong type": (with_("teacher", epochs="many"), ["teacher.epochs", "'many'"]),
    "alpha above 1": (with_("distill", alpha=1.5), ["distill.alpha", "must be <= 1", "1.5"]),
    "zero epochs": (with_("distill", epochs=0), ["distill.epochs", "must be >= 1", "0"]),
    "bad literal": (with_("export", formats=["onnx", "tflite"]), ["export.formats", "tflite"]),
    "missing teacher": ({k: v for k, v in tiny_pipeline().items() if k != "teacher"}, ["teacher", "required key is missing"]),
    "unknown dataset": (with_("data", dataset="imagenet"), ["data.dataset", "imagenet", "digits"]),
    "unknown data option": (with_("data", options={"colour": True}), ["data.options.colour", "unknown option"]),
    "unknown model": (with_("teacher", model="resnet9000"), ["teacher.model", "resnet9000", "cnn"]),
    "budget without bound": (with_("gate", budgets=[{"metric": "bytes", "format": "onnx"}]), ["gate.budgets.0", "exactly one of min or max"]),
    "zero calibration samples": (with_("quantize", calibration_samples=0), ["quantize.calibration_samples", "must be >= 1"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_pipeline_is_refused(case, write_yaml):
    doc, needles = CASES[case]
    check(validate(write_yaml(doc)), *needles)


def test_missing_file(tmp_path):
    check(validate(tmp_path / "nope.yaml"), "nope.yaml", "not found")


def test_empty_file(write_yaml):
    check(validate(write_yaml("")), "empty")


def test_yaml_syntax_error_names_line(write_yaml):
    check(validate(write_yaml("name: x\ndata:\n  dataset: [digits\nteacher: {}\n")), "invalid YAML", "line 4")


def test_top_level_list(write_yaml):
    check(validate(write_yaml("- name: x\n- data: {}\n")), "top level must be a mapping", "list")


def test_bad_override(write_yaml):
    path = write_yaml(tiny_pipeline())
    check(validate(path, "--set", "distill.epochs"), "--set", "KEY.PATH=VALUE")
    check(validate(path, "--set", "distill.epochs=-3"), "distill.epochs", "must be >= 1", "-3")


def test_override_switches_stage_off(write_yaml):
    result = validate(write_yaml(tiny_pipeline()), "--set", "bench=null", "--set", "distill.epochs=3")
    assert result.exit_code == 0, result.output
    assert "bench" not in result.output.split("stages on:")[1]


def test_missing_data_dir(write_yaml, tmp_path):
    result = runner.invoke(app, ["pipeline", "run", str(write_yaml(tiny_pipeline())), "--out", str(tmp_path / "r"),
                                 "--data-dir", str(tmp_path / "no-such-dir"), "--quiet"])
    check(result, "no-such-dir", "does not exist")


def test_version():
    from mobilekd import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"mobilekd {__version__}"
