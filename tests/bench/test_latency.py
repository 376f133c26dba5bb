"""Percentile/CV maths by hand, and real subprocess measurements of a tiny model per runtime."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from mobilekd.bench.latency import LatencyOptions, measure_latency, summarize
from mobilekd.errors import ConfigError

FAST = LatencyOptions(warmup=2, min_runs=5, min_seconds=0.0, max_seconds=2.0)


def test_summarize_hand_checked() -> None:
    s = summarize([float(v) for v in range(1, 11)])  # 1..10 ms
    # linear interpolation at rank q*(n-1): p50 at 4.5 -> 5 + 0.5*(6-5) = 5.5
    # p90 at 8.1 -> 9 + 0.1*(10-9) = 9.1; p99 at 8.91 -> 9 + 0.91 = 9.91
    assert s["runs"] == 10
    assert s["p50"] == pytest.approx(5.5)
    assert s["p90"] == pytest.approx(9.1)
    assert s["p99"] == pytest.approx(9.91)
    # mean 5.5; population variance of 1..n is (n^2-1)/12 = 99/12 = 8.25; cv = sqrt(8.25)/5.5
    assert s["mean"] == pytest.approx(5.5)
    assert s["cv"] == pytest.approx(8.25**0.5 / 5.5)  # 0.52223


def test_summarize_constant_times_have_zero_cv() -> None:
    s = summarize([2.0, 2.0, 2.0])
    assert (s["p50"], s["p99"], s["cv"]) == (2.0, 2.0, 0.0)


def test_options_reject_bad_values() -> None:
    with pytest.raises(ValidationError, match="max_seconds"):
        LatencyOptions(min_seconds=5.0, max_seconds=1.0)
    with pytest.raises(ValidationError, match="threads"):
        LatencyOptions(threads=(0,))
    with pytest.raises(ValidationError):
        LatencyOptions(warmups=3)  # typo refused, never defaulted


def _check(stats, runtime: str) -> None:
    assert stats.runtime == runtime and stats.threads == 1
    assert stats.runs >= FAST.min_runs
    assert 0 < stats.p50 <= stats.p90 <= stats.p99 < 1000.0  # a 16-8-4 MLP: well under a second
    assert stats.cold_start_ms >= stats.p50
    assert 0.0 <= stats.peak_memory_mb < 2048.0


def test_onnxruntime_subprocess(tiny) -> None:
    stats = measure_latency("onnx", tiny.onnx, {"x": tiny.x}, threads=1, options=FAST)
    _check(stats, "onnxruntime")
    assert "intra=1 inter=1" in stats.notes


def test_executorch_python_subprocess(tiny) -> None:
    stats = measure_latency("executorch", tiny.pte, {"x": tiny.x}, threads=1, options=FAST)
    _check(stats, "executorch-python")
    assert "threadpool=1" in stats.notes  # _unsafe_reset_threadpool took effect in the child


def test_torch_eager_from_module(tiny) -> None:
    stats = measure_latency("torch", tiny.module, {"x": tiny.x}, threads=1, options=FAST)
    _check(stats, "torch-eager")


def test_bad_feeds_and_paths_are_user_errors(tiny, tmp_path) -> None:
    with pytest.raises(ConfigError, match="batch 1"):
        measure_latency("onnx", tiny.onnx, {"x": np.zeros((2, 16), np.float32)}, threads=1, options=FAST)
    with pytest.raises(ConfigError, match="does not exist"):
        measure_latency("onnx", tmp_path / "nope.onnx", {"x": tiny.x}, threads=1, options=FAST)
    with pytest.raises(ConfigError, match="format"):
        measure_latency("tflite", tiny.onnx, {"x": tiny.x}, threads=1, options=FAST)  # type: ignore[arg-type]
