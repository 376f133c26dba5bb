"""mobilekd.bench: latency on this machine (one subprocess per measurement), size on disk and
zipped, and roofline latency ESTIMATES for phone profiles. Heavy runtimes (onnxruntime,
executorch, torch) are imported only inside the functions that need them."""

from mobilekd.bench.devices import (Estimate, EstimateInputs, Profile, calibrate, calibrate_from_file,
                                    estimate_for_model, estimate_inputs_from_file,
                                    estimate_inputs_from_module, estimate_latency, get_profile, load_profiles)
from mobilekd.bench.latency import LatencyOptions, LatencyStats, measure_latency, summarize
from mobilekd.bench.native import NativeRunnerUnavailable, build_native_runner, measure_native, run_native
from mobilekd.bench.size import SizeReport, size_report, weight_bytes_by_precision

__all__ = [
    "Estimate", "EstimateInputs", "LatencyOptions", "LatencyStats", "NativeRunnerUnavailable", "Profile",
    "SizeReport", "build_native_runner", "calibrate", "calibrate_from_file", "estimate_inputs_from_file",
    "estimate_for_model", "estimate_inputs_from_module", "estimate_latency", "get_profile", "load_profiles", "measure_latency", "measure_native", "run_native",
    "size_report", "summarize", "weight_bytes_by_precision",
]
