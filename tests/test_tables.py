"""Every terminal table rendered at 80 columns: no line wider, no cell cut to an ellipsis, and each
number shown whole, in compact units. Gate checks are rendered by one function everywhere."""

from __future__ import annotations

import copy
import re

import pytest
from rich.console import Console

from mobilekd.tables import check_cells, fmt_bytes, fmt_ms, gate_table, print_summary, summary_tables
from tests.test_gate import SUMMARY

GATE = {"passed": False, "checks": [
    {"name": "bytes[executorch,int8]", "limit": 10000, "kind": "max", "value": 13736, "passed": False, "unit": "B"},
    {"name": "bytes[onnx,int8]", "limit": 10000, "kind": "max", "value": 102204, "passed": False, "unit": "B"},
    {"name": "latency_p90_ms[onnx,int8,threads=1]", "limit": 5, "kind": "max", "value": 0.0119, "passed": True,
     "unit": "ms"},
    {"name": "accuracy_drop[student_int8,vs student]", "limit": 0.02, "kind": "max", "value": 0.0166667,
     "passed": True, "unit": ""}]}


def render(*renderables) -> str:
    console = Console(width=80, record=True, force_terminal=False, color_system=None)
    for r in renderables:
        console.print(r)
    return console.export_text()


def assert_fits(text: str) -> None:
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_compact_units():
    assert fmt_bytes(13736) == "13.74 kB" and fmt_bytes(102204) == "102.2 kB" and fmt_bytes(820) == "820 B"
    assert fmt_bytes(1_250_000) == "1.25 MB"
    assert fmt_ms(0.0044) == "4.4 µs" and fmt_ms(12.34) == "12.3 ms" and fmt_ms(1500) == "1.5 s"


def test_check_cells_name_the_target_and_use_units():
    assert check_cells(GATE["checks"][0]) == ("bytes[executorch,int8]", "<= 10 kB", "13.74 kB", False)
    assert check_cells(GATE["checks"][2]) == ("latency_p90_ms[onnx,int8,threads=1]", "<= 5 ms", "11.9 µs", True)
    assert check_cells(GATE["checks"][3])[2] == "0.01667"


def test_pipeline_summary_fits_80_columns():
    summary = copy.deepcopy(SUMMARY)
    summary["artifacts"][0]["bytes"] = 102204
    summary["artifacts"][0]["latency_ms"] = {"p50": 0.020, "p90": 0.030}
    summary["artifacts"][1]["latency_native_ms"] = {"p50": 0.004, "p90": 0.007}
    summary["artifacts"][1]["parity"]["max_abs_err"] = 5.72e-7
    summary["models"]["student"]["metrics"].update(precision_macro=0.9, recall_macro=0.91, f1_macro=0.905)
    summary["gate"] = GATE
    summary["stages"] = {s: {"status": "ran"} for s in ("data", "teacher", "distill", "export")}
    text = render(*summary_tables(summary, "runs/handmade"))
    assert_fits(text)
    for cell in ("102.2 kB", "13.74 kB", "5.7e-07", "20 µs", "4 µs", "not run", "pte/int8", "mlpkg/int8", "28,522"):
        assert cell in text, cell
    # the two size checks are told apart by their targets
    assert re.search(r"bytes\[executorch,int8\] +<= 10 kB +13.74 kB +FAIL", text)
    assert re.search(r"bytes\[onnx,int8\] +<= 10 kB +102.2 kB +FAIL", text)


def test_end_of_run_says_where_things_are(tmp_path):
    (tmp_path / "report.html").write_text("x")
    summary = {**SUMMARY, "gate": GATE, "bundle": {"dir": "bundle/bundle", "zip": "bundle/bundle.zip"}}
    console = Console(width=80, record=True, color_system=None)
    print_summary(summary, str(tmp_path), console)
    text = console.export_text()
    assert f"open: xdg-open {tmp_path / 'report.html'}" in text
    assert f"verify: mobilekd bundle verify {tmp_path / 'bundle' / 'bundle.zip'}" in text
    assert str(tmp_path / "summary.json") in text


def test_gate_table_is_shared_by_gate_command_and_bundle_inspect():
    from mobilekd.commands.gate import gate_table as command_table
    from mobilekd.gate import GateReport

    a = render(gate_table(GATE, "gate q"))
    b = render(command_table(GateReport.model_validate(GATE), "q"))
    assert_fits(a)
    assert a == b


def test_bench_table_fits_80_columns():
    from mobilekd.commands.bench import bench_table

    row = {"file": "exported/a_long_model_name_int8.pte", "format": "executorch", "bytes": 13736, "zipped_bytes": 9120,
           "p50": 0.0123, "p90": 0.0151, "p99": 0.0302, "cv": 0.12, "cold_start_ms": 9.39, "peak_memory_mb": 12.04}
    text = render(bench_table([{**row, "runtime": "executorch-python", "threads": 1},
                               {**row, "runtime": "executorch-native", "threads": 4, "p50": 0.0041}]))
    assert_fits(text)
    for cell in ("a_long_model_name_int8.pte", "13.74 kB", "9.12 kB", "12.3 µs", "15.1 µs", "30.2 µs", "4.1 µs",
                 "pte-c++", "9.39 ms", "12.04 MB", "12%"):
        assert cell in text, cell


def test_bundle_inspect_tables_fit_80_columns():
    from mobilekd.bundle.inspect import tables

    tensor = {"name": "image", "dtype": "float32", "shape": [1, 1, 28, 28], "low": 0.0, "high": 1.0}
    out = {"name": "logits", "dtype": "float32", "shape": [1, 10], "low": None, "high": None}
    files = [{"path": f"models/student_int8.{ext}", "format": fmt, "variant": "int8", "bytes": b, "sha256": "ab" * 32,
              "parity": {"status": st}, "inputs": [tensor], "outputs": [out],
              "min_runtime": {"runtime": rt, "min_version": v, **({"opset": 18} if fmt == "onnx" else {})}}
             for ext, fmt, b, st, rt, v in (("onnx", "onnx", 102204, "passed", "onnxruntime", "1.14"),
                                            ("mlpackage", "coreml", 22227, "not_executed", "coreml", "iOS17"))]
    metrics = {"student_int8": {"params": 40506, "metrics": {"accuracy": 0.8204, "f1_macro": 0.81, "precision_macro": 0.8,
                                                              "recall_macro": 0.82, "top5": 0.99}}}
    manifest = {"pipeline": {"name": "fashion", "version": "d246066b7347"}, "mobilekd_version": "0.1.0",
                "task": "classification", "files": files, "metrics": metrics, "gate": GATE}
    text = render(*tables(manifest))
    assert_fits(text)
    for cell in ("models/student_int8.mlpackage", "102.2 kB", "onnxruntime", "1.14", "iOS17", "40,506", "0.9900",
                 "1x1x28x28", "bytes[onnx,int8]"):
        assert cell in text, cell


@pytest.mark.parametrize("n_runs", [2, 3])
def test_compare_table_fits_80_columns(tmp_path, n_runs):
    import json

    from mobilekd.commands.compare import compare_table
    from mobilekd.compare import compare_rows

    dirs = []
    for i in range(n_runs):
        d = tmp_path / f"run-{i}"
        d.mkdir()
        s = copy.deepcopy(SUMMARY)
        s["models"]["student"]["metrics"]["accuracy"] = 0.93 + i / 100
        s["gate"] = GATE
        (d / "summary.json").write_text(json.dumps(s))
        (d / "pipeline.yaml").write_text(f"name: q\ndistill: {{temperature: {4.0 - i}}}\n")
        dirs.append(d)
    text = render(compare_table(dirs, compare_rows(dirs)))
    assert_fits(text)
    assert re.search(r"distill.temperature +4.0 +3.0", text)
    assert re.search(r"student accuracy +0.9300 +0.9400 .*\+0.0(1|2)00", text)
