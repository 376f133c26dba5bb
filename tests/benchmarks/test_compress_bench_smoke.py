"""benchmarks/compress.py --smoke: the fashion recipe on a small slice with narrow models, driven
through run_pipeline for the int8 and prune30 routes (sharing one run directory), read back from
each run's summary.json."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPT = BENCH / "compress.py"


@pytest.fixture
def data_dir() -> Path:
    env = os.environ.get("MOBILEKD_DATA_DIR")
    path = Path(env) if env else BENCH.parents[1] / "shared" / "datasets"
    if not (path / "fashion-mnist").is_dir():
        pytest.skip(f"Fashion-MNIST not found under {path}")
    return path


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))  # as when run as a script: doc_section is importable
    spec = importlib.util.spec_from_file_location("mobilekd_bench_compress", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)
    sys.path.remove(str(BENCH))


def test_smoke(bench, tmp_path, data_dir):
    committed = bench.RESULT.stat().st_mtime_ns
    result = bench.main(["--smoke", "--work", str(tmp_path), "--data-dir", str(data_dir)])
    v = result["variants"]
    assert set(v) == {"fp32", "int8_onnx_minmax", "prune30", "int8_prune30"}  # .onnx only: no .pte/.mlpackage rows
    fp, q = v["fp32"], v["int8_onnx_minmax"]
    # build_cnn(channels=[4, 8, 16], hidden=16, pool=2) on 28x28 images, 10 classes:
    # params: convs 1*4*9 + 4*8*9 + 8*16*9 = 1476, BN 2*(4+8+16) = 56, fc 16*2*2*16 + 16 = 1040,
    #         classifier 16*10 + 10 = 170 -> 2742
    # MACs:   conv1 28*28*4*9 = 28224; pool -> 14: conv2 14*14*8*4*9 = 56448; pool -> 7:
    #         conv3 7*7*16*8*9 = 56448; fc 64*16 = 1024; classifier 16*10 = 160 -> 142304
    assert (fp["params"], fp["macs"]) == (2742, 142304)
    assert (q["params"], q["macs"]) == (2742, 142304)
    assert set(fp["bytes"]) == {"onnx"} and q["bytes"]["onnx"] < fp["bytes"]["onnx"]
    assert 0.0 <= q["accuracy"]["onnx"] <= 1.0 and set(q["p50_ms"]) == {"onnx"} and q["speedup_vs_same_run_fp32"]["onnx"] > 0
    p = v["prune30"]
    assert p["params"] < fp["params"] and p["macs"] < fp["macs"] and v["int8_prune30"]["params"] == p["params"]
    # The teacher and student were trained once: the prune30 run reused data/teacher/distill.
    from mobilekd.store import read_json

    prune_run = read_json(tmp_path / "summaries" / "prune30.json")
    assert {s: prune_run["stages"][s]["status"] for s in ("data", "teacher", "distill", "prune")} == {
        "data": "cached", "teacher": "cached", "distill": "cached", "prune": "ran"}
    assert bench.RESULT.stat().st_mtime_ns == committed  # a smoke run leaves the committed numbers alone
