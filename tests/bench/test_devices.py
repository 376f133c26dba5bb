"""Roofline arithmetic by hand, calibration round trip, and the user profiles file."""

from __future__ import annotations

import pytest
import yaml

from mobilekd.bench.devices import (EstimateInputs, Profile, calibrate, calibrate_from_file,
                                    estimate_inputs_from_file, estimate_latency, get_profile, load_profiles)
from mobilekd.errors import ConfigError

P = Profile(name="toy", gflops_fp32=10.0, gflops_int8=40.0, mem_bandwidth_gbs=5.0, op_overhead_us=2.0)


@pytest.fixture(autouse=True)
def _isolated_profiles(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILEKD_PROFILES", str(tmp_path / "profiles.yaml"))


def test_builtin_profiles_present() -> None:
    names = set(load_profiles())
    assert {"android-midrange", "android-flagship", "iphone-recent"} <= names
    assert all(not p.calibrated and p.efficiency == 1.0 for p in load_profiles().values())


def test_roofline_hand_arithmetic() -> None:
    # fp32: compute = 2 * 5e6 MAC / 10e9 flop/s = 1.0 ms; memory = (4e6 + 1e6) B / 5e9 B/s = 1.0 ms
    # max = 1.0 ms; overhead = 100 ops * 2 us = 0.2 ms; total 1.2 ms / efficiency 1.0
    e = estimate_latency(P, macs=5_000_000, weight_bytes=4_000_000, activation_bytes=1_000_000, n_ops=100,
                         precision="fp32")
    assert e.ms == pytest.approx(1.2) and e.label == "estimate" and e.calibrated is False
    # int8: compute = 1e7 / 40e9 = 0.25 ms; memory = (1e6 + 1e6) / 5e9 = 0.4 ms (memory-bound);
    # + 0.2 ms overhead = 0.6 ms, / efficiency 0.5 = 1.2 ms
    half = P.model_copy(update={"efficiency": 0.5})
    e8 = estimate_latency(half, macs=5_000_000, weight_bytes=1_000_000, activation_bytes=1_000_000, n_ops=100,
                          precision="int8")
    assert e8.memory_ms == pytest.approx(0.4) and e8.ms == pytest.approx(1.2)


def test_calibrate_fits_efficiency_and_persists(tmp_path) -> None:
    inputs = EstimateInputs(macs=19_000_000, weight_bytes=0, activation_bytes=0, n_ops=0)
    # android-midrange fp32 19 GFLOP/s: ideal = 2 * 19e6 / 19e9 = 2.0 ms; measured 8 ms -> efficiency 0.25
    fitted = calibrate("android-midrange", inputs, measured_ms=8.0)
    assert fitted.calibrated and fitted.efficiency == pytest.approx(0.25)
    again = get_profile("android-midrange")  # read back from $MOBILEKD_PROFILES
    assert again.calibrated and again.efficiency == pytest.approx(0.25)
    est = estimate_latency(again, precision="fp32", **inputs.model_dump(exclude={"precision"}))
    assert est.ms == pytest.approx(8.0) and est.calibrated
    stored = yaml.safe_load((tmp_path / "profiles.yaml").read_text())
    assert set(stored["profiles"]) == {"android-midrange"}


def test_user_file_adds_profiles_and_rejects_typos(tmp_path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text(yaml.safe_dump({"profiles": {"pixel-9": {"gflops_fp32": 40, "gflops_int8": 120,
                                                          "mem_bandwidth_gbs": 20, "op_overhead_us": 3}}}))
    assert get_profile("pixel-9", f).gflops_int8 == 120
    f.write_text(yaml.safe_dump({"profiles": {"pixel-9": {"gflops_fp23": 40}}}))
    with pytest.raises(ConfigError, match="pixel-9"):
        load_profiles(f)
    with pytest.raises(ConfigError, match="android-midrange"):
        get_profile("galaxy-s99")  # the message lists the known names


def test_estimate_inputs_from_files(tiny) -> None:
    onnx_in = estimate_inputs_from_file(tiny.onnx)
    # MACs: Gemm 1x16 @ 16x8 = 128, Gemm 1x8 @ 8x4 = 32 -> 160
    # activations: 8 + 8 + 4 floats (Gemm, Relu, Gemm outputs) = 20 * 4 B = 80 B; weights 688 B
    assert (onnx_in.macs, onnx_in.activation_bytes, onnx_in.weight_bytes) == (160, 80, 688)
    assert onnx_in.n_ops == 3 and onnx_in.precision == "fp32"
    pte_in = estimate_inputs_from_file(tiny.pte)
    assert pte_in.weight_bytes == tiny.pte.stat().st_size and pte_in.macs == 0
    fitted = calibrate_from_file("iphone-recent", tiny.onnx, measured_ms=0.05)
    assert estimate_latency(fitted, **onnx_in.model_dump()).ms == pytest.approx(0.05)


def test_estimate_for_module_matches_onnx_count(tiny) -> None:
    import torch

    from mobilekd.bench.devices import estimate_for_model, estimate_inputs_from_module

    ins = estimate_inputs_from_module(tiny.module, (torch.from_numpy(tiny.x),))
    # flop_counter: addmm 1x16x8 + 1x8x4 = 160 MACs (320 FLOPs); weights 688 B as above
    assert (ins.macs, ins.weight_bytes) == (160, 688)
    # export graph: linear (8 floats), relu (8), linear (4) = 20 floats * 4 B = 80 B, 3 operators
    assert (ins.n_ops, ins.activation_bytes) == (3, 80)
    est = estimate_for_model("android-midrange", tiny.module, (torch.from_numpy(tiny.x),))
    assert est.label == "estimate" and est.ms > 0
