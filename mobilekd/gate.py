"""Budgets -> checks. A budget selects one value of summary.json (a model metric, a metric drop
against another model, or an artifact's size, parity, latency, memory or phone estimate) and bounds
it. A budget that names something the run did not produce is an error (exit 2), never a pass:
a CI gate that silently passes because a file went missing is worse than none.

Also renders a gate report for CI: JUnit XML (one testcase per check) and Markdown (a job summary).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from mobilekd.bench.latency import Runtime
from mobilekd.errors import ConfigError
from mobilekd.export.types import Format
from mobilekd.specs import StrictModel

# Latency-type artifact metrics -> the LatencyStats field they read.
LATENCY = {"latency_p50_ms": "p50", "latency_p90_ms": "p90", "latency_p99_ms": "p99", "latency_mean_ms": "mean",
           "latency_cv": "cv", "cold_start_ms": "cold_start_ms", "peak_memory_mb": "peak_memory_mb"}
# Of those, the ones a phone estimate (a single number of ms) can stand for.
ESTIMATED = ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_mean_ms")
# Size-type artifact metrics (size_mb = bytes / 1e6; weight_bytes = stored weights, all dtypes).
FILE = ("bytes", "size_mb", "zipped_bytes", "macs", "flops", "weight_bytes")
PARITY = ("max_abs_err", "max_rel_err", "snr_db", "cosine", "top1_agreement", "topk_overlap")
PYTHON_RUNTIME = {"onnx": "onnxruntime", "executorch": "executorch-python", "coreml": "coreml"}
UNITS = {"bytes": "B", "zipped_bytes": "B", "weight_bytes": "B", "size_mb": "MB", "peak_memory_mb": "MB",
         "cold_start_ms": "ms", **{k: "ms" for k in ESTIMATED}}


def is_artifact_metric(metric: str) -> bool:
    return metric in LATENCY or metric in FILE or metric in PARITY or metric.startswith("weight_bytes_")


class Check(BaseModel):
    name: str
    limit: float
    kind: str  # "max" | "min"
    value: float
    passed: bool
    unit: str = ""


class GateReport(BaseModel):
    passed: bool
    checks: list[Check]


class Budget(StrictModel):
    """One gate check: a value summary.json reports, selected by `model` (a model metric, or its
    `_drop` `against` another model) or by format/variant (size, parity, latency per runtime and
    threads, or a phone `profile`'s estimate), bounded by exactly one of min or max. docs/gate.md."""

    metric: str = Field(min_length=1)
    format: Format | None = None
    variant: str | None = None
    runtime: Runtime | None = None
    threads: int | None = Field(None, ge=1)
    profile: str | None = None
    model: str | None = None
    against: str | None = None
    min: float | None = None
    max: float | None = None
    # Confirms an unusual bound: `upper` for a max on a higher-is-better metric (accuracy, cosine, ...),
    # `lower` for a min on a lower-is-better one (bytes, latency, *_drop, errors); else such a bound is refused.
    direction: Literal["upper", "lower"] | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> "Budget":
        problem = budget_problem(self)
        if problem:
            raise ValueError(problem)
        return self


class GateConfig(StrictModel):
    budgets: list[Budget] = []


def budget_problem(b: Budget) -> str | None:
    """Why a budget cannot be evaluated against any run (None when its shape is sound). Called by
    Budget's validator, so a bad budget fails when the file is read, before any work."""
    return _shape_problem(b) or direction_problem(b)


def _shape_problem(b: Budget) -> str | None:
    if (b.min is None) == (b.max is None):
        return f"budget for {b.metric!r} needs exactly one of min or max"
    drop = b.metric.endswith("_drop")
    selects_file = b.format is not None or b.variant is not None
    if b.against is not None and not drop:
        return (f"budget for {b.metric!r} sets against={b.against!r}; a comparison budgets the drop: "
                f"use metric: {b.metric}_drop")
    if drop and (b.against is None or (b.model is None and not selects_file)):
        return (f"budget for {b.metric!r} needs against: (the reference model) and either model: (the "
                "compressed model) or format:/variant: (an exported file, scored on its own runtime)")
    if b.model is not None:
        extra = [k for k in ("format", "variant", "runtime", "threads", "profile") if getattr(b, k) is not None]
        if extra:
            return (f"budget for {b.metric!r} of model {b.model!r} cannot also set {', '.join(extra)} "
                    "(those select an exported file; drop model: to budget a file)")
        return None
    if not is_artifact_metric(b.metric) and selects_file:
        extra = [k for k in ("runtime", "threads", "profile") if getattr(b, k) is not None]
        if extra:
            return f"budget for {b.metric!r} (a task metric of a file) cannot set {', '.join(extra)}"
        return None  # a task metric (accuracy, ndcg@10, ...) of the file, or its drop against a model
    if not is_artifact_metric(b.metric):
        return (f"unknown file metric {b.metric!r}; expected one of {', '.join([*FILE, *PARITY, *LATENCY])}, "
                "weight_bytes_<dtype>, or set model: to budget a model metric (accuracy, ndcg@10, params, ...)")
    selectors = [k for k in ("runtime", "threads", "profile") if getattr(b, k) is not None]
    if selectors and b.metric not in LATENCY:
        return f"budget for {b.metric!r} cannot set {', '.join(selectors)}; those select a latency measurement"
    if b.profile is not None and (b.runtime is not None or b.threads is not None):
        return f"budget for {b.metric!r}: profile {b.profile!r} is a phone estimate; it takes no runtime or threads"
    if b.profile is not None and b.metric not in ESTIMATED:
        return f"budget for {b.metric!r}: a phone estimate gives only {', '.join(ESTIMATED)}"
    if b.runtime is not None and b.format is not None:
        ok = {"onnx": ("onnxruntime",), "executorch": ("executorch-python", "executorch-native"), "coreml": ()}
        if b.runtime not in ok[b.format]:
            return f"budget for {b.metric!r}: runtime {b.runtime!r} does not run format {b.format!r}"
    return None


# Metrics where a larger value is better; every other metric (sizes, latencies, errors, drops) is
# lower-is-better. A bound against that grain (max on accuracy) is usually min and max swapped.
HIGHER_IS_BETTER = ("accuracy", "top1_agreement", "topk_overlap", "cosine", "snr_db", "f1", "precision",
                    "recall", "ndcg", "hit", "mrr", "map", "auc")


def higher_is_better(metric: str) -> bool | None:
    """True/False when the direction of `metric` is known, None when it is not (e.g. params)."""
    m = metric.lower()
    if m.endswith("_drop") or m in LATENCY or m in FILE or m.startswith("weight_bytes") or m.endswith(("_err", "_ms", "_mb")):
        return False
    if any(m == h or m.startswith((h + "@", h + "_")) for h in HIGHER_IS_BETTER):
        return True
    return None


def direction_problem(b: Budget) -> str | None:
    """A max on a higher-is-better metric (or a min on a lower-is-better one) needs `direction:`."""
    better = higher_is_better(b.metric)
    if better is True and b.max is not None and b.direction != "upper":
        return (f"budget for {b.metric!r} sets max: {b.max}, but higher {b.metric} is better; use min: "
                f"(a lower bound), or add direction: upper if you mean a ceiling")
    if better is False and b.min is not None and b.direction != "lower":
        return (f"budget for {b.metric!r} sets min: {b.min}, but lower {b.metric} is better; use max: "
                f"(an upper bound), or add direction: lower if you mean a floor")
    return None


def check_name(b: Budget) -> str:
    runtime = b.runtime
    sel = [b.format, b.variant, runtime, f"threads={b.threads}" if b.threads else None,
           f"estimate:{b.profile}" if b.profile else None, b.model, f"vs {b.against}" if b.against else None]
    sel = [x for x in sel if x]
    return f"{b.metric}[{','.join(sel)}]" if sel else b.metric


def evaluate_budgets(budgets: Sequence[Budget], summary: dict[str, Any]) -> GateReport:
    checks = []
    for b in budgets:
        value = resolve(b, summary)
        kind, limit = ("max", b.max) if b.max is not None else ("min", b.min)
        if limit is None:  # pragma: no cover - Budget's validator guarantees one bound
            raise RuntimeError(f"budget {b} has no bound")
        passed = value <= limit if kind == "max" else value >= limit
        checks.append(Check(name=check_name(b), limit=limit, kind=kind, value=value, passed=passed,
                            unit=UNITS.get(b.metric, "")))
    return GateReport(passed=all(c.passed for c in checks), checks=checks)


def resolve(b: Budget, summary: dict[str, Any]) -> float:
    """The value a budget bounds; ConfigError naming the budget when the run did not produce it."""
    name = check_name(b)
    if b.model is not None:
        models = summary.get("models") or {}
        if b.against is not None:
            base = b.metric[: -len("_drop")]
            return _model_value(models, b.against, base, name) - _model_value(models, b.model, base, name)
        return _model_value(models, b.model, b.metric, name)
    row = _artifact(b, summary, name)
    where = f"{row['format']}/{row['variant']}"
    if not is_artifact_metric(b.metric):  # the file's own task metric, or its drop against a model
        base = b.metric[: -len("_drop")] if b.against is not None else b.metric
        value = _file_task_metric(row, base, where, name)
        if b.against is not None:
            return _model_value(summary.get("models") or {}, b.against, base, name) - value
        return value
    if b.metric in LATENCY:
        return _latency(b, row, where, name)
    if b.metric in PARITY:
        v = (row.get("parity") or {}).get(b.metric)
        if not isinstance(v, (int, float)):
            status = (row.get("parity") or {}).get("status", "not verified")
            raise ConfigError(f"gate budget {name}: {where} has no parity {b.metric} (parity status: {status})")
        return float(v)
    if b.metric.startswith("weight_bytes"):
        per = row.get("weight_bytes")
        if not isinstance(per, dict):
            raise ConfigError(f"gate budget {name}: the run measured no weight bytes for {where} (bench stage off?)")
        if b.metric == "weight_bytes":
            return float(sum(per.values()))
        dtype = b.metric[len("weight_bytes_"):]
        if dtype not in per:
            raise ConfigError(f"gate budget {name}: {where} stores no {dtype} weights; it has {', '.join(per) or 'none'}")
        return float(per[dtype])
    key = "bytes" if b.metric == "size_mb" else b.metric
    v = row.get(key)
    if not isinstance(v, (int, float)):
        raise ConfigError(f"gate budget {name}: the run measured no {key} for {where} (bench stage off?)")
    return float(v) / 1e6 if b.metric == "size_mb" else float(v)


def _file_task_metric(row: dict[str, Any], metric: str, where: str, name: str) -> float:
    metrics = row.get("metrics")
    if not isinstance(metrics, dict):
        if row["format"] == "coreml":
            raise ConfigError(f"gate budget {name}: {where} has no task metrics (CoreML files run only on "
                              "macOS/iOS; its parity is not_executed); budget its size instead")
        raise ConfigError(f"gate budget {name}: {where} was not scored on its runtime (verify stage off?)")
    if metric not in metrics:
        raise ConfigError(f"gate budget {name}: {where} has no metric {metric!r}; it has {', '.join(metrics) or 'none'}")
    return float(metrics[metric])


def _latency(b: Budget, row: dict[str, Any], where: str, name: str) -> float:
    if b.profile is not None:
        for est in row.get("estimates") or []:
            if est.get("profile") == b.profile:
                return float(est["ms"])
        raise ConfigError(f"gate budget {name}: no {b.profile!r} estimate for {where} (add it to bench.profiles)")
    threads = b.threads or 1
    runtime = b.runtime or PYTHON_RUNTIME.get(row["format"], row["format"])
    rows = row.get("latency") or []
    for r in rows:
        if r["threads"] == threads and r["runtime"] == runtime:
            return float(r[LATENCY[b.metric]])
    if row["format"] == "coreml":
        raise ConfigError(f"gate budget {name}: {where} is not timed (CoreML files run only on macOS/iOS); "
                          "budget its size, or an estimate with profile:")
    timed = sorted({f"{r['runtime']}@{r['threads']}" for r in rows}) or ["nothing (bench stage off?)"]
    raise ConfigError(f"gate budget {name}: the run did not time {where} with {runtime} at {threads} thread(s); "
                      f"it timed {', '.join(timed)}")


def _model_value(models: dict[str, Any], model: str, metric: str, name: str) -> float:
    if model not in models:
        raise ConfigError(f"gate budget {name}: the run produced no model {model!r}; it has {', '.join(models) or 'none'}")
    m = models[model]
    if isinstance(m.get(metric), (int, float)) and not isinstance(m.get(metric), bool):
        return float(m[metric])
    metrics = m.get("metrics") or {}
    if metric not in metrics:
        known = [k for k, v in m.items() if isinstance(v, (int, float))] + list(metrics)
        raise ConfigError(f"gate budget {name}: model {model!r} has no metric {metric!r}; it has {', '.join(known) or 'none'}")
    return float(metrics[metric])


def _artifact(b: Budget, summary: dict[str, Any], name: str) -> dict[str, Any]:
    rows = [r for r in summary.get("artifacts") or []
            if (b.format is None or r["format"] == b.format) and (b.variant is None or r["variant"] == b.variant)]
    if not rows:
        have = ", ".join(f"{r['format']}/{r['variant']}" for r in summary.get("artifacts") or []) or "none"
        raise ConfigError(f"gate budget {name}: the run produced no file with format={b.format} "
                          f"variant={b.variant}; it has {have}")
    if len(rows) > 1:
        raise ConfigError(f"gate budget {name}: matches {len(rows)} files "
                          f"({', '.join(r['format'] + '/' + r['variant'] for r in rows)}); set format and variant")
    return rows[0]


# ---- reading budget files --------------------------------------------------------------------

def parse_budgets(doc: Any, source: str) -> list[Budget]:
    """`{budgets: [...]}` (a budget file) or `{gate: {budgets: [...]}}` (a pipeline file) -> budgets,
    every problem listed as `budgets[i].key: what was expected, got VALUE`."""
    from pydantic import ValidationError

    from mobilekd.yaml_input import format_error, indexed

    if isinstance(doc, dict) and "gate" in doc and "budgets" not in doc:
        doc = doc["gate"]
        if doc is None:
            raise ConfigError(f"{source}: gate is off (gate: null); expected gate.budgets: [...]")
    if not isinstance(doc, dict) or "budgets" not in doc:
        raise ConfigError(f"{source}: expected a mapping with a budgets: list, e.g. "
                          "budgets: [{metric: bytes, format: executorch, variant: int8, max: 1000000}]")
    try:
        cfg = GateConfig.model_validate(doc)
    except ValidationError as e:
        lines = [format_error(err, GateConfig, label=indexed) for err in e.errors()]
        raise ConfigError(f"{source}: invalid budgets:\n  " + "\n  ".join(lines)) from None
    return list(cfg.budgets)


def load_budgets(path: Path) -> list[Budget]:
    """A budget YAML file (or a pipeline file, whose gate section is used)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--budget: {str(path)!r} not found (expected a YAML file with budgets: [...])")
    from mobilekd.yaml_input import parse_yaml_text, read_text_file

    doc = parse_yaml_text(read_text_file(path, "budget YAML file"), str(path))  # hostile input refused
    return parse_budgets(doc, str(path))


def budgets_for_run(run_dir: Path, budget: Path | None) -> tuple[list[Budget], str]:
    """The budgets `mobilekd gate` applies to a run (the --budget file, else the gate section of
    the run's own pipeline.yaml) and where they came from."""
    from mobilekd.yaml_input import read_yaml

    if budget is not None:
        return load_budgets(budget), str(budget)
    own = run_dir / "pipeline.yaml"
    if not own.is_file():
        raise ConfigError(f"--budget not given and {str(own)!r} does not exist; pass --budget budgets.yaml")
    budgets = parse_budgets(read_yaml(own), str(own))
    if not budgets:
        raise ConfigError(f"{own}: gate.budgets is empty; pass --budget budgets.yaml")
    return budgets, f"{own} (gate section)"


# ---- CI renderings ---------------------------------------------------------------------------

def fmt_number(x: float) -> str:
    """Whole numbers with thousands separators (bytes, params), the rest to 6 significant digits."""
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:.6g}"


def fmt_bound(c: Check) -> str:
    return f"{'<=' if c.kind == 'max' else '>='} {fmt_number(c.limit)}{' ' + c.unit if c.unit else ''}"


def fmt_value(c: Check) -> str:
    return f"{fmt_number(c.value)}{' ' + c.unit if c.unit else ''}"


def to_junit(report: GateReport, suite: str) -> str:
    """JUnit XML: one testsuite, one testcase per check; a failed check is a <failure> whose message
    gives the value and the limit (what GitHub, GitLab and Jenkins test reporters show)."""
    import xml.etree.ElementTree as ET

    failures = sum(not c.passed for c in report.checks)
    root = ET.Element("testsuites", name="mobilekd gate", tests=str(len(report.checks)), failures=str(failures))
    ts = ET.SubElement(root, "testsuite", name=f"mobilekd gate: {suite}", tests=str(len(report.checks)),
                       failures=str(failures), errors="0", skipped="0")
    for c in report.checks:
        tc = ET.SubElement(ts, "testcase", classname=f"mobilekd.gate.{suite}", name=c.name, time="0")
        if not c.passed:
            f = ET.SubElement(tc, "failure", type="BudgetExceeded",
                              message=f"{c.name}: value {fmt_value(c)} is not {fmt_bound(c)}")
            f.text = f"{c.name}\nvalue: {c.value!r}\nlimit: {c.kind} {c.limit!r}\n"
        else:
            ET.SubElement(tc, "system-out").text = f"value {fmt_value(c)} {fmt_bound(c)}"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def to_markdown(report: GateReport, suite: str) -> str:
    """A GitHub job summary ($GITHUB_STEP_SUMMARY): verdict line, then one row per check."""
    n_fail = sum(not c.passed for c in report.checks)
    head = (f"### mobilekd gate `{suite}`: " + ("✅ passed" if report.passed else f"❌ FAILED ({n_fail} of "
            f"{len(report.checks)} checks)") + "\n\n")
    rows = ["| check | bound | value | verdict |", "|---|---|---|---|"]
    for c in report.checks:
        rows.append(f"| `{c.name}` | {fmt_bound(c)} | {fmt_value(c)} | {'✅ pass' if c.passed else '❌ **FAIL**'} |")
    return head + "\n".join(rows) + "\n"
