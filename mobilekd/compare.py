"""Compare runs: what changed in the pipeline, and what that did to each metric, size, latency and
gate check (what a user looks at after turning a knob). Read from each run's summary.json and
pipeline.yaml only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobilekd.specs import HEADLINE
from mobilekd.summary import read_summary
from mobilekd.tables import FORMAT, fmt_bytes, fmt_ms


@dataclass
class Row:
    """One compared quantity: its values per run (None: that run has none), how to print one, and
    whether larger is better (for the delta's sign; None: no better direction)."""

    section: str
    name: str
    values: list[Any]
    kind: str = "num"  # num | bytes | ms | text
    higher_is_better: bool | None = None
    marks: list[str] | None = None  # per run, appended to the value (a gate check's FAIL)

    def cell(self, i: int) -> str:
        mark = self.marks[i] if self.marks else ""
        return show(self.values[i], self.kind) + (f" {mark}" if mark else "")

    def delta(self) -> str:
        a, b = self.values[0], self.values[-1]
        if self.kind == "text":
            return "" if a == b else "changed"
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            return ""
        d = b - a
        if d == 0:
            return "="
        rel = f" ({d / a:+.1%})" if a else ""
        sign = "+" if d > 0 else "-"
        if self.kind == "bytes":
            return f"{sign}{fmt_bytes(abs(d))}{rel}"
        if self.kind == "ms":
            return f"{sign}{fmt_ms(abs(d))}{rel}"
        return f"{d:+.4f}" if isinstance(d, float) else f"{d:+,}"


def show(v: Any, kind: str) -> str:
    if v is None:
        return "-"
    if kind == "text":
        return str(v)
    if kind == "bytes":
        return fmt_bytes(v)
    if kind == "ms":
        return fmt_ms(v)
    if isinstance(v, bool):
        return "pass" if v else "FAIL"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _flat(doc: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for k, v in doc.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): doc}


def config_rows(run_dirs: list[Path]) -> list[Row]:
    """The pipeline keys whose values differ between the runs (the knobs that were turned)."""
    from mobilekd.yaml_input import read_yaml

    flats = []
    for d in run_dirs:
        f = Path(d) / "pipeline.yaml"
        flats.append(_flat(read_yaml(f)) if f.is_file() else {})
    keys = sorted({k for f in flats for k in f})
    return [Row("pipeline", k, [f.get(k) for f in flats], "text") for k in keys
            if len({repr(f.get(k)) for f in flats}) > 1]


def _artifact_key(a: dict[str, Any]) -> str:
    return f"{FORMAT.get(a['format'], a['format'])}/{a['variant']}"


def compare_rows(run_dirs: list[Path]) -> list[Row]:
    summaries = [read_summary(d, require=()) for d in run_dirs]
    rows = config_rows(run_dirs)
    models = list(dict.fromkeys(m for s in summaries for m in s.get("models") or {}))
    for m in models:
        entries = [(s.get("models") or {}).get(m) or {} for s in summaries]
        metrics = list(dict.fromkeys(k for e in entries for k in e.get("metrics") or {}))
        metrics.sort(key=lambda k: (k not in HEADLINE.values(), k != "f1_macro"))
        for k in metrics[:2]:
            rows.append(Row("models", f"{m} {k}", [(e.get("metrics") or {}).get(k) for e in entries], "num", True))
        rows.append(Row("models", f"{m} params", [e.get("params") for e in entries], "num", False))
    arts = list(dict.fromkeys(_artifact_key(a) for s in summaries for a in s.get("artifacts") or []))
    for key in arts:
        found = [next((a for a in s.get("artifacts") or [] if _artifact_key(a) == key), None) for s in summaries]
        rows.append(Row("files", f"{key} size", [a and a.get("bytes") for a in found], "bytes", False))
        rows.append(Row("files", f"{key} p50", [a and (a.get("latency_ms") or {}).get("p50") for a in found], "ms", False))
        own = [a and (a.get("metrics") or {}) for a in found]
        for k in list(dict.fromkeys(k for o in own if o for k in o))[:1]:
            rows.append(Row("files", f"{key} {k}", [o and o.get(k) for o in own], "num", True))
    checks = list(dict.fromkeys(c["name"] for s in summaries for c in (s.get("gate") or {}).get("checks", [])))
    for name in checks:
        found = [next((c for c in (s.get("gate") or {}).get("checks", []) if c["name"] == name), None)
                 for s in summaries]
        unit = next((c.get("unit", "") for c in found if c), "")
        kind = {"B": "bytes", "ms": "ms"}.get(unit, "num")
        vals = [c and (c["value"] * 1e6 if unit == "MB" else c["value"]) for c in found]
        marks = ["" if c is None else ("pass" if c["passed"] else "FAIL") for c in found]
        rows.append(Row("gate", name, vals, "bytes" if unit == "MB" else kind, marks=marks))
    return rows


def run_labels(run_dirs: list[Path]) -> list[str]:
    """Short column names: the runs' folder names, made unique."""
    names = [Path(d).name or str(d) for d in run_dirs]
    return names if len(set(names)) == len(names) else [f"{i + 1}:{n}" for i, n in enumerate(names)]


def to_markdown(run_dirs: list[Path], rows: list[Row]) -> str:
    labels = run_labels(run_dirs)
    head = "| | " + " | ".join(f"`{lab}`" for lab in labels) + " | Δ (last - first) |"
    out = ["### mobilekd compare", "", head, "|---|" + "---|" * len(labels) + "---|"]
    section = None
    for r in rows:
        if r.section != section:
            section = r.section
            out.append(f"| **{section}** |" + " |" * (len(labels) + 1))
        out.append(f"| {r.name} | " + " | ".join(r.cell(i) for i in range(len(labels))) + f" | {r.delta()} |")
    return "\n".join(out) + "\n"

