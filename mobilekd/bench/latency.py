"""Latency of one exported model on this machine, one runtime at a time.

Each measurement runs in its own subprocess (`python -m mobilekd.bench._worker REQUEST.json`) so
that one runtime's thread pools, allocator state and imported libraries never colour another's
numbers, and so that the peak resident memory we report belongs to that model alone.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np
from pydantic import BaseModel, Field, model_validator

from mobilekd.errors import ConfigError, StageError
from mobilekd.specs import StrictModel
from mobilekd.store import atomic_path, read_json, write_bytes, write_json

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# What this module can time: the export formats that run on Linux (`export.types.Format` less
# coreml) plus "torch", an eager baseline that is not an export format, hence its own name.
TimedFormat = Literal["onnx", "executorch", "torch"]
Runtime = Literal["onnxruntime", "executorch-python", "executorch-native", "torch-eager"]
RUNTIME_OF_FORMAT: dict[str, Runtime] = {
    "onnx": "onnxruntime",
    "executorch": "executorch-python",
    "torch": "torch-eager",
}
# Every library that sizes a thread pool from the environment; the child gets them all.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                   "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


class LatencyOptions(StrictModel):
    """How long to measure: `warmup` untimed runs, then at least `min_runs` runs AND at least
    `min_seconds`, stopping early only at `max_seconds` (with at least one run)."""

    threads: tuple[int, ...] = (1,)
    warmup: int = Field(10, ge=0)
    min_runs: int = Field(50, ge=1)
    min_seconds: float = Field(1.0, ge=0.0)
    max_seconds: float = Field(10.0, gt=0.0)

    @model_validator(mode="after")
    def _check(self) -> "LatencyOptions":
        if not self.threads or any(t < 1 for t in self.threads):
            raise ValueError(f"threads: expected one or more positive integers, got {self.threads}")
        if self.max_seconds < self.min_seconds:
            raise ValueError(f"max_seconds ({self.max_seconds}) must be >= min_seconds ({self.min_seconds})")
        return self


class LatencyStats(BaseModel):
    """One runtime, one thread count. Times in milliseconds; `cv` is std/mean as a fraction."""

    runtime: Runtime
    threads: int
    runs: int
    p50: float
    p90: float
    p99: float
    mean: float
    cv: float
    cold_start_ms: float
    peak_memory_mb: float
    notes: str = ""


def summarize(times_ms: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99 (numpy's default linear interpolation between order statistics), mean, and the
    coefficient of variation std/mean with the population std (ddof=0)."""
    t = np.asarray(times_ms, dtype=np.float64)
    if t.size == 0:
        raise ValueError("no timed runs to summarize")
    mean = float(t.mean())
    p50, p90, p99 = (float(v) for v in np.percentile(t, [50, 90, 99]))
    cv = float(t.std() / mean) if mean > 0 else 0.0
    return {"runs": int(t.size), "p50": p50, "p90": p90, "p99": p99, "mean": mean, "cv": cv}


def stats_from_worker(result: dict, *, runtime: Runtime, threads: int, notes: str = "") -> LatencyStats:
    """Turn the raw JSON a worker (Python or native) prints into LatencyStats."""
    peak_kb = max(0, int(result["peak_rss_kb"]) - int(result["baseline_rss_kb"]))
    all_notes = "; ".join(n for n in (result.get("notes", ""), notes) if n)
    return LatencyStats(runtime=runtime, threads=threads, cold_start_ms=float(result["cold_start_ms"]),
                        peak_memory_mb=peak_kb / 1024.0, notes=all_notes, **summarize(result["times_ms"]))


def thread_env(threads: int) -> dict[str, str]:
    """The parent's environment with every thread-count variable pinned to `threads`."""
    env = dict(os.environ)
    env.update({k: str(threads) for k in THREAD_ENV_VARS})
    return env


def check_feeds(feeds: dict[str, np.ndarray]) -> None:
    if not feeds:
        raise ConfigError("feeds: expected at least one named batch-1 numpy array, got none")
    for name, arr in feeds.items():
        if not isinstance(arr, np.ndarray):
            raise ConfigError(f"feeds[{name!r}]: expected a numpy array, got {type(arr).__name__}")
        if arr.ndim == 0 or arr.shape[0] != 1:
            raise ConfigError(f"feeds[{name!r}]: expected batch 1 (shape (1, ...)), got shape {arr.shape}")


def measure_latency(format: TimedFormat, path: "Path | torch.nn.Module", feeds: dict[str, np.ndarray], *,
                    threads: int, options: LatencyOptions) -> LatencyStats:
    """Measure one model file in a fresh subprocess with `threads` threads.

    format "onnx" runs ONNX Runtime (CPU provider, all graph optimisations); "executorch" runs the
    ExecuTorch Python runtime (XNNPACK as lowered); "torch" runs a torch.export .pt2 file, or an
    nn.Module, which is torch.export-ed here first. Feeds are passed positionally in dict order to
    ExecuTorch and torch (a .pte keeps no input names) and by name to ONNX Runtime.
    """
    if format not in RUNTIME_OF_FORMAT:
        raise ConfigError(f"format: expected one of {', '.join(RUNTIME_OF_FORMAT)}, got {format!r}")
    if threads < 1:
        raise ConfigError(f"threads: expected a positive integer, got {threads}")
    check_feeds(feeds)
    with tempfile.TemporaryDirectory(prefix="mobilekd-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        notes = ""
        if format == "torch" and not isinstance(path, (str, Path)):
            path, notes = _export_module(path, feeds, tmp / "model.pt2"), "nn.Module torch.export-ed, run eagerly"
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"path: model file {str(path)!r} does not exist")
        inputs = tmp / "inputs.npz"
        buf = io.BytesIO()
        np.savez(buf, **feeds)
        write_bytes(inputs, buf.getvalue())
        request = {"format": format, "path": str(path.resolve()), "inputs": str(inputs),
                   "input_names": list(feeds), "threads": threads, "result": str(tmp / "result.json"),
                   **{k: getattr(options, k) for k in LatencyOptions.model_fields if k != "threads"}}
        write_json(tmp / "request.json", request)
        _run_worker(tmp / "request.json", threads=threads, options=options)
        result = read_json(tmp / "result.json")
    return stats_from_worker(result, runtime=RUNTIME_OF_FORMAT[format], threads=threads, notes=notes)


def _run_worker(request: Path, *, threads: int, options: LatencyOptions) -> None:
    timeout = 120.0 + 2.0 * options.max_seconds + options.warmup  # loading a runtime takes seconds
    proc = subprocess.run([sys.executable, "-m", "mobilekd.bench._worker", str(request)],
                          env=thread_env(threads), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise StageError(f"bench worker for {request} failed (exit {proc.returncode}): {tail}")


def _export_module(module: "torch.nn.Module", feeds: dict[str, np.ndarray], out: Path) -> Path:
    """An nn.Module crosses the process boundary as a torch.export program: no pickling of
    user classes, and the child needs nothing of the caller's import path."""
    import torch

    args = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in feeds.values())
    program = torch.export.export(module.eval(), args)
    with atomic_path(out) as tmp:
        torch.export.save(program, str(tmp))
    return out


def load_result_json(text: str) -> dict:
    """Parse the one JSON object a runner printed (the last non-empty line of its stdout)."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        raise RuntimeError("runner printed no result")
    return json.loads(lines[-1])
