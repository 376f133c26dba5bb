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


@pytest.fixture
def user_pkg(tmp_path, monkeypatch):
    (tmp_path / "user_nets_cli.py").write_text(NETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "user_nets_cli:build"
    sys.modules.pop("user_nets_cli", None)


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
