"""summary.json: everything a CI job needs from a run, in one file (the contract in ARCHITECTURE.md).
Built from the stages' typed results only, so it can be rebuilt at any point of a run (the gate
stage gates the summary as it stands before the gate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mobilekd import __version__


def build_summary(pipeline: str, results: dict[str, BaseModel], statuses: dict[str, dict[str, Any]],
                  run: dict[str, Any] | None = None) -> dict[str, Any]:
    """`run`: the run's metadata (mobilekd.runinfo: started, seconds, command, seed, host, versions, git)."""
    return {
        "pipeline": pipeline,
        "mobilekd_version": __version__,
        "run": run,
        "stages": statuses,
        "data": _data(results),
        "models": _models(results),
        "artifacts": _artifacts(results),
        "gate": _gate(results),
        "bundle": _bundle(results),
    }


def _data(results: dict[str, Any]) -> dict[str, Any] | None:
    d = results.get("data")
    if d is None:
        return None
    return {"dataset": d.dataset, "task": d.task, "num_outputs": d.num_outputs, "sizes": d.sizes}


def _models(results: dict[str, Any]) -> dict[str, Any]:
    models: dict[str, Any] = {}
    t = results.get("teacher")
    if t is not None:
        models["teacher"] = {"params": t.params, "metrics": t.metrics}
    d = results.get("distill")
    if d is not None:
        models["student"] = {"params": d.params, "metrics": d.metrics}
    p = results.get("prune")
    if p is not None:
        models["student_pruned"] = {"params": p.params_after, "macs": p.macs_after, "metrics": p.metrics}
    q = results.get("quantize")
    if q is not None and q.model is not None:
        base = models.get("student_pruned") or models.get("student") or models.get("teacher") or {}
        models["student_int8"] = {"params": base.get("params"), "metrics": q.metrics,
                                  "scheme": q.schemes.get("executorch"), "keep_float": q.keep_float}
    b = results.get("bench")
    for name, stats in (getattr(b, "eager", None) or {}).items():
        if name in models:  # torch eager, batch 1, 1 thread: budgetable like any model field
            models[name]["latency_ms"] = {"p50": stats["p50"], "p90": stats["p90"], "runtime": "torch-eager"}
    return models


def _artifacts(results: dict[str, Any]) -> list[dict[str, Any]]:
    e = results.get("export")
    if e is None:
        return []
    v, b = results.get("verify"), results.get("bench")
    rows = []
    for a in e.artifacts:
        key = f"{a.format}/{a.variant}"
        row: dict[str, Any] = {"format": a.format, "variant": a.variant, "path": a.path,
                               "bytes": a.bytes, "sha256": a.sha256, "scheme": a.scheme, "details": a.details}
        if v is not None and key in v.parity:
            p = v.parity[key]
            row["parity"] = {"status": p.status, "reason": p.reason, "inputs": p.inputs,
                             **(p.metrics.model_dump() if p.metrics else {}), "diverges_at": p.diverges_at}
        if v is not None and key in getattr(v, "metrics", {}):
            row["metrics"] = v.metrics[key]  # this file, run on its own runtime, test split
        if b is not None:
            if key in b.sizes:
                row["zipped_bytes"] = b.sizes[key].get("zipped_bytes")
            lat = b.latency.get(key, [])
            row["latency"] = lat
            python = [r for r in lat if r["runtime"] != "executorch-native" and r["threads"] == 1]
            native = [r for r in lat if r["runtime"] == "executorch-native" and r["threads"] == 1]
            if python:
                row["latency_ms"] = {"p50": python[0]["p50"], "p90": python[0]["p90"], "runtime": python[0]["runtime"]}
            if native:
                row["latency_native_ms"] = {"p50": native[0]["p50"], "p90": native[0]["p90"]}
            if key in b.estimates:
                row["estimates"] = b.estimates[key]
            row.update(getattr(b, "compute", {}).get(key, {}))  # macs, flops, weight_bytes {dtype: bytes}
        rows.append(row)
    return rows


def _gate(results: dict[str, Any]) -> dict[str, Any] | None:
    g = results.get("gate")
    return None if g is None else g.model_dump(mode="json")


def _bundle(results: dict[str, Any]) -> dict[str, Any] | None:
    b = results.get("bundle")
    return None if b is None else {"dir": b.dir, "zip": b.zip}


def headline_metric(summary: dict[str, Any]) -> str:
    """The metric a run is judged by: its dataset task's HEADLINE (accuracy when the task is unknown)."""
    from mobilekd.specs import HEADLINE

    task = (summary.get("data") or {}).get("task", "classification")
    return HEADLINE.get(task, "accuracy")


def read_summary(run_dir: Path, *, require: tuple[str, ...] = ("models", "artifacts")) -> dict[str, Any]:
    """A run's summary.json, or a ConfigError saying why not. `gate` needs a finished run's
    `models` and `artifacts`; `compare` (require=()) also reads runs that ended in an error."""
    from mobilekd.errors import ConfigError
    from mobilekd.store import read_json

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"RUN_DIR: {str(run_dir)!r} is not a directory (expected a pipeline run directory holding summary.json)")
    f = run_dir / "summary.json"
    if not f.is_file():
        raise ConfigError(f"RUN_DIR: {str(f)!r} does not exist; run `mobilekd pipeline run --out {run_dir}` first")
    try:
        summary = read_json(f)
    except ValueError as e:
        raise ConfigError(f"{f}: not valid JSON ({e})") from None
    if not isinstance(summary, dict) or any(k not in summary for k in require):
        raise ConfigError(f"{f}: not a mobilekd summary (expected keys {' and '.join(require) or 'pipeline'})")
    return summary
