"""The native C++ runner: builds against the executorch wheel, runs a tiny XNNPACK .pte, and its
outputs equal eager PyTorch's."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import mobilekd.bench.native as native
from mobilekd.bench.latency import LatencyOptions

FAST = LatencyOptions(warmup=2, min_runs=20, min_seconds=0.0, max_seconds=2.0)
HAVE_TOOLS = shutil.which("cmake") is not None and (shutil.which("c++") or shutil.which("g++"))


@pytest.mark.skipif(not HAVE_TOOLS, reason="cmake and a C++ compiler are needed to build the native runner")
def test_native_runner_builds_and_matches_eager(tiny, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MOBILEKD_CACHE", str(tmp_path / "cache"))
    binary = native.build_native_runner()
    assert binary.is_file() and binary.parent.name.startswith("native-runner-")
    stats, outputs = native.run_native(tiny.pte, {"x": tiny.x}, threads=1, options=FAST)
    assert len(outputs) == 1 and outputs[0].shape == (1, 4)
    np.testing.assert_allclose(outputs[0], tiny.y, rtol=1e-5, atol=1e-5)
    assert stats.runtime == "executorch-native" and stats.runs >= 20
    assert 0 < stats.p50 <= stats.p99 < 100.0  # 160 MACs: microseconds, not 100 ms
    assert "threadpool=1" in stats.notes
    # second call reuses the cached binary
    assert native.build_native_runner() == binary


def test_measure_native_returns_none_without_compiler(tiny, tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("MOBILEKD_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(native.shutil, "which", lambda name: None)
    with caplog.at_level("WARNING"):
        assert native.measure_native(tiny.pte, {"x": tiny.x}, threads=1, options=FAST) is None
    assert "cmake" in caplog.text and "not found" in caplog.text
