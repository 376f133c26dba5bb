"""Shopping guide benchmark: next-purchase ranking on UCI Online Retail, 3 seeds.

Rows: most-popular, co-occurrence, SASRec teacher, the student alone (cross-entropy), the student
with logit KD, the student with ranking KD (Tang & Wang 2018), and the KD student in int8 (PT2E
dynamic for ExecuTorch, ORT dynamic for ONNX; plus torchao row-wise int8 of the item tables, scored
in PyTorch). Each seed draws its own training subsample (`--max-train`) and trains the teacher once;
the three students share it. Exported files and latency are measured for the teacher (fp32 ONNX) and
the KD student (the other students have the same architecture, hence the same bytes and latency).

    python benchmarks/shopping_guide.py --data-dir ../shared/datasets

writes benchmarks/results/shopping_guide.json, prints the Markdown table and replaces the
`shopping_guide` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mobilekd.baselines import CoOccurrence, MostPopular
from mobilekd.bench.latency import LatencyOptions, measure_latency
from mobilekd.compress.embedding import quantize_rows
from mobilekd.config import TrainSettings
from mobilekd.data.online_retail import load
from mobilekd.distill.losses import KDLoss
from mobilekd.distill.ranking import RankingDistillLoss
from mobilekd.distill.trainer import fit
from mobilekd.evaluate import evaluate, predict
from mobilekd.metrics.ranking import ranking_metrics
from mobilekd.models import build_model, count_params
from mobilekd.store import write_json, write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "shopping_guide.json"
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "shopping_guide"
ROWS = ("most_popular", "co_occurrence", "teacher", "student", "student_kd", "student_rank_kd", "student_kd_int8",
        "student_kd_int8_rows")
LABELS = {"most_popular": "most-popular", "co_occurrence": "co-occurrence (window 5)", "teacher": "SASRec teacher",
          "student": "student alone (CE)", "student_kd": "student + logit KD", "student_rank_kd": "student + ranking KD",
          "student_kd_int8": "student + logit KD, int8 (PT2E dynamic .pte)",
          "student_kd_int8_rows": "student + logit KD, int8 row-wise item tables (torchao, PyTorch)"}


def ce(model, xs, y, idx):
    return F.cross_entropy(model(*xs), y), {}


def teacher_logits(teacher, ds, chunk: int = 8192) -> torch.Tensor:
    """The teacher's scores on every training row, float16 to halve the memory (N x catalogue)."""
    n = len(ds.train)
    parts = [torch.from_numpy(predict(teacher, ds.train.take(slice(i, i + chunk)), ds.info)).half()
             for i in range(0, n, chunk)]
    return torch.cat(parts)


def latency_p50(fmt: str, path: Path, ds, opts: LatencyOptions) -> float:
    feeds = {"items": ds.test.inputs["items"][:1]}
    return round(measure_latency(fmt, path, feeds, threads=1, options=opts).p50, 4)


def run_seed(seed: int, args, work: Path) -> dict:
    from mobilekd.compress.quantize import OnnxQuant, quantize_onnx, quantize_pt2e, scheme_label, ExecuTorchQuant
    from mobilekd.export.executorch import export_executorch
    from mobilekd.export.onnx import export_onnx
    from mobilekd.export.types import ExecuTorchOptions, OnnxOptions

    t0 = time.perf_counter()
    ds = load(args.data_dir, seed=seed, max_train_examples=args.max_train)
    info, out = ds.info, work / f"seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    for name, base in (("most_popular", MostPopular(info.num_outputs)), ("co_occurrence", CoOccurrence(info.num_outputs))):
        base.fit(ds.train)
        rows[name] = {"metrics": ranking_metrics(base.scores(ds.test), ds.test.targets), "params": 0}
    print(f"[seed {seed}] baselines done {time.perf_counter() - t0:.0f}s", flush=True)

    t_set = TrainSettings(epochs=args.teacher_epochs, batch_size=256, lr=args.teacher_lr, weight_decay=0.0)
    teacher = build_model("sasrec", {}, info, key="teacher")
    fitted = fit(teacher, ds.train, ds.val, info, t_set, objective=ce, seed=seed, desc="teacher")
    rows["teacher"] = {"metrics": evaluate(teacher, ds.test, info), "params": count_params(teacher),
                       "train_seconds": round(fitted.seconds, 1), "best_epoch": fitted.best_epoch}
    print(f"[seed {seed}] teacher {rows['teacher']['metrics']['ndcg@10']:.4f} {time.perf_counter() - t0:.0f}s", flush=True)
    logits = teacher_logits(teacher, ds)

    s_set = TrainSettings(epochs=args.student_epochs, batch_size=256, lr=args.student_lr)
    s_args = {"dim": args.student_dim}
    kd = KDLoss(args.temperature, args.alpha)
    rd = RankingDistillLoss(args.rank_k, args.rank_decay, form="softmax", exclude_ids=(0, 1))

    def kd_objective(model, xs, y, idx):
        return kd(model(*xs), logits[idx].float(), y)

    def rank_objective(model, xs, y, idx):
        s = model(*xs)
        loss, terms = rd(s, logits[idx].float())
        return F.cross_entropy(s, y) + args.rank_weight * loss, terms

    students = {}
    for name, objective in (("student", ce), ("student_kd", kd_objective), ("student_rank_kd", rank_objective)):
        model = build_model("rec_student", s_args, info, key=name)
        f = fit(model, ds.train, ds.val, info, s_set, objective=objective, seed=seed, desc=name)
        students[name] = model
        rows[name] = {"metrics": evaluate(model, ds.test, info), "params": count_params(model),
                      "train_seconds": round(f.seconds, 1), "best_epoch": f.best_epoch}
        print(f"[seed {seed}] {name} {rows[name]['metrics']['ndcg@10']:.4f} {time.perf_counter() - t0:.0f}s", flush=True)
    del logits

    kd_student = students["student_kd"].eval()
    specs, names = list(info.inputs), ["scores"]
    example = (torch.from_numpy(ds.train.inputs["items"][:1]),)
    calib = [(torch.from_numpy(ds.train.inputs["items"][i : i + 1]),) for i in range(8)]
    pt2e = quantize_pt2e(kd_student, example, calib, scheme="dynamic", per_channel=True)
    rows["student_kd_int8"] = {"metrics": evaluate(pt2e, ds.test, info), "params": count_params(kd_student),
                               "scheme": {"executorch": scheme_label("executorch", ExecuTorchQuant(scheme="dynamic")),
                                          "onnx": scheme_label("onnx", OnnxQuant(scheme="dynamic"))}}
    q_rows, report = quantize_rows(kd_student)
    rows["student_kd_int8_rows"] = {"metrics": evaluate(q_rows, ds.test, info), "params": count_params(kd_student),
                                    "weight_bytes_before": report.model_bytes_before,
                                    "weight_bytes_after": report.model_bytes_after, "report": report.model_dump()}
    print(f"[seed {seed}] int8 done {time.perf_counter() - t0:.0f}s", flush=True)

    if seed == args.seeds[0] or args.measure_every_seed:
        opts = LatencyOptions(threads=(1,), warmup=10, min_runs=50, min_seconds=0.3, max_seconds=3)
        files: dict[str, dict[str, int]] = {}
        lat: dict[str, dict[str, float]] = {}
        onnx32 = export_onnx(kd_student, specs, names, out / "student_fp32.onnx", OnnxOptions())
        pte32 = export_executorch(kd_student, specs, names, out / "student_fp32.pte", ExecuTorchOptions())
        pte8 = export_executorch(pt2e, specs, names, out / "student_int8.pte", ExecuTorchOptions(), variant="int8")
        onnx8 = out / "student_int8.onnx"
        quantize_onnx(Path(onnx32.path), onnx8, options=OnnxQuant(scheme="dynamic"), calibration_feeds=[])
        t_onnx = export_onnx(teacher.eval(), specs, names, out / "teacher_fp32.onnx", OnnxOptions())
        files["student"] = {"onnx_fp32": onnx32.bytes, "pte_fp32": pte32.bytes}
        files["student_kd_int8"] = {"onnx_int8": onnx8.stat().st_size, "pte_int8": pte8.bytes}
        files["teacher"] = {"onnx_fp32": t_onnx.bytes}
        lat["student"] = {"onnx_fp32": latency_p50("onnx", Path(onnx32.path), ds, opts),
                          "pte_fp32": latency_p50("executorch", Path(pte32.path), ds, opts)}
        lat["student_kd_int8"] = {"onnx_int8": latency_p50("onnx", onnx8, ds, opts),
                                  "pte_int8": latency_p50("executorch", Path(pte8.path), ds, opts)}
        lat["teacher"] = {"onnx_fp32": latency_p50("onnx", Path(t_onnx.path), ds, opts)}
        for key in ("student", "student_kd", "student_rank_kd"):
            rows[key]["bytes"], rows[key]["latency_p50_ms"] = files["student"], lat["student"]
        for key in ("student_kd_int8", "teacher"):
            rows[key]["bytes"], rows[key]["latency_p50_ms"] = files[key], lat[key]
        print(f"[seed {seed}] export + latency done {time.perf_counter() - t0:.0f}s", flush=True)
    return {"seed": seed, "examples": ds.extras["examples"], "rows": rows, "seconds": round(time.perf_counter() - t0, 1)}


def aggregate(seeds: list[dict]) -> dict[str, dict]:
    out = {}
    for row in ROWS:
        vals = [s["rows"][row] for s in seeds]
        metrics = {k: (float(np.mean([v["metrics"][k] for v in vals])), float(np.std([v["metrics"][k] for v in vals])))
                   for k in ("recall@10", "ndcg@10")}
        first = next((v for v in vals if "bytes" in v), vals[0])
        out[row] = {"recall@10_mean": metrics["recall@10"][0], "recall@10_std": metrics["recall@10"][1],
                    "ndcg@10_mean": metrics["ndcg@10"][0], "ndcg@10_std": metrics["ndcg@10"][1],
                    "params": vals[0]["params"], "bytes": first.get("bytes"), "latency_p50_ms": first.get("latency_p50_ms")}
        if "weight_bytes_after" in vals[0]:
            out[row]["bytes"] = {"weights_fp32": vals[0]["weight_bytes_before"], "weights_int8_rows": vals[0]["weight_bytes_after"]}
    return out


def targets(agg: dict) -> dict[str, dict]:
    t, s, kd, rk, q = (agg[k]["ndcg@10_mean"] for k in ("teacher", "student", "student_kd", "student_rank_kd", "student_kd_int8"))
    best_kd = max(kd, rk)
    ratio = agg["student_kd"]["params"] / agg["teacher"]["params"]
    rows_q = agg["student_kd_int8_rows"]["ndcg@10_mean"]
    return {
        "teacher_beats_co_occurrence": {"value": [t, agg["co_occurrence"]["ndcg@10_mean"]], "met": t > agg["co_occurrence"]["ndcg@10_mean"]},
        "kd_student_beats_student_alone": {"value": {"logit_kd": kd, "ranking_kd": rk, "alone": s}, "met": best_kd > s},
        "kd_student_keeps_90pct_of_teacher": {"value": best_kd / t, "met": best_kd / t >= 0.9},
        "student_params_at_most_tenth": {"value": ratio, "met": ratio <= 0.1},
        "int8_loses_at_most_2pct": {"value": {"pt2e_dynamic": 1 - q / kd, "torchao_rows": 1 - rows_q / kd},
                                     "met": (1 - q / kd) <= 0.02},
    }


def fmt_bytes(b: dict | None) -> str:
    return ", ".join(f"{k} {v / 1e3:,.0f} kB" for k, v in b.items()) if b else "-"


def fmt_lat(lat: dict | None) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in lat.items()) if lat else "-"


def table(result: dict) -> str:
    agg = result["aggregate"]
    lines = [f"Online Retail next purchase, test = each customer's last invoice ({result['examples']['test_examples']} "
             f"customers), full catalogue ({result['examples']['num_items']} ids); mean ± std over seeds "
             f"{result['seeds']}; training subsample {result['config']['max_train']:,} of "
             f"{result['examples']['train_examples_all']:,} examples per seed. Latency: batch 1, 1 thread, "
             f"{result['machine']}.", "",
             "| model | Recall@10 | NDCG@10 | params | bytes | p50 ms (1 thread) |", "|---|---:|---:|---:|---|---|"]
    for row in ROWS:
        a = agg[row]
        lines.append(f"| {LABELS[row]} | {a['recall@10_mean']:.4f} ± {a['recall@10_std']:.4f} | "
                     f"{a['ndcg@10_mean']:.4f} ± {a['ndcg@10_std']:.4f} | {a['params']:,} | {fmt_bytes(a['bytes'])} | "
                     f"{fmt_lat(a['latency_p50_ms'])} |")
    lines += ["", "| target | value | met |", "|---|---|---|"]
    for name, t in result["targets"].items():
        v = t["value"]
        shown = (f"{v:.3f}" if isinstance(v, float) else
                 ", ".join(f"{k} {x:.4f}" for k, x in v.items()) if isinstance(v, dict) else
                 " vs ".join(f"{x:.4f}" for x in v))
        lines.append(f"| {name} | {shown} | {'yes' if t['met'] else '**no**'} |")
    return "\n".join(lines)


def replace_section(text: str, body: str) -> str:
    begin, end = f"<!-- begin {SECTION} -->", f"<!-- end {SECTION} -->"
    block = f"{begin}\n## Shopping guide (next-purchase recommender)\n\n{body}\n\n{end}"
    if begin in text and end in text:
        return text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    return (text.rstrip() + "\n\n" if text.strip() else "# Benchmarks\n\n") + block + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--max-train", type=int, default=12_000)
    p.add_argument("--teacher-epochs", type=int, default=2)
    p.add_argument("--teacher-lr", type=float, default=2e-3)
    p.add_argument("--student-epochs", type=int, default=5)
    p.add_argument("--student-lr", type=float, default=5e-3)
    p.add_argument("--student-dim", type=int, default=16)
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--alpha", type=float, default=0.3)
    p.add_argument("--rank-k", type=int, default=10)
    p.add_argument("--rank-decay", type=float, default=5.0)
    p.add_argument("--rank-weight", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1, help="torch threads for training (the CPU is shared)")
    p.add_argument("--measure-every-seed", action="store_true")
    p.add_argument("--work", type=Path, default=Path("/tmp/mobilekd-shopping-guide"))
    p.add_argument("--no-docs", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    seeds = [run_seed(s, args, args.work) for s in args.seeds]
    agg = aggregate(seeds)
    cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    result = {"benchmark": SECTION, "seeds": args.seeds, "config": cfg, "examples": seeds[0]["examples"],
              "machine": f"{platform.processor() or platform.machine()}, shared 2-core CPU",
              "per_seed": seeds, "aggregate": agg, "seconds": round(time.perf_counter() - t0, 1)}
    result["targets"] = targets(agg)
    write_json(RESULTS, result)
    md = table(result)
    print(md)
    if not args.no_docs:
        write_text(DOCS, replace_section(DOCS.read_text() if DOCS.exists() else "", md))


if __name__ == "__main__":
    main()
