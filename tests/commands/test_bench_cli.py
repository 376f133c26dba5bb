"""`mobilekd bench FILE...` (the default `run` command) and `mobilekd bench calibrate PROFILE`."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from mobilekd.cli import app
from mobilekd.bench.files import feeds_for, input_spec

runner = CliRunner()
FAST = ["--warmup", "0", "--min-runs", "3", "--min-seconds", "0", "--max-seconds", "0.5"]


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """y = x @ W with x: float32[N, 4] (symbolic batch), W: 4 x 3 -> 12 MACs at batch 1."""
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("bench_cli") / "tiny.onnx"
    onnx.save(model, str(path))
    return path


def test_input_spec_and_feeds_from_the_file(tiny_onnx, tmp_path):
    assert input_spec(tiny_onnx, "onnx") == [("x", (1, 4), "float32")]  # symbolic batch taken as 1
    feeds, note = feeds_for(tiny_onnx, "onnx", None)
    assert feeds["x"].shape == (1, 4) and feeds["x"].dtype == np.float32 and note.startswith("RANDOM inputs")
    np.savez(tmp_path / "s.npz", x=np.arange(8, dtype=np.float64).reshape(2, 4))
    feeds, note = feeds_for(tiny_onnx, "onnx", tmp_path / "s.npz")
    np.testing.assert_array_equal(feeds["x"], [[0, 1, 2, 3]])  # first row, cast float64 -> float32
    assert feeds["x"].dtype == np.float32 and note.startswith("real inputs")


def test_input_spec_of_a_torch_export_program(tmp_path):
    import torch

    program = torch.export.export(torch.nn.Linear(5, 2), (torch.zeros(1, 5),))
    torch.export.save(program, str(tmp_path / "m.pt2"))
    assert input_spec(tmp_path / "m.pt2", "torch") == [("input", (1, 5), "float32")]


def test_bench_run_prints_the_table_and_writes_json(tiny_onnx, tmp_path):
    np.savez(tmp_path / "s.npz", x=np.ones((3, 4), np.float32))
    out = tmp_path / "bench.json"
    r = runner.invoke(app, ["bench", "run", str(tiny_onnx), "--threads", "1,2", "--inputs", str(tmp_path / "s.npz"),
                            "--json", str(out), *FAST])
    assert r.exit_code == 0, r.output
    assert "real inputs" in r.output and re.search(r"\bort +1 ", r.output) and re.search(r"\bort +2 ", r.output)
    assert (tmp_path / "bench.log").is_file()  # the runtimes' own output, beside the JSON
    doc = json.loads(out.read_text())
    assert [(x["runtime"], x["threads"]) for x in doc["results"]] == [("onnxruntime", 1), ("onnxruntime", 2)]
    assert all(0 < x["p50"] <= x["p90"] <= x["p99"] for x in doc["results"])
    assert doc["results"][0]["bytes"] == tiny_onnx.stat().st_size


@pytest.mark.parametrize("args, needle", [
    (["nothere.onnx"], "does not exist"),
    (["{onnx}", "--threads", "1,x"], "--threads: expected comma-separated positive integers"),
    (["{onnx}", "--threads", "0"], "--threads: expected comma-separated positive integers"),
    (["{onnx}", "--inputs", "{npz}"], "has arrays ['y']; tiny.onnx expects x:float32[1, 4]"),
    (["{txt}"], "expected a .onnx, .pte or .pt2 file"),
])
def test_bench_bad_input_exits_2(tiny_onnx, tmp_path, args, needle):
    """`mobilekd bench FILE...` (no `run`) reaches the run command: its errors prove the routing."""
    np.savez(tmp_path / "wrong.npz", y=np.ones((1, 4), np.float32))
    (tmp_path / "m.txt").write_text("x")
    subs = {"{onnx}": str(tiny_onnx), "{npz}": str(tmp_path / "wrong.npz"), "{txt}": str(tmp_path / "m.txt")}
    r = runner.invoke(app, ["bench", *[subs.get(a, a) for a in args]])
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output


def test_calibrate_fits_efficiency_and_writes_the_profile(tiny_onnx, tmp_path):
    profiles = tmp_path / "profiles.yaml"
    r = runner.invoke(app, ["bench", "calibrate", "android-midrange", "--model", str(tiny_onnx),
                            "--measured-ms", "0.01", "--profiles", str(profiles)])
    assert r.exit_code == 0, r.output
    fitted = yaml.safe_load(profiles.read_text())["profiles"]["android-midrange"]
    # ideal = max(2*12 MACs / 19e9 FLOP/s, (48 B weights + 12 B activation y) / 10e9 B/s) + 1 op * 5 us
    #       = max(1.26e-6, 6.0e-6) ms + 0.005 ms = 0.005006 ms;  efficiency = ideal / 0.01 ms = 0.5006
    assert fitted["calibrated"] is True
    assert fitted["efficiency"] == pytest.approx(0.5006, rel=1e-4)
    r = runner.invoke(app, ["bench", "calibrate", "no-such-phone", "--model", str(tiny_onnx), "--measured-ms", "1",
                            "--profiles", str(profiles)])
    assert r.exit_code == 2 and "profile 'no-such-phone' is unknown" in r.output
