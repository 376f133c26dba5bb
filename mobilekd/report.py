"""report.html: the run for a person, in one self-contained file (CSS inline, plots as data: PNGs,
no script, nothing fetched): the pipeline's stages, each model's metrics, each file's size, parity
and latency, the accuracy-vs-size and accuracy-vs-latency trade-off, the quantization sensitivity
table when there is one, and the gate's verdicts in red and green.

Built from summary.json plus two things summary.json does not carry: the eager latencies of the
teacher and float student (bench stage) and the sensitivity table (quantize stage), taken from the
RunContext when the pipeline writes the report, or from the stages' stage.json when re-rendered."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from mobilekd.store import read_json, write_text

FIGSIZE, DPI = (5.1, 3.8), 100  # every plot is 510 x 380 px: two side by side on a laptop screen
COLORS = {"teacher": "#7f7f7f", "student": "#1f77b4", "student_pruned": "#17becf", "student_int8": "#2ca02c",
          "onnx": "#ff7f0e", "executorch": "#d62728", "coreml": "#9467bd"}
CSS = """body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1100px;
color:#1d1d1f;padding:0 16px}h1{font-size:24px;margin-bottom:4px}h2{font-size:18px;margin-top:28px;
border-bottom:1px solid #e5e5e5;padding-bottom:4px}.muted{color:#6e6e73}table{border-collapse:collapse;margin:8px 0;
font-size:13px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f5f5f7}
.t{text-align:left}.pass{background:#e3f6e8;color:#116329;font-weight:600}
.fail{background:#fde7e9;color:#a1131f;font-weight:600}.badge{display:inline-block;padding:2px 10px;border-radius:12px}
.stages{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}.stage{border-radius:6px;padding:6px 10px;font-size:12px;
text-align:center;min-width:64px}.ran{background:#dbeafe}.cached{background:#e8f5e9}.off{background:#f2f2f2;color:#999}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots img{border:1px solid #eee}"""


def headline_metric(summary: dict[str, Any]) -> str:
    task = (summary.get("data") or {}).get("task", "classification")
    return {"classification": "accuracy", "ranking": "ndcg@10"}.get(task, "accuracy")


def artifact_model(summary: dict[str, Any], variant: str) -> str | None:
    """Which model of summary['models'] a file was exported from."""
    models = summary.get("models") or {}
    order = ["student_int8"] if variant == "int8" else ["student_pruned", "student", "teacher"]
    return next((m for m in order if m in models), None)


def trade_off_points(summary: dict[str, Any], eager: dict[str, Any]) -> list[dict[str, Any]]:
    """One point per model (size = params x 4 B of fp32 weights; latency = torch eager) and per
    file (size = file bytes; latency = p50 at 1 thread, each runtime that timed it)."""
    metric = headline_metric(summary)
    models = summary.get("models") or {}
    points = []
    for name, m in models.items():
        y = (m.get("metrics") or {}).get(metric)
        if y is None or name == "student_int8":
            continue
        lat = (eager.get(name) or {}).get("p50")
        points.append({"label": f"{name} (torch)", "group": name, "y": y, "bytes": (m.get("params") or 0) * 4 or None,
                       "ms": lat})
    for a in summary.get("artifacts") or []:
        model = artifact_model(summary, a["variant"])
        y = (models.get(model) or {}).get("metrics", {}).get(metric) if model else None
        if y is None:
            continue
        label = f"{a['format']}/{a['variant']}"
        rows = [r for r in a.get("latency") or [] if r["threads"] == 1]
        points.append({"label": label, "group": a["format"], "y": y, "bytes": a["bytes"],
                       "ms": rows[0]["p50"] if rows else None})
        for r in rows[1:]:
            points.append({"label": f"{label} {r['runtime'].split('-')[-1]}", "group": a["format"], "y": y,
                           "bytes": None, "ms": r["p50"]})
    return points


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The frontier: points no other point beats on both smaller x and larger y, sorted by x."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front


def plot_png(points: list[dict[str, Any]], xkey: str, xlabel: str, ylabel: str, title: str) -> str | None:
    """A scatter with its Pareto frontier as a base64 PNG, or None when no point has an x."""
    pts = [p for p in points if p.get(xkey)]
    if not pts:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = 1e3 if xkey == "bytes" else 1.0
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    for p in pts:
        marker = ("s" if "(torch)" in p["label"] else "*" if p["label"].endswith("native")
                  else "^" if "/int8" in p["label"] else "o")
        ax.scatter(p[xkey] / scale, p["y"], s=70 if marker == "*" else 42, color=COLORS.get(p["group"], "#333"),
                   marker=marker, zorder=3, label=p["label"], edgecolors="white", linewidths=0.5)
    front = pareto([(p[xkey] / scale, p["y"]) for p in pts])
    if len(front) > 1:
        ax.step([f[0] for f in front], [f[1] for f in front], where="post", color="#2ca02c", alpha=0.45, lw=1.5,
                label="Pareto frontier", zorder=2)
    ys = [p["y"] for p in pts]
    pad = max(0.01, (max(ys) - min(ys)) * 0.1)
    ax.set_ylim(min(ys) - pad, max(ys) + pad)
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=7, ncol=3, frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _e(x: Any) -> str:
    return html.escape(str(x))


def _num(x: Any, spec: str = ".4g") -> str:
    if x is None:
        return "–"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1000):
        return f"{int(x):,}"
    return format(x, spec)


def _table(headers: list[str], rows: list[list[str]], row_classes: list[str] | None = None,
           text_cols: tuple[int, ...] = (0,)) -> str:
    """Numbers right-aligned, the `text_cols` left-aligned."""
    head = "".join(f"<th class='{'t' if j in text_cols else ''}'>{_e(h)}</th>" for j, h in enumerate(headers))
    body = "".join(f"<tr class='{(row_classes or [''] * len(rows))[i]}'>"
                   + "".join(f"<td class='{'t' if j in text_cols else ''}'>{c}</td>" for j, c in enumerate(r)) + "</tr>"
                   for i, r in enumerate(rows))
    return f"<table><tr>{head}</tr>{body}</table>"


def _stages(summary: dict[str, Any]) -> str:
    boxes = []
    for name, st in (summary.get("stages") or {}).items():
        status = st.get("status", "off")
        secs = st.get("seconds") if status == "ran" else st.get("ran_seconds")
        sub = f"{status}" + (f" · {secs:.1f}s" if isinstance(secs, (int, float)) and status != "off" else "")
        boxes.append(f"<div class='stage {status}'><b>{_e(name)}</b><br>{_e(sub)}</div>")
    return f"<div class='stages'>{'&rarr;'.join(boxes)}</div>"


def _models(summary: dict[str, Any], eager: dict[str, Any]) -> str:
    metric = headline_metric(summary)
    rows = []
    for name, m in (summary.get("models") or {}).items():
        metrics = m.get("metrics") or {}
        others = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != metric)
        lat = (eager.get(name) or {}).get("p50")
        rows.append([_e(name), _num(m.get("params")), _num(m.get("macs")), f"<b>{_num(metrics.get(metric), '.4f')}</b>",
                     _e(others), _num(lat)])
    return _table(["model", "params", "MACs", f"test {metric}", "other metrics", "torch eager p50 ms"], rows,
                  text_cols=(0, 4))


def _artifacts(summary: dict[str, Any]) -> str:
    rows = []
    for a in summary.get("artifacts") or []:
        par = a.get("parity") or {}
        status = par.get("status", "–")
        cls = {"passed": "pass", "failed": "fail"}.get(status, "")
        agree = par.get("top1_agreement", par.get("topk_overlap"))
        lat, nat = a.get("latency_ms") or {}, a.get("latency_native_ms") or {}
        weights = ", ".join(f"{k} {v:,}" for k, v in (a.get("weight_bytes") or {}).items())
        est = ", ".join(f"{e['profile']} {e['ms']:.3g}" for e in a.get("estimates") or [])
        rows.append([_e(a["format"]), _e(a["variant"]), _num(a["bytes"]), _num(a.get("zipped_bytes")), _e(weights or "–"),
                     _num(a.get("macs")), f"<span class='badge {cls}'>{_e(status)}</span>", _num(agree, ".3f"),
                     _num(par.get("max_abs_err"), ".2e"),
                     f"{_num(lat.get('p50'))} / {_num(lat.get('p90'))}" + (f" <span class='muted'>{_e(lat.get('runtime', ''))}</span>" if lat else ""),
                     f"{_num(nat.get('p50'))} / {_num(nat.get('p90'))}" if nat else "–", _e(est or "–")])
    return _table(["format", "variant", "bytes", "zipped", "weight bytes by dtype", "MACs", "parity", "agreement",
                   "max abs err", "p50 / p90 ms (Python, 1 thread)", "native p50 / p90 ms", "phone estimate ms"], rows,
                  text_cols=(0, 1, 4, 6, 11))


def _sensitivity(rows: list[dict[str, Any]] | None) -> str:
    if not rows:
        return ""
    keys = ["layer", "drop"] + sorted({k for r in rows for k in r} - {"layer", "drop"})
    cells = [[_e(r.get("layer", "")) if k == "layer" else _num(r.get(k)) if isinstance(r.get(k), (int, float))
              else _e(r.get(k, "–")) for k in keys] for r in sorted(rows, key=lambda r: -(r.get("drop") or 0))]
    return ("<h2>Quantization sensitivity</h2><p class='muted'>Metric drop when only that layer is int8 "
            "(largest first): the layers worth keeping in float.</p>" + _table(keys, cells))


def _gate(summary: dict[str, Any]) -> str:
    gate = summary.get("gate")
    if gate is None:
        return "<h2>Gate</h2><p class='muted'>gate stage off: no budgets checked.</p>"
    from mobilekd.gate import Check, fmt_bound, fmt_value

    checks = [Check.model_validate(c) for c in gate.get("checks", [])]
    verdict = "<span class='badge pass'>passed</span>" if gate["passed"] else "<span class='badge fail'>FAILED</span>"
    rows = [[_e(c.name), _e(fmt_bound(c)), _e(fmt_value(c)), "pass" if c.passed else "FAIL"] for c in checks]
    classes = ["pass" if c.passed else "fail" for c in checks]
    return f"<h2>Gate: {verdict}</h2>" + _table(["check", "bound", "value", "verdict"], rows, classes, text_cols=(0, 3))


def render(summary: dict[str, Any], eager: dict[str, Any] | None = None,
           sensitivity: list[dict[str, Any]] | None = None) -> str:
    eager = eager or {}
    metric = headline_metric(summary)
    points = trade_off_points(summary, eager)
    imgs = []
    for key, xlabel, title in (("bytes", "size (KB, log scale)", f"{metric} vs size"),
                               ("ms", "latency p50 on this machine (ms, 1 thread, log scale)", f"{metric} vs latency")):
        png = plot_png(points, key, xlabel, f"test {metric}", title)
        if png:
            w, h = int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI)
            imgs.append(f"<img alt='{_e(title)}' width='{w}' height='{h}' src='data:image/png;base64,{png}'>")
    data = summary.get("data") or {}
    gate = summary.get("gate")
    badge = "" if gate is None else (" <span class='badge pass'>gate passed</span>" if gate["passed"]
                                     else " <span class='badge fail'>gate FAILED</span>")
    if summary.get("status"):  # the run's verdict, the same word summary.json and the terminal show
        ok = summary["status"] == "passed"
        badge += f" <span class='badge {'pass' if ok else 'fail'}'>status: {_e(summary['status'])}</span>"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mobilekd: {_e(summary['pipeline'])}</title>
<style>{CSS}</style></head><body>
<h1>mobilekd run: {_e(summary['pipeline'])}{badge}</h1>
<p class="muted">mobilekd {_e(summary.get('mobilekd_version', ''))} · dataset {_e(data.get('dataset', '?'))}
({_e(data.get('task', '?'))}, test split of {_num((data.get('sizes') or {}).get('test'))})</p>
<h2>Pipeline</h2>{_stages(summary)}
<h2>Models</h2>{_models(summary, eager)}
<h2>Files</h2>{_artifacts(summary)}
<p class="muted">Latency is measured on the machine that ran the pipeline (batch 1); phone numbers are
roofline estimates, not measurements. A file's {_e(metric)} is its model's test metric; parity says how closely
the file reproduces that model.</p>
<h2>Trade-off</h2><p class="muted">Squares: PyTorch models (size = fp32 weights); circles: exported files.
The green line is the Pareto frontier (nothing else is both smaller/faster and better).</p>
<div class="plots">{''.join(imgs) or '<p>no sizes or latencies to plot</p>'}</div>
{_sensitivity(sensitivity)}
{_gate(summary)}
</body></html>
"""


def run_extras(run_dir: Path, ctx: Any = None) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """The eager latencies and sensitivity rows, from the live results or the stored stage.json."""
    def result(stage: str) -> Any:
        if ctx is not None:
            r = ctx.result(stage)
            return None if r is None else r.model_dump(mode="json")
        f = run_dir / stage / "stage.json"
        return read_json(f).get("result") if f.is_file() else None

    bench, quant = result("bench"), result("quantize")
    eager = (bench or {}).get("eager") or {}
    sens = None
    if quant and quant.get("sensitivity") and (run_dir / quant["sensitivity"]).is_file():
        sens = read_json(run_dir / quant["sensitivity"])
    return eager, sens


def write_report(path: Path, summary: dict[str, Any], ctx: Any = None) -> Path:
    run_dir = Path(path).parent if ctx is None else ctx.run_dir
    eager, sens = run_extras(run_dir, ctx)
    return write_text(path, render(summary, eager, sens))


def render_run(run_dir: Path) -> Path:
    """Re-render RUN_DIR/report.html from its summary.json and stage results."""
    run_dir = Path(run_dir)
    return write_report(run_dir / "report.html", read_json(run_dir / "summary.json"))
