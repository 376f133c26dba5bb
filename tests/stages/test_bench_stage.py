"""bench stage pieces without a pipeline: profile names checked when the pipeline is validated,
phone estimates from the student's counts and each file's bytes, and what summary.json carries
from a bench result (native latency next to the Python runtime's, MACs, weight bytes)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from mobilekd.bench.devices import EstimateInputs
from mobilekd.config import BenchConfig
from mobilekd.stages.bench import BenchResult, _estimates
from mobilekd.summary import _artifacts
from tests.test_gate import lat


@pytest.fixture(autouse=True)
def builtin_profiles_only(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILEKD_PROFILES", str(tmp_path / "none.yaml"))  # no user file: built-in numbers


def test_unknown_profile_is_refused_at_validation():
    assert BenchConfig(profiles=["android-midrange"]).profiles == ["android-midrange"]
    with pytest.raises(ValidationError, match=r"unknown profile\(s\) \['pixel-99'\]; expected names from android-flagship"):
        BenchConfig(profiles=["android-midrange", "pixel-99"])


def test_estimates_use_the_students_counts_and_each_files_bytes():
    files = [SimpleNamespace(format="executorch", variant="int8", bytes=100_000),
             SimpleNamespace(format="onnx", variant="fp32", bytes=400_000)]
    counts = EstimateInputs(macs=1_000_000, weight_bytes=0, activation_bytes=0, n_ops=10)
    est = _estimates(files, ["android-midrange"], counts)
    # int8: max(2e6 / 60e9 s, 1e5 B / 10e9 B/s) = max(0.0333, 0.01) ms, + 10 ops * 5 us = 0.05 -> 0.08333 ms
    assert est["executorch/int8"][0]["ms"] == pytest.approx(0.083333, rel=1e-4)
    # fp32: max(2e6 / 19e9 s, 4e5 / 10e9) = max(0.10526, 0.04) ms, + 0.05 -> 0.15526 ms
    assert est["onnx/fp32"][0]["ms"] == pytest.approx(0.155263, rel=1e-4)
    assert est["onnx/fp32"][0]["label"] == "estimate" and est["onnx/fp32"][0]["calibrated"] is False


def test_summary_rows_carry_native_latency_macs_and_weight_bytes():
    art = SimpleNamespace(format="executorch", variant="int8", path="export/s.pte", bytes=13736, sha256="x",
                          scheme="int8", details={})
    bench = BenchResult(latency={"executorch/int8": [lat("executorch-python", 1, 0.012, 0.015, 0.03),
                                                     lat("executorch-native", 1, 0.004, 0.007, 0.01)]},
                        sizes={"executorch/int8": {"zipped_bytes": 5804}},
                        compute={"executorch/int8": {"macs": 52224, "flops": 104448}})
    (row,) = _artifacts({"export": SimpleNamespace(artifacts=[art]), "bench": bench})
    assert row["latency_ms"] == {"p50": 0.012, "p90": 0.015, "runtime": "executorch-python"}
    assert row["latency_native_ms"] == {"p50": 0.004, "p90": 0.007}
    assert row["macs"] == 52224 and row["flops"] == 104448 and row["zipped_bytes"] == 5804
