"""Property: what validation accepts, the run does not refuse for a reason of configuration.

One real run with every later stage on (ONNX and ExecuTorch, fp32 and int8, verify, bench) gives a
real summary.json. Hypothesis then draws pipelines that switch stages, formats, variants and
quantizers on and off and carry random budgets. For each one `check_config` accepts, the summary that
run would write is that real summary narrowed the way the stages narrow it (a file only if exported,
parity only if verified, timings only if benchmarked), and the gate's own `evaluate_budgets` must
answer every budget without raising, and the bundle must find a file to ship.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mobilekd.errors import ConfigError
from mobilekd.gate import evaluate_budgets, higher_is_better
from mobilekd.pipeline import run_pipeline
from mobilekd.pipeline_file import validate
from mobilekd.validate import check_config
from tests.conftest import tiny_pipeline

FORMATS, VARIANTS = ["onnx", "executorch"], ["fp32", "int8"]
BENCH_KEYS = ("latency", "latency_ms", "latency_native_ms", "zipped_bytes", "macs", "flops", "weight_bytes", "estimates")


def full_doc() -> dict:
    return tiny_pipeline(quantize={"calibration_samples": 16, "coreml": None},
                         export={"formats": FORMATS, "variants": VARIANTS},
                         gate={"budgets": []}, bundle=None)


@pytest.fixture(scope="module")
def real_summary(tmp_path_factory):
    return run_pipeline(validate(full_doc()), run_dir=tmp_path_factory.mktemp("prop") / "run").summary


def narrowed(summary: dict, cfg) -> dict:
    """The summary the run of `cfg` would write, from the real one (what each stage adds)."""
    s = copy.deepcopy(summary)
    rows = []
    for row in s["artifacts"]:
        exported = (cfg.export is not None and row["format"] in cfg.export.formats
                    and row["variant"] in cfg.export.variants
                    and (row["variant"] == "fp32" or (cfg.quantize is not None
                                                      and getattr(cfg.quantize, row["format"]) is not None)))
        if not exported:
            continue
        if cfg.verify is None:
            row.pop("parity", None)
        if cfg.bench is None:
            for k in BENCH_KEYS:
                row.pop(k, None)
        rows.append(row)
    s["artifacts"] = rows
    if cfg.quantize is None or cfg.quantize.executorch is None:
        s["models"].pop("student_int8", None)
    return s


budget = st.one_of(
    st.fixed_dictionaries({
        "metric": st.sampled_from(["bytes", "size_mb", "zipped_bytes", "macs", "max_abs_err", "latency_p90_ms",
                                   "top1_agreement"]),
        "format": st.sampled_from([None, "onnx", "executorch", "coreml"]),
        "variant": st.sampled_from([None, "fp32", "int8"]),
        "threads": st.sampled_from([None, 1, 2]),
        "runtime": st.sampled_from([None, "onnxruntime", "executorch-python", "executorch-native"])}),
    st.fixed_dictionaries({
        "metric": st.sampled_from(["accuracy", "params", "accuracy_drop"]),
        "model": st.sampled_from(["teacher", "student", "student_int8", "studnet_int8"]),
        "against": st.sampled_from([None, "student", "teacher"])}),
)
subset = lambda xs: st.lists(st.sampled_from(xs), min_size=1, max_size=len(xs), unique=True)  # noqa: E731


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(formats=subset(FORMATS), variants=subset(VARIANTS), quantize=st.sampled_from(["off", "both", "executorch", "onnx"]),
       verify=st.booleans(), bench=st.booleans(), bundle=st.one_of(st.none(), st.tuples(subset(FORMATS), subset(VARIANTS))),
       budgets=st.lists(budget, max_size=3))
def test_validate_accepts_only_what_the_gate_and_bundle_can_answer(real_summary, formats, variants, quantize, verify,
                                                                   bench, bundle, budgets):
    doc = full_doc()
    doc["export"] = {"formats": formats, "variants": variants}
    doc["quantize"] = None if quantize == "off" else {
        "calibration_samples": 16, "coreml": None,
        "executorch": {} if quantize in ("both", "executorch") else None,
        "onnx": {} if quantize in ("both", "onnx") else None}
    doc["verify"] = {"samples": 20} if verify else None
    doc["bench"] = doc["bench"] if bench else None
    doc["bundle"] = None if bundle is None else {"formats": bundle[0], "variants": bundle[1]}
    entries = []
    for b in budgets:
        e = {k: v for k, v in b.items() if v is not None}
        if "model" in e:  # a drop compares two models; any other model metric names one
            e["against"] = e.get("against", "student") if e["metric"].endswith("_drop") else None
        e = {k: v for k, v in e.items() if v is not None}
        if higher_is_better(e["metric"]):
            e["min"] = -1e9
        else:
            e["max"] = 1e9
        entries.append(e)
    doc["gate"] = {"budgets": entries}
    from mobilekd.config import PipelineConfig

    try:
        cfg = PipelineConfig.model_validate(doc)
    except ValidationError:
        assume(False)  # a budget whose shape is refused on reading; the parser's own tests cover those
    try:
        check_config(cfg)
    except ConfigError:
        return  # refused up front: fine
    summary = narrowed(real_summary, cfg)
    evaluate_budgets(cfg.gate.budgets, summary)  # raises ConfigError if the run could not answer a budget
    if cfg.bundle is not None:
        chosen = [a for a in summary["artifacts"] if a["format"] in cfg.bundle.formats
                  and a["variant"] in cfg.bundle.variants]
        assert chosen, "the bundle stage would refuse: no exported file matches"
