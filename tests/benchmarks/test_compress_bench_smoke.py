"""benchmarks/compress.py: its smallest path (digits, tiny models, fp32 + ONNX dynamic int8, no latency)
and the helper that rewrites only its own section of docs/benchmarks.md."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "compress.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("mobilekd_bench_compress", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the models' annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_smoke_digits(bench, tmp_path):
    result = bench.main(["--smoke", "--work", str(tmp_path)])
    v = result["variants"]
    assert set(v) == {"fp32", "int8_onnx_dynamic"}
    fp, q = v["fp32"], v["int8_onnx_dynamic"]
    # build_cnn(channels=[8, 16], hidden=32, pool=2) on 8x8 digits:
    # params: conv1 1*8*9 = 72, bn1 2*8 = 16, conv2 8*16*9 = 1152, bn2 2*16 = 32,
    #         fc 16*2*2*32 + 32 = 2080, classifier 32*10 + 10 = 330 -> 3682
    # MACs:   conv1 8*8 positions * 8 * 9 = 4608; max-pool -> 4x4; conv2 4*4 * 16 * 8*9 = 18432;
    #         fc 64*32 = 2048; classifier 32*10 = 320 -> 25408
    assert (fp["params"], fp["macs"]) == (3682, 25408)
    assert (q["params"], q["macs"]) == (3682, 25408)
    assert fp["accuracy_from"] == "pytorch" and q["accuracy_from"] == "onnxruntime (file)"
    # The fp32 .onnx run in ONNX Runtime scores what PyTorch scores (fp32 parity, 360 test digits).
    assert fp["accuracy_onnx"] == pytest.approx(fp["accuracy"], abs=1 / 360 + 1e-9)
    assert 0.0 <= q["accuracy"] <= 1.0
    assert set(fp["bytes"]) == {"onnx"} and fp["bytes"]["onnx"] > 0 and q["bytes"]["onnx"] > 0  # no .pte needed
    assert (tmp_path / "student" / "int8_onnx_dynamic.onnx").is_file()
    assert result["students"]["student"]["targets"] == []  # no static int8 / prune50 in the smoke run


def test_replace_section_keeps_other_sections(bench):
    old = ("# Benchmarks\n\n<!-- begin distill -->\nD\n<!-- end distill -->\n\n"
           "<!-- begin compress -->\nOLD\n<!-- end compress -->\n\n<!-- begin bench -->\nB\n<!-- end bench -->\n")
    new = bench.replace_section(old, "NEW\n")
    assert "OLD" not in new and "NEW\n<!-- end compress -->" in new
    assert new.startswith("# Benchmarks\n\n<!-- begin distill -->\nD\n<!-- end distill -->\n\n<!-- begin compress -->")
    assert new.endswith("<!-- end compress -->\n\n<!-- begin bench -->\nB\n<!-- end bench -->\n")
    appended = bench.replace_section("# Benchmarks\n", "T\n")
    assert appended.startswith("# Benchmarks\n\n<!-- begin compress -->\n## Compression") and appended.endswith(
        "T\n<!-- end compress -->\n")
