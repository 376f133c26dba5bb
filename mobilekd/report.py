"""report.html: the run for a person, in one self-contained file (CSS inline, plots as inline SVG
with selectable text, no script, nothing fetched). Sections: run metadata, the pipeline's stages,
each model's metrics, training curves, each file at its own measured metric, latency (p50/p90/p99,
CV, cold start, peak memory per thread count), the trade-off plots, the shipped model's errors
(confusion matrix and per-class F1, or ranking quality by history length), pruning widths per
layer, quantization sensitivity at full precision, and the gate's verdicts.

Built from summary.json plus what it does not carry, taken from the RunContext when the pipeline
writes the report, or from the stages' stage.json when re-rendered (`render_run`)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from mobilekd.report_plots import COLORS, RUN_COLORS, bars, curves, heatmap, pareto, scatter
from mobilekd.summary import headline_metric
from mobilekd.store import read_json, write_text

__all__ = ["pareto", "render", "render_run", "write_report", "render_compare", "trade_off_points"]

CSS = """body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1100px;
color:#1d1d1f;padding:0 16px}h1{font-size:24px;margin-bottom:4px}h2{font-size:18px;margin-top:28px;
border-bottom:1px solid #e5e5e5;padding-bottom:4px}.muted{color:#6e6e73}table{border-collapse:collapse;margin:8px 0;
font-size:13px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f5f5f7}
.t{text-align:left}.pass{background:#e3f6e8;color:#116329;font-weight:600}
.fail{background:#fde7e9;color:#a1131f;font-weight:600}.badge{display:inline-block;padding:2px 10px;border-radius:12px}
.stages{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}.stage{border-radius:6px;padding:6px 10px;font-size:12px;
text-align:center;min-width:64px}.ran{background:#dbeafe}.cached{background:#e8f5e9}.off{background:#f2f2f2;color:#999}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots svg{border:1px solid #eee;max-width:100%;height:auto}\n.meta td{text-align:left}"""


def file_metric(a: dict[str, Any], metric: str) -> float | None:
    """A file's own metric, measured on its own runtime (artifacts[].metrics); None: not measured.
    Never another model's number: an int8 .onnx is not the PT2E int8 model."""
    v = (a.get("metrics") or {}).get(metric)
    return float(v) if isinstance(v, (int, float)) else None


def trade_off_points(summary: dict[str, Any], eager: dict[str, Any], run: str = "",
                     color: str | None = None) -> list[dict[str, Any]]:
    """One point per PyTorch model (size = params x 4 B; latency = torch eager) and per file that
    measured its own metric (size = file bytes; latency = p50 at 1 thread, each runtime)."""
    metric = headline_metric(summary)
    prefix = f"{run}: " if run else ""
    points = []
    for name, m in (summary.get("models") or {}).items():
        y = (m.get("metrics") or {}).get(metric)
        if y is None or name == "student_int8":
            continue
        lat = (eager.get(name) or {}).get("p50") or (m.get("latency_ms") or {}).get("p50")
        points.append({"label": f"{prefix}{name} (torch)", "group": name, "y": y,
                       "bytes": (m.get("params") or 0) * 4 or None, "ms": lat, "run": run, "color": color})
    for a in summary.get("artifacts") or []:
        y = file_metric(a, metric)
        if y is None:
            continue
        label = f"{prefix}{a['format']}/{a['variant']}"
        rows = [r for r in a.get("latency") or [] if r["threads"] == 1]
        points.append({"label": label, "group": a["format"], "y": y, "bytes": a["bytes"],
                       "ms": rows[0]["p50"] if rows else None, "run": run, "color": color})
        for r in rows[1:]:
            points.append({"label": f"{label} {r['runtime'].split('-')[-1]}", "group": a["format"], "y": y,
                           "bytes": None, "ms": r["p50"], "run": run, "color": color})
    return points


def _e(x: Any) -> str:
    return html.escape(str(x))


def _num(x: Any, spec: str = ".4g") -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1000):
        return f"{int(x):,}"
    return format(x, spec)


def _table(headers: list[str], rows: list[list[str]], row_classes: list[str] | None = None,
           text_cols: tuple[int, ...] = (0,), cls: str = "") -> str:
    """Numbers right-aligned, the `text_cols` left-aligned."""
    head = "".join(f"<th class='{'t' if j in text_cols else ''}'>{_e(h)}</th>" for j, h in enumerate(headers))
    body = "".join(f"<tr class='{(row_classes or [''] * len(rows))[i]}'>"
                   + "".join(f"<td class='{'t' if j in text_cols else ''}'>{c}</td>" for j, c in enumerate(r)) + "</tr>"
                   for i, r in enumerate(rows))
    return f"<table class='{cls}'><tr>{head}</tr>{body}</table>"


def _section(key: str, title: str, body: str, note: str = "") -> str:
    """Every section has an id (`sec-<key>`) so a browser test can find it."""
    note_html = f"<p class='muted'>{note}</p>" if note else ""
    return f"<section id='sec-{key}'><h2>{_e(title)}</h2>{note_html}{body}</section>"


def _plots(svgs: list[str | None], empty: str) -> str:
    shown = [s for s in svgs if s]
    return f"<div class='plots'>{''.join(shown)}</div>" if shown else f"<p class='muted'>{_e(empty)}</p>"


def _run_meta(summary: dict[str, Any]) -> str:
    run = summary.get("run") or {}
    if not run:
        return _section("run", "Run", "<p class='muted'>no run metadata (summary written by an older mobilekd)</p>")
    host, versions, git = run.get("host") or {}, run.get("versions") or {}, run.get("git")
    rows = [["started", _e(run.get("started"))], ["seconds", _num(run.get("seconds"))],
            ["command", f"<code>{_e(run.get('command'))}</code>"], ["seed", _num(run.get("seed"))],
            ["host", _e(f"{host.get('os')} · {host.get('cpu')} · {host.get('cores')} cores · "
                        f"{host.get('threads')} torch threads")],
            ["versions", _e(", ".join(f"{k} {v}" for k, v in versions.items()))],
            ["pipeline file", _e(run.get("pipeline_file") or "–")],
            ["git", _e("not in a repository" if not git else f"{git['commit'][:12]}" + (" (dirty)" if git["dirty"] else ""))]]
    return _section("run", "Run", _table(["", "value"], rows, text_cols=(0, 1), cls="meta"))


def _stages(summary: dict[str, Any]) -> str:
    boxes = []
    for name, st in (summary.get("stages") or {}).items():
        status = st.get("status", "off")
        secs = st.get("seconds") if status == "ran" else st.get("ran_seconds")
        sub = f"{status}" + (f" · {secs:.1f}s" if isinstance(secs, (int, float)) and status != "off" else "")
        boxes.append(f"<div class='stage {status}'><b>{_e(name)}</b><br>{_e(sub)}</div>")
    return _section("pipeline", "Pipeline", f"<div class='stages'>{'&rarr;'.join(boxes)}</div>")


def _models(summary: dict[str, Any], eager: dict[str, Any]) -> str:
    metric = headline_metric(summary)
    rows = []
    for name, m in (summary.get("models") or {}).items():
        metrics = m.get("metrics") or {}
        others = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != metric)
        lat = (eager.get(name) or {}).get("p50")
        rows.append([_e(name), _num(m.get("params")), _num(m.get("macs")), f"<b>{_num(metrics.get(metric), '.4f')}</b>",
                     _e(others), _num(lat)])
    return _section("models", "Models", _table(["model", "params", "MACs", f"test {metric}", "other metrics",
                                                "torch eager p50 ms"], rows, text_cols=(0, 4)))


def _curves(histories: dict[str, list[dict[str, Any]]], metric: str) -> str:
    svgs = [curves(h, metric, f"{stage}: loss and validation {metric}") for stage, h in histories.items()]
    return _section("curves", "Training curves", _plots(svgs, "no stage trained in this run (all cached from "
                                                              "an older mobilekd, or training stages off)"),
                    "Per epoch, from each training stage's stage.json: loss terms (left axis) and the "
                    "validation metric (dashed, right axis).")


def _artifacts(summary: dict[str, Any]) -> str:
    metric = headline_metric(summary)
    rows = []
    for a in summary.get("artifacts") or []:
        par = a.get("parity") or {}
        status = par.get("status", "–")
        cls = {"passed": "pass", "failed": "fail"}.get(status, "")
        agree = par.get("top1_agreement", par.get("topk_overlap"))
        own = file_metric(a, metric)
        weights = ", ".join(f"{k} {v:,}" for k, v in (a.get("weight_bytes") or {}).items())
        est = ", ".join(f"{e['profile']} {e['ms']:.3g}" for e in a.get("estimates") or [])
        rows.append([_e(a["format"]), _e(a["variant"]), _e(a.get("path", "")), _num(a["bytes"]),
                     _num(a.get("zipped_bytes")), _e(weights or "–"), _num(a.get("macs")),
                     f"<b>{_num(own, '.4f')}</b>" if own is not None else "<span class='muted'>not measured</span>",
                     f"<span class='badge {cls}'>{_e(status)}</span>", _num(agree, ".3f"),
                     _num(par.get("max_abs_err"), ".2e"), _e(est or "–")])
    return _section("files", "Files", _table(
        ["format", "variant", "path", "bytes", "zipped", "weight bytes by dtype", "MACs", f"own test {metric}",
         "parity", "agreement", "max abs err", "phone estimate ms"], rows, text_cols=(0, 1, 2, 5, 8, 11)),
        f"Own {_e(metric)}: the file run on its own runtime over the test split. 'not measured': that runtime "
        "cannot run here (CoreML on Linux) or the export stage did not measure it; such files are left off the plots.")


def _latency(summary: dict[str, Any]) -> str:
    rows, labels, series = [], [], {"p50": [], "p90": [], "p99": []}
    for a in summary.get("artifacts") or []:
        for r in a.get("latency") or []:
            rows.append([_e(f"{a['format']}/{a['variant']}"), _e(r["runtime"]), _num(r["threads"]), _num(r["p50"]),
                         _num(r["p90"]), _num(r["p99"]), f"{r['cv']:.1%}" if r.get("cv") is not None else "–",
                         _num(r.get("cold_start_ms")), _num(r.get("peak_memory_mb"))])
            labels.append(f"{a['format']}/{a['variant']} {r['runtime'].split('-')[-1]} t{r['threads']}")
            for k in series:
                series[k].append(r[k])
    if not rows:
        return _section("latency", "Latency", "<p class='muted'>bench stage off: nothing timed.</p>")
    svg = bars(labels, series, "ms (log scale)", "latency distribution per file, runtime and threads", log=True)
    return _section("latency", "Latency", _table(["file", "runtime", "threads", "p50 ms", "p90 ms", "p99 ms", "CV",
                                                  "cold start ms", "peak memory MB"], rows, text_cols=(0, 1))
                    + _plots([svg], ""), "Batch 1 on the machine that ran the pipeline. CV: standard deviation / "
                    "mean of the timed runs. Cold start: load plus first inference.")


def _trade_off(summary: dict[str, Any], eager: dict[str, Any]) -> str:
    metric = headline_metric(summary)
    points = trade_off_points(summary, eager)
    svgs = [scatter(points, "bytes", "size (KB, log scale)", f"test {metric}", f"{metric} vs size"),
            scatter(points, "ms", "latency p50 here (ms, 1 thread, log scale)", f"test {metric}", f"{metric} vs latency")]
    missing = [f"{a['format']}/{a['variant']}" for a in summary.get("artifacts") or [] if file_metric(a, metric) is None]
    note = ("Squares: PyTorch models (size = fp32 weights); circles and triangles: exported files at their own "
            "measured metric. The line is the Pareto frontier.")
    if missing:
        note += f" Not measured, so not plotted: {', '.join(missing)}."
    return _section("tradeoff", "Trade-off", _plots(svgs, "no sizes or latencies to plot"), _e(note))


def _errors(extra: dict[str, Any] | None, summary: dict[str, Any]) -> str:
    if not extra:
        return _section("errors", "Where the model errs", "<p class='muted'>available when the report is written "
                        "by the run (the models are needed)</p>")
    if "confusion" in extra:
        rows = [[_e(c["class"]), _num(c["support"]), _num(c["precision"], ".4f"), _num(c["recall"], ".4f"),
                 _num(c["f1"], ".4f")] for c in extra["per_class"]]
        worst = sorted(extra["per_class"], key=lambda c: c["f1"])[0]
        svg = heatmap(extra["confusion"], extra["labels"], f"confusion matrix: {extra['model']}, test split")
        body = (_plots([svg], "") + _table(["class", "support", "precision", "recall", "F1"], rows)
                + f"<p class='muted'>Lowest F1: {_e(worst['class'])} ({worst['f1']:.4f}).</p>")
        return _section("errors", "Confusion matrix and per-class F1", body, f"{_e(extra['model'])} on the test split.")
    rows = [[_e(r["history"]), _num(r["samples"]), _num(r["ndcg@10"], ".4f"), _num(r["recall@10"], ".4f")]
            for r in extra.get("by_history", [])]
    svg = bars([r["history"] for r in extra.get("by_history", [])],
               {"ndcg@10": [r["ndcg@10"] for r in extra["by_history"]],
                "recall@10": [r["recall@10"] for r in extra["by_history"]]}, "metric", "ranking by history length")
    return _section("errors", "Ranking by history length", _plots([svg], "") + _table(
        ["history length", "samples", "NDCG@10", "Recall@10"], rows), f"{_e(extra['model'])} on the test split.")


def _pruning(prune: dict[str, Any] | None) -> str:
    if not prune:
        return _section("pruning", "Pruning", "<p class='muted'>prune stage off.</p>")
    layers = prune.get("pruned_layers") or {}
    rows = [[_e(k), _num(v[0]), _num(v[1]), f"{v[1] / v[0]:.0%}" if v[0] else "–"] for k, v in layers.items()]
    svg = bars(list(layers), {"before": [v[0] for v in layers.values()], "after": [v[1] for v in layers.values()]},
               "width (channels / features)", f"{prune.get('method')} pruning: width per layer")
    note = (f"{_e(prune.get('method'))}, ratio {prune.get('ratio')}: params {_num(prune.get('params_before'))} → "
            f"{_num(prune.get('params_after'))}, MACs {_num(prune.get('macs_before'))} → {_num(prune.get('macs_after'))}.")
    return _section("pruning", "Pruning widths", _plots([svg], "") + _table(["layer", "before", "after", "kept"], rows),
                    note)


def _full(x: Any) -> str:
    """Full precision: a sensitivity of 0.8625 is printed 0.8625, never 0.86 (12 significant digits:
    float noise such as 0.005000000000000004 is not a digit anyone measured)."""
    return _e(format(x, ".12g")) if isinstance(x, float) else _num(x)


def _sensitivity(rows: list[dict[str, Any]] | None) -> str:
    if not rows:
        return ""
    keys = ["layer", "drop"] + sorted({k for r in rows for k in r} - {"layer", "drop"})
    cells = [[_e(r.get("layer", "")) if k == "layer" else _full(r.get(k)) if isinstance(r.get(k), (int, float))
              else _e(r.get(k, "–")) for k in keys] for r in sorted(rows, key=lambda r: -(r.get("drop") or 0))]
    return _section("sensitivity", "Quantization sensitivity", _table(keys, cells),
                    "Metric drop when only that layer is int8 (largest first): the layers worth keeping in float.")


def _gate(summary: dict[str, Any]) -> str:
    gate = summary.get("gate")
    if gate is None:
        return _section("gate", "Gate", "<p class='muted'>gate stage off: no budgets checked.</p>")
    from mobilekd.tables import check_cells

    verdict = "<span class='badge pass'>passed</span>" if gate["passed"] else "<span class='badge fail'>FAILED</span>"
    cells = [check_cells(c) for c in gate.get("checks", [])]
    rows = [[_e(n), _e(b), _e(v), "pass" if ok else "FAIL"] for n, b, v, ok in cells]
    classes = ["pass" if ok else "fail" for *_, ok in cells]
    return (f"<section id='sec-gate'><h2>Gate: {verdict}</h2>"
            + _table(["check", "bound", "value", "verdict"], rows, classes, text_cols=(0, 3)) + "</section>")


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>\n")


def render(summary: dict[str, Any], eager: dict[str, Any] | None = None,
           sensitivity: list[dict[str, Any]] | None = None, histories: dict[str, list[dict[str, Any]]] | None = None,
           prune: dict[str, Any] | None = None, breakdown: dict[str, Any] | None = None) -> str:
    eager = eager or {}
    metric = headline_metric(summary)
    data = summary.get("data") or {}
    gate = summary.get("gate")
    badge = "" if gate is None else (" <span class='badge pass'>gate passed</span>" if gate["passed"]
                                     else " <span class='badge fail'>gate FAILED</span>")
    if summary.get("status"):  # the run's verdict, the same word summary.json and the terminal show
        ok = summary["status"] == "passed"
        badge += f" <span class='badge {'pass' if ok else 'fail'}'>status: {_e(summary['status'])}</span>"
    body = (f"<h1>mobilekd run: {_e(summary['pipeline'])}{badge}</h1>"
            f"<p class='muted'>mobilekd {_e(summary.get('mobilekd_version', ''))} · dataset {_e(data.get('dataset', '?'))} "
            f"({_e(data.get('task', '?'))}, test split of {_num((data.get('sizes') or {}).get('test'))})</p>"
            + _run_meta(summary) + _stages(summary) + _models(summary, eager) + _curves(histories or {}, metric)
            + _artifacts(summary) + _latency(summary) + _trade_off(summary, eager) + _errors(breakdown, summary)
            + _pruning(prune) + _sensitivity(sensitivity) + _gate(summary))
    return _page(f"mobilekd: {summary['pipeline']}", body)


TRAINING_STAGES = ("teacher", "distill", "prune", "quantize")


def run_extras(run_dir: Path, ctx: Any = None) -> dict[str, Any]:
    """What render() needs beyond summary.json, from the live results or the stored stage.json."""
    def result(stage: str) -> Any:
        if ctx is not None:
            r = ctx.result(stage)
            return None if r is None else r.model_dump(mode="json")
        f = run_dir / stage / "stage.json"
        return read_json(f).get("result") if f.is_file() else None

    results = {s: result(s) for s in ("bench", "quantize", "prune", *TRAINING_STAGES)}
    sens = None
    quant = results["quantize"]
    if quant and quant.get("sensitivity") and (run_dir / quant["sensitivity"]).is_file():
        sens = read_json(run_dir / quant["sensitivity"])
    histories = {s: results[s]["history"] for s in TRAINING_STAGES if results[s] and results[s].get("history")}
    return {"eager": (results["bench"] or {}).get("eager") or {}, "sensitivity": sens, "histories": histories,
            "prune": results["prune"]}


def write_report(path: Path, summary: dict[str, Any], ctx: Any = None) -> Path:
    from mobilekd.report_eval import breakdown

    run_dir = Path(path).parent if ctx is None else ctx.run_dir
    extras = run_extras(run_dir, ctx)
    return write_text(path, render(summary, breakdown=breakdown(ctx), **extras))


def render_run(run_dir: Path) -> Path:
    """Re-render RUN_DIR/report.html from its summary.json and stage results."""
    run_dir = Path(run_dir)
    return write_report(run_dir / "report.html", read_json(run_dir / "summary.json"))


def render_compare(run_dirs: list[Path], rows: list[Any]) -> str:
    """`mobilekd compare --html`: the runs side by side on the Pareto plots, then the delta table."""
    from mobilekd.compare import run_labels
    from mobilekd.summary import read_summary

    labels = run_labels(run_dirs)
    summaries = [read_summary(d, require=()) for d in run_dirs]
    metric = headline_metric(summaries[0])
    points = []
    for i, (label, s, d) in enumerate(zip(labels, summaries, run_dirs)):
        points += trade_off_points(s, run_extras(Path(d))["eager"], run=label, color=RUN_COLORS[i % len(RUN_COLORS)])
    svgs = [scatter(points, "bytes", "size (KB, log scale)", f"test {metric}", f"{metric} vs size"),
            scatter(points, "ms", "latency p50 (ms, 1 thread, log scale)", f"test {metric}", f"{metric} vs latency")]
    table = _table(["", *labels, "Δ (last - first)"],
                   [[_e(f"{r.section}: {r.name}"), *[_e(r.cell(i)) for i in range(len(labels))], _e(r.delta())]
                    for r in rows], text_cols=(0,))
    body = (f"<h1>mobilekd compare: {_e(' vs '.join(labels))}</h1>"
            + _section("tradeoff", "Trade-off, runs side by side", _plots(svgs, "nothing to plot"),
                       "One colour per run; files without their own measured metric are left off.")
            + _section("deltas", "Deltas", table))
    return _page("mobilekd compare", body)
