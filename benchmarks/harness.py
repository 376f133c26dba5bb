"""How far to trust mobilekd's latency numbers on this machine (not a test).

1. Noise: the p50 of one file measured 5 times (5 fresh subprocesses), and the coefficient of
   variation of those 5 medians (target: at most 5 %), for each runtime.
2. The ExecuTorch Python runtime against the native C++ runner, on the quickstart's fp32 and int8 .pte.
3. ONNX Runtime vs ExecuTorch (Python and native) vs torch eager, per model, as ratios to ONNX Runtime.

Uses the quickstart run in benchmarks/work/quickstart (runs `mobilekd pipeline run` there first if
absent). Writes benchmarks/results/harness.json and its section of docs/benchmarks.md, and prints
the table.

    python benchmarks/harness.py [--repeats 5] [--min-seconds 1.0]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "benchmarks" / "work" / "quickstart"
RESULT = REPO / "benchmarks" / "results" / "harness.json"
DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- begin harness -->", "<!-- end harness -->"
CV_TARGET = 0.05


def ensure_run() -> None:
    if not (RUN / "summary.json").is_file():
        print(f"no quickstart run in {RUN}; running the pipeline (a few minutes)", flush=True)
        subprocess.run([sys.executable, "-m", "mobilekd", "pipeline", "run", "--out", str(RUN), "--quiet"], check=False)
    if not (RUN / "summary.json").is_file():
        sys.exit(f"the quickstart run in {RUN} did not finish; see its output above")


def load_context() -> Any:
    """A RunContext over the finished run, to load its teacher and student modules."""
    from mobilekd.context import RunContext
    from mobilekd.pipeline import STAGES
    from mobilekd.pipeline_file import load_pipeline
    from mobilekd.progress import Reporter
    from mobilekd.store import read_json

    ctx = RunContext(config=load_pipeline(RUN / "pipeline.yaml"), run_dir=RUN, data_dir=None, reporter=Reporter(quiet=True))
    for name, stage in STAGES.items():
        record = read_json(RUN / name / "stage.json")
        if record.get("status") == "ok":
            ctx.results[name] = stage.result.model_validate(record["result"])
    return ctx


def p50s(measure: Callable[[], Any], repeats: int) -> list[float]:
    return [measure().p50 for _ in range(repeats)]


def cv(values: list[float]) -> float:
    """Population std / mean, as the bench library defines cv."""
    a = np.asarray(values)
    return float(a.std() / a.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--render-only", action="store_true", help="re-render the table from results/harness.json")
    args = ap.parse_args()
    if args.render_only:
        from mobilekd.store import read_json

        publish(read_json(RESULT))
        return
    ensure_run()
    from mobilekd.bench import LatencyOptions, measure_latency, measure_native

    opts = LatencyOptions(warmup=50, min_runs=200, min_seconds=args.min_seconds, max_seconds=5 * args.min_seconds + 5)
    ctx = load_context()
    feed = {s.name: ctx.dataset().test.inputs[s.name][:1] for s in ctx.dataset().info.inputs}
    files = {f"{a.format}/{a.variant}": RUN / a.path for a in ctx.results["export"].artifacts}

    def py(key: str) -> Callable[[], Any]:
        fmt = key.split("/")[0]
        return lambda: measure_latency(fmt, files[key], feed, threads=1, options=opts)

    def native(key: str) -> Callable[[], Any]:
        return lambda: measure_native(files[key], feed, threads=1, options=opts)

    def eager(model: Any) -> Callable[[], Any]:
        return lambda: measure_latency("torch", model, feed, threads=1, options=opts)

    # 1. noise: the same file, `repeats` fresh processes each
    noise = []
    for runtime, key, fn in (("onnxruntime", "onnx/int8", py), ("executorch-python", "executorch/int8", py),
                             ("executorch-native", "executorch/int8", native)):
        values = p50s(fn(key), args.repeats)
        noise.append({"runtime": runtime, "file": key, "p50_ms": values, "median_ms": median(values), "cv": cv(values),
                      "target_met": cv(values) <= CV_TARGET})
        print(f"noise {runtime:18s} {key:16s} p50s {[round(v, 4) for v in values]} cv {cv(values):.1%}", flush=True)
    by_runtime = {n["runtime"]: n["median_ms"] for n in noise}

    # 2 and 3: per model, the median p50 of `repeats` runs in each runtime (int8 reuses step 1)
    rows = []
    int8 = ctx.path(ctx.result("quantize").model.path)  # the saved PT2E program (.pt2), run eagerly
    models = [("student (fp32)", "fp32", ctx.student()), ("student_int8", "int8", int8), ("teacher (fp32)", None, ctx.teacher())]
    for label, variant, module in models:
        row: dict[str, Any] = {"model": label}
        if variant == "int8":
            row.update({"onnxruntime": by_runtime["onnxruntime"], "executorch-python": by_runtime["executorch-python"],
                        "executorch-native": by_runtime["executorch-native"],
                        "torch-eager": median(p50s(eager(module), args.repeats)),
                        "note": "torch eager = the PT2E int8 program (reference (de)quantize ops, not int8 kernels)"})
        elif variant == "fp32":
            row.update({"onnxruntime": median(p50s(py("onnx/fp32"), args.repeats)),
                        "executorch-python": median(p50s(py("executorch/fp32"), args.repeats)),
                        "executorch-native": median(p50s(native("executorch/fp32"), args.repeats)),
                        "torch-eager": median(p50s(eager(module), args.repeats))})
        else:
            row.update({"onnxruntime": None, "executorch-python": None, "executorch-native": None,
                        "torch-eager": median(p50s(eager(module), args.repeats)), "note": "not exported (eager only)"})
        base = row["onnxruntime"]
        row["ratio_to_onnxruntime"] = {k: (row[k] / base if base and row[k] else None)
                                       for k in ("executorch-python", "executorch-native", "torch-eager")}
        if row["executorch-native"] and row["executorch-python"]:
            row["python_over_native"] = row["executorch-python"] / row["executorch-native"]
        rows.append(row)
        print(f"{label}: {row}", flush=True)

    result = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                          "cpus": os.cpu_count(), "python": platform.python_version(),
                          "note": "2-core CI-class VM"},
              "options": opts.model_dump(mode="json") | {"threads": 1, "repeats": args.repeats},
              "run": str(RUN.relative_to(REPO)), "cv_target": CV_TARGET, "noise": noise, "runtimes": rows}
    from mobilekd.store import write_json

    write_json(RESULT, result)
    publish(result)


def publish(result: dict[str, Any]) -> None:
    """Replace our section of docs/benchmarks.md (other benchmarks own theirs) and print it."""
    from mobilekd.store import write_text

    table = markdown(result)
    text = DOC.read_text() if DOC.is_file() else "# Benchmarks\n"
    section = f"{BEGIN}\n{table}{END}"
    text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: section, text, flags=re.DOTALL) if BEGIN in text \
        else text.rstrip("\n") + "\n\n" + section + "\n"
    write_text(DOC, text)
    print(table)


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x * 1000:.1f}"


def _cell(row: dict[str, Any], k: str) -> str:
    ratio = row["ratio_to_onnxruntime"].get(k)
    return _ms(row[k]) + (f" ({ratio:.2f}x)" if ratio else "")


def markdown(r: dict[str, Any]) -> str:
    opts = r["options"]
    lines = ["## harness: how far to trust the latency numbers", "",
             (f"`python benchmarks/harness.py` on the quickstart run ({r['machine']['processor']}, "
             f"{r['machine']['cpus']} CPUs; {r['machine']['note']}). Batch 1, 1 thread, warm-up {opts['warmup']}, "
             f"at least {opts['min_runs']} runs and {opts['min_seconds']} s per measurement, each in a fresh process; "
             "times in **µs**."), "",
             (f"**Noise**: p50 of the same file in {opts['repeats']} fresh processes; CV of those medians "
              f"(target ≤ {r['cv_target']:.0%}), and the CV with the slowest process left out (one outlier or a spread?)."), "",
             "| runtime | file | p50 of each run (µs) | CV | target met | CV without the slowest |", "|---|---|---|---|---|---|"]
    for n in r["noise"]:
        rest = sorted(n["p50_ms"])[:-1]
        lines.append(f"| {n['runtime']} | {n['file']} | {', '.join(_ms(v) for v in n['p50_ms'])} | {n['cv']:.1%} | "
                     f"{'yes' if n['target_met'] else '**no**'} | {cv(rest):.1%} |")
    lines += ["", "**Runtimes per model**: median p50 (µs), and the ratio to ONNX Runtime.", "",
              "| model | ONNX Runtime | ExecuTorch Python | ExecuTorch native | torch eager | ET Python / native |",
              "|---|---|---|---|---|---|"]
    for row in r["runtimes"]:
        cells = [_cell(row, k) for k in ("executorch-python", "executorch-native", "torch-eager")]
        pn = row.get("python_over_native")
        lines.append(f"| {row['model']} | {_ms(row['onnxruntime'])} | {' | '.join(cells)} | {f'{pn:.2f}x' if pn else '–'} |")
    notes = [f"{row['model']}: {row['note']}" for row in r["runtimes"] if row.get("note")]
    lines += ["", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
