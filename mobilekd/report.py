"""report.html: the run for a person, in one self-contained file (plots inlined as PNG)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from mobilekd.store import write_text


def _plot_pareto(summary: dict[str, Any]) -> str | None:
    """Headline metric against file size, one point per artifact: the trade-off at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task = (summary.get("data") or {}).get("task", "classification")
    metric = "accuracy" if task == "classification" else "ndcg@10"
    models = summary.get("models", {})
    points = []
    for a in summary.get("artifacts", []):
        model = "student_int8" if a["variant"] == "int8" and "student_int8" in models else (
            "student_pruned" if "student_pruned" in models else "student")
        value = models.get(model, {}).get("metrics", {}).get(metric)
        if value is not None:
            points.append((a["bytes"] / 1e3, value, f"{a['format']}/{a['variant']}"))
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    for x, y, label in points:
        ax.scatter(x, y)
        ax.annotate(label, (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("file size (KB, log)")
    ax.set_ylabel(f"test {metric}")
    ax.set_title("accuracy vs size")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(summary: dict[str, Any]) -> str:
    models = summary.get("models", {})
    model_rows = [[html.escape(k), v.get("params"), html.escape(", ".join(f"{m}={x:.4f}" for m, x in v.get("metrics", {}).items()))]
                  for k, v in models.items()]
    art_rows = []
    for a in summary.get("artifacts", []):
        par = a.get("parity") or {}
        lat = a.get("latency_ms") or {}
        status = par.get("status", "-")
        color = {"passed": "green", "failed": "red"}.get(status, "gray")
        art_rows.append([a["format"], a["variant"], f"{a['bytes']:,}", f"<span style='color:{color}'>{status}</span>",
                         f"{lat.get('p50', float('nan')):.3f}" if lat else "-", html.escape(a.get("scheme", ""))])
    gate = summary.get("gate") or {"passed": True, "checks": []}
    gate_rows = [[html.escape(c["name"]), c["kind"], c["limit"], f"{c['value']:.6g}",
                  f"<span style='color:{'green' if c['passed'] else 'red'}'>{'pass' if c['passed'] else 'FAIL'}</span>"]
                 for c in gate["checks"]]
    plot = _plot_pareto(summary)
    img = f"<img alt='accuracy vs size' src='data:image/png;base64,{plot}'>" if plot else ""
    stages = ", ".join(f"{k}: {v['status']}" for k, v in summary.get("stages", {}).items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>mobilekd: {html.escape(summary['pipeline'])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px}}</style>
</head><body><h1>mobilekd run: {html.escape(summary['pipeline'])}</h1><p>mobilekd {summary['mobilekd_version']} &middot; {html.escape(stages)}</p>
<h2>Models</h2>{_table(['model', 'params', 'metrics (test)'], model_rows)}
<h2>Artifacts</h2>{_table(['format', 'variant', 'bytes', 'parity', 'p50 ms (1 thread)', 'scheme'], art_rows)}
<h2>Trade-off</h2>{img}
<h2>Gate: <span style="color:{'green' if gate['passed'] else 'red'}">{'passed' if gate['passed'] else 'FAILED'}</span></h2>
{_table(['check', 'bound', 'limit', 'value', 'verdict'], gate_rows)}
</body></html>"""


def write_report(path: Path, summary: dict[str, Any], ctx: Any = None) -> Path:
    return write_text(path, render(summary))
