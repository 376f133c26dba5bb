"""Budgets -> checks. A budget selects one value of summary.json (a model metric, a metric drop
against another model, or an artifact's size, latency, memory or parity) and bounds it. A budget
that names something the run did not produce is an error, never a pass."""

from __future__ import annotations

from typing import Any, Sequence

from pydantic import BaseModel

from mobilekd.config import Budget
from mobilekd.errors import ConfigError

# Artifact metrics: name -> how to read it from one artifact row of summary.json (None: special).
_LATENCY = {"latency_p50_ms": "p50", "latency_p90_ms": "p90", "latency_p99_ms": "p99", "latency_mean_ms": "mean",
            "cold_start_ms": "cold_start_ms", "peak_memory_mb": "peak_memory_mb"}
_FILE = {"bytes": "bytes", "zipped_bytes": "zipped_bytes", "size_mb": "bytes"}


class Check(BaseModel):
    name: str
    limit: float
    kind: str  # "max" | "min"
    value: float
    passed: bool


class GateReport(BaseModel):
    passed: bool
    checks: list[Check]


def check_name(b: Budget) -> str:
    sel = [x for x in (b.format, b.variant, b.model, f"vs {b.against}" if b.against else None,
                       f"threads={b.threads}" if b.threads else None, b.profile) if x]
    return f"{b.metric}[{','.join(sel)}]" if sel else b.metric


def evaluate_budgets(budgets: Sequence[Budget], summary: dict[str, Any]) -> GateReport:
    checks = []
    for b in budgets:
        value = resolve(b, summary)
        limit = b.max if b.max is not None else b.min
        assert limit is not None  # guaranteed by Budget's validator
        passed = value <= limit if b.max is not None else value >= limit
        checks.append(Check(name=check_name(b), limit=limit, kind="max" if b.max is not None else "min",
                            value=value, passed=passed))
    return GateReport(passed=all(c.passed for c in checks), checks=checks)


def resolve(b: Budget, summary: dict[str, Any]) -> float:
    """The value a budget bounds; ConfigError naming the budget when the run did not produce it."""
    name = check_name(b)
    if b.model is not None:
        models = summary.get("models", {})
        if b.against is not None:
            base = b.metric[: -len("_drop")] if b.metric.endswith("_drop") else b.metric
            return _model_metric(models, b.against, base, name) - _model_metric(models, b.model, base, name)
        return _model_metric(models, b.model, b.metric, name)
    row = _artifact(b, summary, name)
    if b.metric in _FILE:
        v = row.get(_FILE[b.metric])
        if v is None:
            raise ConfigError(f"gate budget {name}: the run measured no {b.metric} for {row['format']}/{row['variant']}")
        return float(v) / 1e6 if b.metric == "size_mb" else float(v)
    if b.metric in _LATENCY:
        if b.profile is not None:
            for est in row.get("estimates", []):
                if est.get("profile") == b.profile:
                    return float(est["ms"])
            raise ConfigError(f"gate budget {name}: no estimate for profile {b.profile!r} (add it to bench.profiles)")
        threads = b.threads or 1
        for r in row.get("latency", []):
            if r["threads"] == threads and r["runtime"] != "executorch-native":
                return float(r[_LATENCY[b.metric]])
        raise ConfigError(f"gate budget {name}: the run did not time {row['format']}/{row['variant']} at {threads} thread(s)")
    parity = row.get("parity") or {}
    if b.metric in parity and isinstance(parity[b.metric], (int, float)):
        return float(parity[b.metric])
    raise ConfigError(f"gate budget {name}: unknown artifact metric {b.metric!r}; expected one of "
                      f"{', '.join([*_FILE, *_LATENCY, 'max_abs_err', 'top1_agreement', 'cosine', 'snr_db'])}, "
                      "or set model: for a model metric")


def _model_metric(models: dict[str, Any], model: str, metric: str, name: str) -> float:
    if model not in models:
        raise ConfigError(f"gate budget {name}: the run produced no model {model!r}; it has {', '.join(models) or 'none'}")
    m = models[model]
    if metric == "params":
        return float(m["params"])
    if metric not in m.get("metrics", {}):
        raise ConfigError(f"gate budget {name}: model {model!r} has no metric {metric!r}; "
                          f"it has {', '.join(m.get('metrics', {})) or 'none'}")
    return float(m["metrics"][metric])


def _artifact(b: Budget, summary: dict[str, Any], name: str) -> dict[str, Any]:
    rows = [r for r in summary.get("artifacts", [])
            if (b.format is None or r["format"] == b.format) and (b.variant is None or r["variant"] == b.variant)]
    if not rows:
        raise ConfigError(f"gate budget {name}: the run produced no artifact with format={b.format} variant={b.variant}")
    if len(rows) > 1:
        raise ConfigError(f"gate budget {name}: matches {len(rows)} artifacts; set format and variant")
    return rows[0]
