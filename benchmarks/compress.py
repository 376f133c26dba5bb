"""What does compression cost in accuracy, and what does it buy in bytes, MACs and latency?

The fashion recipe (pipelines/fashion.yaml: its teacher, its 40.5k-parameter KD student) run through
`run_pipeline`, once per compression route, each route an override of the recipe's prune/quantize/
export sections:

  int8        prune off; PT2E static per-channel (.pte), ORT static minmax QDQ (.onnx), Core ML int8
              weights; also gives the fp32 rows (the distilled student's .onnx/.pte/.mlpackage)
  dynamic     PT2E dynamic (Linear only), ORT quantize_dynamic, Core ML palettize4 (4-bit k-means)
  entropy     ORT static, entropy calibration; Core ML palettize6
  percentile  ORT static, percentile calibration
  fallback    the recipe's quantize section: per-layer sensitivity on validation, the most sensitive
              layers kept float until the validation drop is within quantize.max_metric_drop (.pte)
  prune30/50  structured pruning (Torch-Pruning, L2, 30% / 50% of channels) + the recipe's KD
              fine-tune, then plain int8 of the pruned student

All runs share one run directory, so the data, teacher and distill stages run once (the pipeline's
stage cache: their keys do not depend on the later stages) and each route re-runs only prune (when
it changes) and quantize onwards. After each run its summary.json is kept under --work/summaries.
Each row reads from summary.json: the test accuracy of the file itself on its runtime (verify
stage; Core ML: not executed on Linux), bytes, MACs (bench stage), params, and the bench stage's
p50 latency (batch 1, 1 thread; ONNX Runtime, ExecuTorch Python and native runner). Speed-ups are
taken against the fp32 file of the same run, measured minutes apart at most; prune latency cuts
compare the pruned run's fp32 files with the int8 run's (not side by side: see the setup line).
No variant is picked as "best": the benchmark reports every route.

Writes benchmarks/results/compress.json and the `compress` section of docs/benchmarks.md.
Run: nohup nice -n 10 python benchmarks/compress.py > benchmarks/work/compress.log 2>&1 &
     [--data-dir DIR] [--work DIR] [--routes int8 prune50 ...] [--smoke (a small slice, 1 epoch, .onnx only; writes only under --work)]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "pipelines" / "fashion.yaml"
RESULT = REPO / "benchmarks" / "results" / "compress.json"
DOC = REPO / "docs" / "benchmarks.md"
WORK = REPO / "benchmarks" / "work" / "compress"
SECTION = "compress"
RUNTIMES = ("onnx", "executorch", "executorch_native")

PLAIN = ["quantize.sensitivity=false", "quantize.max_metric_drop=null"]  # int8 without the fallback
ALWAYS = ["gate=null", "bundle=null"]  # the benchmark states its own targets; no bundle to time
# run name -> (overrides of the recipe, {row name: the artifacts ("format/variant") it reads})
FP32 = ("onnx/fp32", "executorch/fp32", "coreml/fp32")
RUNS: dict[str, tuple[list[str], dict[str, tuple[str, ...]]]] = {
    "int8": (["prune=null", *PLAIN],
             {"fp32": FP32, "int8_et_static": ("executorch/int8",), "int8_onnx_minmax": ("onnx/int8",),
              "int8_coreml_weights": ("coreml/int8",)}),
    "dynamic": (["prune=null", *PLAIN, "quantize.executorch.scheme=dynamic", "quantize.onnx.scheme=dynamic",
                 "quantize.coreml.scheme=palettize4"],
                {"int8_et_dynamic": ("executorch/int8",), "int8_onnx_dynamic": ("onnx/int8",),
                 "int8_coreml_palettize4": ("coreml/int8",)}),
    "entropy": (["prune=null", *PLAIN, "quantize.executorch=null", "quantize.onnx.calibration=entropy",
                 "quantize.coreml.scheme=palettize6",
                 "export.formats=[onnx, coreml]"],
                {"int8_onnx_entropy": ("onnx/int8",), "int8_coreml_palettize6": ("coreml/int8",)}),
    "percentile": (["prune=null", *PLAIN, "quantize.executorch=null", "quantize.onnx.calibration=percentile",
                    "export.formats=[onnx]"],
                   {"int8_onnx_percentile": ("onnx/int8",)}),
    # .pte only: the ONNX route cannot take the fallback's keep_float list today (ORT's pre-processing
    # drops the module-scope metadata it is matched by, and a Conv fused with its BatchNorm carries
    # the BatchNorm's scope), so quantize_onnx refuses it; see the setup line.
    "fallback": (["prune=null", "export.formats=[executorch]"], {"int8_fallback": ("executorch/int8",)}),
    "prune30": (["prune.ratio=0.3", *PLAIN, "export.formats=[onnx, executorch]"],
                {"prune30": FP32[:2], "int8_prune30": ("executorch/int8", "onnx/int8")}),
    "prune50": (["prune.ratio=0.5", *PLAIN, "export.formats=[onnx, executorch]"],
                {"prune50": FP32[:2], "int8_prune50": ("executorch/int8", "onnx/int8")}),
}
# The recipe on a small slice with narrow models (same depth, so its hint layer exists), .onnx only
# and the shortest timings: a quick check.
SMOKE = ["data.options.limit_train=300", "data.options.limit_test=100", "teacher.epochs=1",
         "teacher.args={channels: [8, 16, 32], hidden: 32, pool: 2}", "distill.epochs=1",
         "distill.args={channels: [4, 8, 16], hidden: 16, pool: 2}", "quantize.calibration_samples=32",
         "quantize.executorch=null",
         "export.formats=[onnx]", "verify.samples=20", "bench.warmup=1", "bench.min_runs=3",
         "bench.min_seconds=0.01", "bench.max_seconds=0.2", "bench.native=false"]
SMOKE_RUNS = ("int8", "prune30")


def run_route(name: str, overrides: list[str], run_dir: Path, work: Path, data_dir: Path | None) -> dict[str, Any]:
    """One route through the pipeline; its summary.json is copied aside (the next route overwrites
    the shared run directory's later stages)."""
    from mobilekd.pipeline import run_pipeline
    from mobilekd.pipeline_file import load_pipeline
    from mobilekd.store import read_json, write_json

    t0 = time.perf_counter()
    out = run_pipeline(load_pipeline(RECIPE, [*overrides, *ALWAYS]), run_dir=run_dir, data_dir=data_dir)
    summary = read_json(run_dir / "summary.json")
    summary["distill_stage"] = read_json(run_dir / "distill" / "stage.json")["result"]
    if summary["models"].get("student_pruned"):
        summary["prune_stage"] = read_json(run_dir / "prune" / "stage.json")["result"]
    write_json(work / "summaries" / f"{name}.json", summary)
    ran = [s for s, st in out.statuses.items() if st["status"] == "ran"]
    print(f"route {name}: {time.perf_counter() - t0:.0f} s (ran: {', '.join(ran)})", flush=True)
    return summary


def row(summary: dict[str, Any], keys: tuple[str, ...], route: str) -> dict[str, Any]:
    """One table row from the artifacts `keys` of one run's summary."""
    arts = {f"{a['format']}/{a['variant']}": a for a in summary["artifacts"]}
    models = summary["models"]
    base = models.get("student_pruned") or models["student"]
    r: dict[str, Any] = {"route": route, "params": base["params"], "accuracy": {}, "bytes": {}, "p50_ms": {},
                         "scheme": {}, "macs": None}
    for key in (k for k in keys if k in arts):  # a smoke run exports fewer formats
        a = arts[key]
        fmt = a["format"]
        r["bytes"][fmt] = a["bytes"]
        r["scheme"][fmt] = a.get("scheme")
        r["macs"] = a.get("macs", r["macs"])
        r["accuracy"][fmt] = (a.get("metrics") or {}).get("accuracy")  # None: Core ML, not executed on Linux
        if a.get("latency_ms"):
            r["p50_ms"][fmt] = a["latency_ms"]["p50"]
        if a.get("latency_native_ms"):
            r["p50_ms"]["executorch_native"] = a["latency_native_ms"]["p50"]
    q = models.get("student_int8") or {}
    if any(k.endswith("int8") for k in keys) and q.get("keep_float") is not None:
        r["keep_float"] = q["keep_float"]
    return r


def fp32_of(summary: dict[str, Any]) -> dict[str, Any]:
    """The fp32 files of a run: the reference its int8 rows are timed against."""
    return row(summary, FP32, "")


def collect(summaries: dict[str, dict[str, Any]], runs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for route, (_, wanted) in runs.items():
        s = summaries[route]
        ref = fp32_of(s)
        present = {f"{a['format']}/{a['variant']}" for a in s["artifacts"]}
        for name, keys in wanted.items():
            if not present & set(keys):  # a smoke run exports fewer formats
                continue
            r = row(s, keys, route)
            r["speedup_vs_same_run_fp32"] = {rt: ref["p50_ms"][rt] / v for rt, v in r["p50_ms"].items()
                                             if ref["p50_ms"].get(rt) and not name.startswith("prune") and name != "fp32"}
            rows[name] = r
        if route.startswith("prune"):
            p = s["prune_stage"]
            rows[route].update(accuracy_pytorch_before_finetune=p["metrics_pruned"].get("accuracy"),
                               accuracy_pytorch=p["metrics"].get("accuracy"))
    return rows


def targets(v: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets of the compression issue, one row each: name, value, limit, met."""
    out: list[dict[str, Any]] = []
    fp = v["fp32"]

    def add(name: str, value: float | None, limit: float, op: str, detail: str) -> None:
        met = None if value is None else (value <= limit if op == "<=" else value >= limit)
        out.append({"target": name, "value": value, "limit": limit, "op": op, "met": met, "detail": detail})

    for name, fmt in (("int8_et_static", "executorch"), ("int8_onnx_minmax", "onnx"), ("int8_onnx_entropy", "onnx"),
                      ("int8_onnx_percentile", "onnx")):
        if name not in v:
            continue
        a, b = fp["accuracy"][fmt], v[name]["accuracy"][fmt]
        add(f"{name}: accuracy drop vs fp32 .{fmt} (points)", 100 * (a - b), 0.5, "<=", f"{100 * a:.2f}% -> {100 * b:.2f}%")
        ratio = fp["bytes"][fmt] / v[name]["bytes"][fmt]
        n = fp["params"]
        add(f"{name}: size reduction vs fp32 .{fmt} (x)", ratio, 3.5, ">=",
            f"{fp['bytes'][fmt]:,} -> {v[name]['bytes'][fmt]:,} bytes; weights alone would be {4 * n:,} -> {n:,} "
            f"(4.0x); non-weight bytes {fp['bytes'][fmt] - 4 * n:,} (fp32) and {v[name]['bytes'][fmt] - n:,} (int8)")
    for rt, x in v.get("int8_et_static", {}).get("speedup_vs_same_run_fp32", {}).items():
        if rt.startswith("executorch"):
            add(f"int8_et_static: speed-up vs fp32 .pte, {rt} (x)", x, 2.0, ">=",
                f"p50 {fp['p50_ms'][rt]:.4f} -> {v['int8_et_static']['p50_ms'][rt]:.4f} ms")
    if "prune50" in v:
        p = v["prune50"]
        if p["macs"] and fp["macs"]:
            add("prune50: MACs vs fp32 (%)", 100 * p["macs"] / fp["macs"], 55.0, "<=", f"{fp['macs']:,} -> {p['macs']:,}")
        for rt in RUNTIMES:
            a, b = fp["p50_ms"].get(rt), p["p50_ms"].get(rt)
            if a and b:
                add(f"prune50: latency cut, {rt} (%)", 100 * (1 - b / a), 25.0, ">=",
                    f"p50 {a:.4f} -> {b:.4f} ms (separate runs)")
        a, b = fp["accuracy"]["onnx"], p["accuracy"]["onnx"]
        add("prune50: accuracy loss after the fine-tune, .onnx (points)", 100 * (a - b), 1.0, "<=",
            f"{100 * a:.2f}% -> {100 * b:.2f}% (before the fine-tune {100 * p['accuracy_pytorch_before_finetune']:.2f}%, PyTorch)")
    return out


def _n(x: Any, spec: str = ",") -> str:
    return "-" if x is None else format(x, spec)


def table(v: dict[str, dict[str, Any]]) -> str:
    lines = ["| variant | route | accuracy % .onnx / .pte (file on its runtime) | params | MACs | .onnx B | .pte B | "
             ".mlpackage B | ORT p50 ms | ET p50 ms | ET native p50 ms |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in v.items():
        accs = [f"{100 * r['accuracy'][f]:.2f}" if r["accuracy"].get(f) is not None else "-"
                for f in ("onnx", "executorch")]
        if set(r["accuracy"]) == {"coreml"}:
            accs = ["not executed (Core ML)"]
        lines.append("| " + " | ".join([
            name, r["route"], " / ".join(accs), _n(r["params"]), _n(r["macs"]),
            *(_n(r["bytes"].get(k)) for k in ("onnx", "executorch", "coreml")),
            *(_n(r["p50_ms"].get(k), ".4f") for k in RUNTIMES)]) + " |")
    return "\n".join(lines)


def report(result: dict[str, Any]) -> str:
    t = "\n".join(f"- {x['target']}: {x['value']:.2f} (target {x['op']} {x['limit']}) — "
                  f"**{'n/a' if x['met'] is None else 'met' if x['met'] else 'MISSED'}**; {x['detail']}"
                  for x in result["targets"])
    kf = result["variants"].get("int8_fallback", {}).get("keep_float")
    fallback = "" if kf is None else f"\n\nSensitivity fallback kept float: {kf or 'no layer'}.\n"
    return (f"## Compression (Fashion-MNIST)\n\nProduced by `python benchmarks/compress.py`: the fashion recipe "
            f"through `run_pipeline`, one run per route.\n\n### {result['model']}\n\n{table(result['variants'])}"
            f"{fallback}\n\nTargets:\n\n{t}\n\n{result['setup']}\n\n")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=os.environ.get("MOBILEKD_DATA_DIR"))
    ap.add_argument("--work", type=Path, default=WORK, help="the shared run directory and the kept summaries")
    ap.add_argument("--routes", nargs="+", choices=list(RUNS), default=None,
                    help="routes to run (int8, the fp32 reference, always runs; default: all, or int8 and "
                         "prune30 with --smoke)")
    ap.add_argument("--smoke", action="store_true", help="a small slice, 1 epoch, .onnx only, short timings; "
                    "writes only under --work")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    extra = SMOKE if args.smoke else []
    chosen = {"int8", *(args.routes or (SMOKE_RUNS if args.smoke else RUNS))}
    runs = {k: v for k, v in RUNS.items() if k in chosen}
    t_start = time.perf_counter()
    summaries = {name: run_route(name, [*ov, *extra], args.work / "run", args.work, args.data_dir)
                 for name, (ov, _) in runs.items()}
    variants = collect(summaries, runs)
    first = summaries["int8"]
    m = first["models"]
    d = first["distill_stage"]
    result: dict[str, Any] = {
        "recipe": "pipelines/fashion.yaml", "overrides": {k: [*ov, *extra, *ALWAYS] for k, (ov, _) in runs.items()},
        "model": (f"the recipe's student: {m['student']['params']:,} parameters, KD from its "
                  f"{m['teacher']['params']:,}-parameter teacher"),
        "teacher": m["teacher"], "student": {**m["student"], "val_metrics": d["val_metrics"]},
        "variants": variants, "seconds": {k: s["run"]["seconds"] for k, s in summaries.items() if s.get("run")},
    }
    result["targets"] = targets(variants)
    sizes = first["data"]["sizes"]
    result["setup"] = (
        f"Setup: {first['data']['dataset']}, {sizes['train']:,} training / {sizes['val']:,} validation / "
        f"{sizes['test']:,} test images (the recipe's slice), seed 0; the recipe's teacher "
        f"({100 * m['teacher']['metrics']['accuracy']:.2f}% test) and KD student "
        f"({100 * m['student']['metrics']['accuracy']:.2f}% test in PyTorch, "
        f"{100 * d['val_metrics']['accuracy']:.2f}% validation), trained once and reused by every route (stage cache). "
        "Accuracy: each file run on its own runtime over the test split (verify stage). Latency: the bench stage of "
        "each run (batch 1, 1 thread, the recipe's bench settings), on a shared 2-core x86 CPU; int8 speed-ups are "
        "against the fp32 file of the same run. "
        f"torch {torch.__version__}. Total {time.perf_counter() - t_start:.0f} s.")
    text = report(result)
    if not args.smoke and args.routes is None:  # only a full run replaces the committed numbers
        from doc_section import write_section  # benchmarks/ is on sys.path when run as a script

        from mobilekd.store import write_json

        write_json(RESULT, result)
        write_section(DOC, SECTION, text)
    print(text, flush=True)
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
