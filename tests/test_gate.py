"""Budgets against a summary.json built by hand: parsing errors, each comparison with hand-picked
values, budgets naming things the run did not produce (errors, never passes), JUnit and Markdown."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET

import pytest

from mobilekd.config import Budget
from mobilekd.errors import ConfigError
from mobilekd.gate import (
    evaluate_budgets,
    load_budgets,
    parse_budgets,
    resolve,
    to_junit,
    to_markdown,
)


def lat(runtime: str, threads: int, p50: float, p90: float, p99: float, mem: float = 2.0) -> dict:
    return {"runtime": runtime, "threads": threads, "runs": 100, "p50": p50, "p90": p90, "p99": p99,
            "mean": p50, "cv": 0.02, "cold_start_ms": 1.5, "peak_memory_mb": mem, "notes": ""}


SUMMARY = {
    "pipeline": "handmade",
    "models": {
        "teacher": {"params": 28522, "metrics": {"accuracy": 0.96}},
        "student": {"params": 2146, "metrics": {"accuracy": 0.93}},
        "student_int8": {"params": 2146, "metrics": {"accuracy": 0.92}},
    },
    "artifacts": [
        {"format": "onnx", "variant": "int8", "path": "export/student_int8.onnx", "bytes": 20000, "zipped_bytes": 7000,
         "parity": {"status": "passed", "max_abs_err": 0.4, "top1_agreement": 0.98},
         "latency": [lat("onnxruntime", 1, 0.020, 0.030, 0.050), lat("onnxruntime", 4, 0.015, 0.025, 0.040)],
         "macs": 123456, "flops": 246912, "weight_bytes": {"int8": 2000, "float32": 400}},
        {"format": "executorch", "variant": "int8", "path": "export/student_int8.pte", "bytes": 13736,
         "parity": {"status": "passed", "max_abs_err": 0.3, "top1_agreement": 0.985},
         "latency": [lat("executorch-python", 1, 0.012, 0.015, 0.030, mem=2.5),
                     lat("executorch-native", 1, 0.004, 0.007, 0.010, mem=1.5)],
         "estimates": [{"profile": "android-midrange", "ms": 0.08, "calibrated": False, "label": "estimate"}]},
        {"format": "coreml", "variant": "int8", "path": "export/student_int8.mlpackage", "bytes": 22227,
         "parity": {"status": "not_executed"}, "latency": []},
    ],
}


def value(**kw) -> float:
    return resolve(Budget(**kw, max=1e18, direction="upper"), SUMMARY)  # a bound that never binds


def test_each_selector_reads_the_value_it_names():
    assert value(metric="bytes", format="executorch", variant="int8") == 13736
    assert value(metric="size_mb", format="executorch", variant="int8") == pytest.approx(0.013736)  # 13736 / 1e6
    assert value(metric="zipped_bytes", format="onnx", variant="int8") == 7000
    assert value(metric="macs", format="onnx", variant="int8") == 123456
    assert value(metric="weight_bytes", format="onnx", variant="int8") == 2400  # 2000 int8 + 400 float32
    assert value(metric="weight_bytes_int8", format="onnx", variant="int8") == 2000
    assert value(metric="top1_agreement", format="executorch", variant="int8") == 0.985
    # latency: default runtime is the format's Python one, default threads 1
    assert value(metric="latency_p90_ms", format="onnx", variant="int8") == 0.030
    assert value(metric="latency_p50_ms", format="onnx", variant="int8", threads=4) == 0.015
    assert value(metric="latency_p99_ms", format="executorch", variant="int8") == 0.030
    assert value(metric="latency_p50_ms", format="executorch", variant="int8", runtime="executorch-native") == 0.004
    assert value(metric="peak_memory_mb", format="executorch", variant="int8", runtime="executorch-native") == 1.5
    assert value(metric="latency_p90_ms", format="executorch", variant="int8", profile="android-midrange") == 0.08
    # model metrics, and drops: against - model
    assert value(metric="accuracy", model="student_int8") == 0.92
    assert value(metric="params", model="teacher") == 28522
    assert value(metric="accuracy_drop", model="student_int8", against="student") == pytest.approx(0.01)  # .93 - .92
    assert value(metric="accuracy_drop", model="student_int8", against="teacher") == pytest.approx(0.04)  # .96 - .92


@pytest.mark.parametrize("budget, passed", [
    ({"metric": "bytes", "format": "executorch", "variant": "int8", "max": 13736}, True),   # equal to the limit passes
    ({"metric": "bytes", "format": "executorch", "variant": "int8", "max": 13735}, False),  # one byte over
    ({"metric": "accuracy", "model": "student_int8", "min": 0.92}, True),
    ({"metric": "accuracy", "model": "student_int8", "min": 0.921}, False),
    ({"metric": "accuracy_drop", "model": "student_int8", "against": "teacher", "max": 0.05}, True),   # drop 0.04
    ({"metric": "accuracy_drop", "model": "student_int8", "against": "teacher", "max": 0.03}, False),
    ({"metric": "latency_p90_ms", "format": "onnx", "variant": "int8", "threads": 1, "max": 0.031}, True),
    ({"metric": "latency_p90_ms", "format": "onnx", "variant": "int8", "threads": 1, "max": 0.029}, False),
    ({"metric": "latency_p50_ms", "format": "executorch", "variant": "int8", "runtime": "executorch-native", "max": 0.0039}, False),
    ({"metric": "latency_p50_ms", "format": "executorch", "variant": "int8", "profile": "android-midrange", "max": 0.1}, True),
    ({"metric": "peak_memory_mb", "format": "onnx", "variant": "int8", "max": 1.0}, False),  # 2.0 MB
    ({"metric": "top1_agreement", "format": "onnx", "variant": "int8", "min": 0.99}, False),  # 0.98
])
def test_max_and_min_comparisons(budget, passed):
    report = evaluate_budgets([Budget(**budget)], SUMMARY)
    (check,) = report.checks
    assert check.passed is passed and report.passed is passed
    assert check.kind == ("max" if "max" in budget else "min")


@pytest.mark.parametrize("budget, needle", [
    ({"metric": "bytes", "format": "executorch", "variant": "fp32", "max": 1}, "no file with format=executorch variant=fp32"),
    ({"metric": "bytes", "variant": "int8", "max": 1}, "matches 3 files"),
    ({"metric": "accuracy", "model": "student_pruned", "min": 0.5}, "no model 'student_pruned'"),
    ({"metric": "ndcg@10", "model": "student", "min": 0.5}, "has no metric 'ndcg@10'"),
    ({"metric": "latency_p50_ms", "format": "onnx", "variant": "int8", "threads": 2, "max": 1}, "at 2 thread(s)"),
    ({"metric": "latency_p50_ms", "format": "onnx", "variant": "int8", "profile": "iphone-recent", "max": 1}, "no 'iphone-recent' estimate"),
    ({"metric": "latency_p50_ms", "format": "coreml", "variant": "int8", "max": 1}, "CoreML files run only on macOS"),
    ({"metric": "max_abs_err", "format": "coreml", "variant": "int8", "max": 1}, "parity status: not_executed"),
    ({"metric": "macs", "format": "executorch", "variant": "int8", "max": 1}, "measured no macs"),
    ({"metric": "weight_bytes_float16", "format": "onnx", "variant": "int8", "max": 1}, "stores no float16 weights"),
])
def test_a_budget_naming_what_the_run_did_not_produce_is_an_error(budget, needle):
    with pytest.raises(ConfigError, match="gate budget") as e:
        evaluate_budgets([Budget(**budget)], SUMMARY)
    assert needle in str(e.value)


def test_summary_without_a_stage_output_errors_instead_of_passing():
    bare = copy.deepcopy(SUMMARY)
    for a in bare["artifacts"]:
        a.pop("latency")
    with pytest.raises(ConfigError, match="bench stage off"):
        evaluate_budgets([Budget(metric="latency_p50_ms", format="onnx", variant="int8", max=100)], bare)


@pytest.mark.parametrize("entry, needle", [
    ({"metric": "bytes", "format": "onnx"}, "needs exactly one of min or max"),
    ({"metric": "bytes", "format": "onnx", "min": 1, "max": 2}, "needs exactly one of min or max"),
    ({"metric": "bytes", "format": "onnx", "maxx": 2}, "budgets[0].maxx: unknown key; expected one of: metric"),
    ({"metric": "bytes", "format": "tflite", "max": 2}, "budgets[0].format: must be one of"),
    ({"metric": "bytes", "format": "onnx", "max": "big"}, "budgets[0].max"),
    ({"metric": "latency_p50_ms", "format": "onnx", "threads": 0, "max": 1}, "budgets[0].threads: must be >= 1"),
    ({"metric": "accuracy", "min": 0.9}, "unknown file metric 'accuracy'"),
    ({"metric": "accuracy", "model": "student", "against": "teacher", "max": 0.1}, "use metric: accuracy_drop"),
    ({"metric": "accuracy_drop", "model": "student", "max": 0.1}, "needs against: (the reference model)"),
    ({"metric": "accuracy", "model": "student", "format": "onnx", "min": 0.1}, "cannot also set format"),
    ({"metric": "bytes", "format": "onnx", "threads": 2, "max": 1}, "cannot set threads"),
    ({"metric": "latency_p50_ms", "format": "onnx", "profile": "android-midrange", "threads": 1, "max": 1}, "takes no runtime or threads"),
    ({"metric": "cold_start_ms", "format": "onnx", "profile": "android-midrange", "max": 1}, "a phone estimate gives only"),
    ({"metric": "latency_p50_ms", "format": "onnx", "runtime": "executorch-native", "max": 1}, "does not run format 'onnx'"),
])
def test_budget_parsing_errors_name_the_entry_and_key(entry, needle):
    with pytest.raises(ConfigError) as e:
        parse_budgets({"budgets": [entry]}, "b.yaml")
    assert "b.yaml: invalid budgets" in str(e.value)
    assert needle in str(e.value)


def test_budget_file_shapes(tmp_path):
    f = tmp_path / "b.yaml"
    f.write_text("budgets:\n  - {metric: bytes, format: onnx, variant: int8, max: 30000}\n")
    assert load_budgets(f)[0].max == 30000
    f.write_text("name: x\ngate:\n  budgets:\n    - {metric: accuracy, model: student, min: 0.5}\n")  # a pipeline file
    assert load_budgets(f)[0].model == "student"
    for text, needle in (("- a\n- b\n", "expected a mapping with a budgets: list"), ("gate: null\n", "gate is off"),
                         ("budgets: [\n", "invalid YAML at line"), ("budget: []\n", "expected a mapping with a budgets")):
        f.write_text(text)
        with pytest.raises(ConfigError, match="b.yaml") as e:
            load_budgets(f)
        assert needle in str(e.value)
    with pytest.raises(ConfigError, match="not found"):
        load_budgets(tmp_path / "missing.yaml")


def test_junit_and_markdown_name_every_check():
    report = evaluate_budgets([Budget(metric="bytes", format="executorch", variant="int8", max=10000),
                               Budget(metric="accuracy", model="student_int8", min=0.9)], SUMMARY)
    root = ET.fromstring(to_junit(report, "handmade"))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["bytes[executorch,int8]", "accuracy[student_int8]"]
    failure = cases[0].find("failure")
    assert failure is not None and cases[1].find("failure") is None
    assert failure.get("message") == "bytes[executorch,int8]: value 13,736 B is not <= 10,000 B"
    md = to_markdown(report, "handmade")
    assert "❌ FAILED (1 of 2 checks)" in md
    assert "| `bytes[executorch,int8]` | <= 10,000 B | 13,736 B | ❌ **FAIL** |" in md
    assert "| `accuracy[student_int8]` | >= 0.9 | 0.92 | ✅ pass |" in md


def test_a_budget_on_a_files_own_task_metric_and_its_drop():
    summary = copy.deepcopy(SUMMARY)
    summary["artifacts"][0]["metrics"] = {"accuracy": 0.915}  # the int8 .onnx, scored in ONNX Runtime
    summary["artifacts"][1]["metrics"] = {"accuracy": 0.93}
    budgets = [Budget(metric="accuracy", format="onnx", variant="int8", min=0.95),
               Budget(metric="accuracy", format="executorch", variant="int8", min=0.92),
               Budget(metric="accuracy_drop", format="onnx", variant="int8", against="student", max=0.01)]
    report = evaluate_budgets(budgets, summary)
    # onnx: 0.915 < 0.95 fails; executorch: 0.93 >= 0.92 passes; drop: 0.93 - 0.915 = 0.015 > 0.01 fails
    assert [(c.name, round(c.value, 6), c.passed) for c in report.checks] == [
        ("accuracy[onnx,int8]", 0.915, False), ("accuracy[executorch,int8]", 0.93, True),
        ("accuracy_drop[onnx,int8,vs student]", 0.015, False)]
    assert not report.passed
    # CoreML is never scored on Linux: a budget on its accuracy is an error naming why, not a pass
    with pytest.raises(ConfigError, match="CoreML files run only on macOS"):
        resolve(Budget(metric="accuracy", format="coreml", variant="int8", min=0.9), summary)
    with pytest.raises(ConfigError, match="has no metric 'ndcg@10'; it has accuracy"):
        resolve(Budget(metric="ndcg@10", format="executorch", variant="int8", min=0.1), summary)
    with pytest.raises(ValueError, match="needs against"):
        Budget(metric="accuracy_drop", format="onnx", variant="int8", max=0.01)
