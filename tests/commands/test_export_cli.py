"""`mobilekd export` on a user's own model: exit codes, the table and the --json artifacts list."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from mobilekd.cli import app

runner = CliRunner()

NETS = '''
from torch import nn
def build():
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
'''


def user_module(tmp_path, monkeypatch, name: str, source: str):
    """Write `source` as module `name` on sys.path; yields its `name:build` factory path."""
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield f"{name}:build"
    sys.modules.pop(name, None)


@pytest.fixture
def user_pkg(tmp_path, monkeypatch):
    yield from user_module(tmp_path, monkeypatch, "user_nets_cli", NETS)


def test_export_onnx_with_real_data_and_json(user_pkg, tmp_path):
    data = tmp_path / "samples.npz"
    np.savez(data, x=np.random.default_rng(0).random((12, 1, 4, 4), dtype=np.float32))
    out_json = tmp_path / "r.json"
    result = runner.invoke(app, ["export", user_pkg, "--input", "x:float32[1,1,4,4]", "--formats", "onnx",
                                 "--out", str(tmp_path / "out"), "--verify-data", str(data), "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out_json.read_text())["artifacts"]
    assert [(r["format"], r["variant"], r["parity"]["status"], r["parity"]["inputs"]) for r in rows] == [
        ("onnx", "fp32", "passed", "real")]
    assert rows[0]["parity"]["metrics"]["samples"] == 12
    assert (tmp_path / "out" / "model_fp32.onnx").stat().st_size == rows[0]["bytes"]
    assert (tmp_path / "out" / "export.log").is_file()  # the exporters' own output, beside the files
    assert "model_fp32.onnx" in result.output


def test_export_bad_input_spec_exits_2(user_pkg, tmp_path):
    result = runner.invoke(app, ["export", user_pkg, "--input", "x:float99[1,16]", "--formats", "onnx",
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "float99" in result.output and "Traceback" not in result.output


def test_export_bad_factory_exits_2(tmp_path):
    result = runner.invoke(app, ["export", "no_such_module_xyz:build", "--input", "x:float32[1,16]",
                                 "--formats", "onnx", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "no_such_module_xyz" in result.output


OPS = '''
import torch
from torch import nn

class Fmod(nn.Module):
    """torch.fmod: ONNX and ExecuTorch take it; coremltools 9 has no translation for it."""
    def __init__(self, width=6):
        super().__init__()
        self.fc = nn.Linear(width, 4)
    def forward(self, x):
        return self.fc(torch.fmod(x, 0.7))

def build(width):
    torch.manual_seed(0)
    return Fmod(width)
'''


@pytest.fixture
def ops_pkg(tmp_path, monkeypatch):
    yield from user_module(tmp_path, monkeypatch, "user_ops_cli", OPS)


def test_one_format_failing_keeps_the_others_table_and_json(ops_pkg, tmp_path):
    out_json = tmp_path / "r.json"
    result = runner.invoke(app, ["export", ops_pkg, "--arg", "width=6", "--input", "x:float32[1,6]",
                                 "--out", str(tmp_path / "out"), "--json", str(out_json)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    rows = json.loads(out_json.read_text())["artifacts"]
    assert [(r["format"], r["parity"]["status"]) for r in rows] == [
        ("onnx", "passed"), ("executorch", "passed"), ("coreml", "failed")]
    reason = rows[2]["parity"]["reason"]
    assert "'fmod'" in reason and "Fmod" in reason and "What to try" in reason and "Tried:" in reason
    assert (tmp_path / "out" / "model_fp32.onnx").is_file() and (tmp_path / "out" / "model_fp32.pte").is_file()
    assert "model_fp32.onnx" in result.output and "FAIL" in result.output  # the table was printed


def test_factory_arguments_only_those_it_declares(ops_pkg, tmp_path):
    base = ["export", ops_pkg, "--input", "x:float32[1,5]", "--formats", "onnx", "--out", str(tmp_path / "o")]
    missing = runner.invoke(app, base)
    assert missing.exit_code == 2 and "needs ['width']" in missing.output and "--arg" in missing.output
    unknown = runner.invoke(app, [*base, "--arg", "width=5", "--arg", "num_outputs=10"])
    assert unknown.exit_code == 2 and "num_outputs" in unknown.output and "['width']" in unknown.output
    ok = runner.invoke(app, [*base, "--arg", "width=5", "--opset", "17", "--dynamic-dim", "x:0"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, [*base, "--arg", "width=5", "--coreml-target", "iOS99"])
    assert bad.exit_code == 2 and "iOS99" in bad.output
