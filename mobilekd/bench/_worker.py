"""Subprocess entry of one latency measurement: `python -m mobilekd.bench._worker REQUEST.json`.

Kept free of mobilekd imports beyond the standard library and numpy, so the process holds only
the runtime under test. Memory: after importing the runtime we reset the kernel's peak-RSS
counter (write "5" to /proc/self/clear_refs, Linux >= 4.0) and read VmRSS as the baseline; after
the timed runs VmHWM from /proc/self/status is the peak of load + inference.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _reset_peak() -> str:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return ""
    except OSError as exc:  # not Linux, or a kernel that refuses: the peak then includes imports
        return f"peak RSS not reset ({exc.strerror}); includes runtime import"


def _loader(req: dict, feeds: list[np.ndarray]) -> tuple[Callable[[], Callable[[], object]], str]:
    """Import the runtime (before the memory baseline) and return a function that loads the
    model and returns a zero-argument callable running one inference."""
    fmt, path, threads = req["format"], req["path"], int(req["threads"])
    if fmt == "onnx":
        import onnxruntime as ort

        def load_onnx() -> Callable[[], object]:
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            names = [i.name for i in sess.get_inputs()]
            if sorted(names) != sorted(req["input_names"]):
                raise SystemExit(f"feeds {req['input_names']} do not match the model's inputs {names}")
            feed = dict(zip(req["input_names"], feeds))
            return lambda: sess.run(None, feed)

        return load_onnx, f"onnxruntime {ort.__version__} CPU, ORT_ENABLE_ALL, intra={threads} inter=1"
    import torch

    tensors = [torch.from_numpy(a) for a in feeds]
    if fmt == "executorch":
        from executorch.extension.pybindings.portable_lib import (
            _threadpool_get_thread_count,
            _unsafe_reset_threadpool,
        )
        from executorch.runtime import Runtime

        _unsafe_reset_threadpool(threads)  # the pool XNNPACK and the optimized kernels share
        runtime = Runtime.get()

        def load_pte() -> Callable[[], object]:
            method = runtime.load_program(path).load_method("forward")
            return lambda: method.execute(tensors)

        return load_pte, f"executorch Python runtime, threadpool={_threadpool_get_thread_count()}"
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)

    def load_pt2() -> Callable[[], object]:
        from mobilekd.models.program import load_program

        module = load_program(path)

        def run() -> object:
            with torch.inference_mode():
                return module(*tensors)

        return run

    return load_pt2, f"torch {torch.__version__} eager, set_num_threads={threads}"


def measure(req: dict) -> dict:
    with np.load(req["inputs"]) as npz:
        feeds = [np.ascontiguousarray(npz[name]) for name in req["input_names"]]
    load, notes = _loader(req, feeds)
    reset_note = _reset_peak()
    baseline_kb = _status_kb("VmRSS")

    t0 = time.perf_counter()
    run = load()
    run()
    cold_ms = (time.perf_counter() - t0) * 1e3
    for _ in range(int(req["warmup"])):
        run()
    times: list[float] = []
    start = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - start
        if len(times) >= req["min_runs"] and elapsed >= req["min_seconds"]:
            break
        if elapsed >= req["max_seconds"] and times:
            break
        r0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - r0) * 1e3)
    peak_kb = _status_kb("VmHWM")
    notes = "; ".join(n for n in (notes, reset_note) if n)
    return {"cold_start_ms": cold_ms, "baseline_rss_kb": baseline_kb, "peak_rss_kb": peak_kb,
            "times_ms": times, "notes": notes}


def main(argv: list[str]) -> int:
    req = json.loads(Path(argv[1]).read_text())
    result = measure(req)
    out = Path(req["result"])
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, out)  # atomic; mobilekd.store is not imported to keep the child lean
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
