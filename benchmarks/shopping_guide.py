"""Shopping guide benchmark: next-invoice ranking on UCI Online Retail, full training data, 3 seeds.

Models come from the recipe (pipelines/shopping_guide.yaml) run through `run_pipeline` with config
overrides, and are read back from each run's summary.json (test metrics) and stage.json (validation
metrics). Three phases, each resumable from --work:
  teachers  per seed: one run trains the recipe's teacher and the student alone (alpha = 1: no teacher
            signal); every other teacher variant (TEACHERS, e.g. with item text) trains in its own run;
  seeds     the teacher variant with the best mean *validation* NDCG@10 over all seeds is the one
            distilled: each KD variant (KD_VARIANTS) loads it (`teacher.checkpoint`) and distills, with
            the stages after distill switched off;
  final     the KD variant with the best mean validation NDCG@10 is completed (quantize, export,
            verify, bench, gate, bundle) in its own run directory, reusing its cached stages.
The baselines are not pipeline stages: they are fitted here with mobilekd.baselines on the same full
training split and scored with mobilekd.evaluate.metrics.

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

from mobilekd import baselines as B
from mobilekd.data.online_retail import load
from mobilekd.evaluate import metrics
from mobilekd.metrics.ranking import ranking_metrics
from mobilekd.pipeline import run_pipeline
from mobilekd.pipeline_file import load_pipeline

from doc_section import write_section  # benchmarks/ is on sys.path when run as a script
from mobilekd.store import read_json, write_json

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "pipelines" / "shopping_guide.yaml"
RESULTS = ROOT / "benchmarks" / "results" / "shopping_guide.json"
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "shopping_guide"
METRICS = ("ndcg@10", "ndcg@10_new", "ndcg@10_repeat", "recall@10", "recall@10_new")
LATER = ("quantize", "export", "verify", "bench", "gate", "bundle")
# Teacher variants (overrides of the recipe's teacher section), the distilled one chosen on validation.
TEACHERS: dict[str, list[str]] = {
    "recipe": [],  # the recipe's teacher as it stands
    # + the fixed TF-IDF similarity of product descriptions over the last 10 lines, on new items only
    "text": ["teacher.args.text=true", "teacher.args.text_len=10", "teacher.args.text_new_only=true"],
}
# KD variants (overrides of the recipe's distill section), chosen on validation.
KD_VARIANTS: dict[str, list[str]] = {
    "logit_kd": [],  # the recipe's own distill section: alpha 0.5, T 1
    "logit_kd_alpha0.2": ["distill.alpha=0.2"],  # more weight on the teacher's catalogue-wide scores
    # the KL term over the items not in the history only: the teacher's discovery knowledge
    "kd_new": ["distill.kd_items=new"],
    "kd_new_T2": ["distill.kd_items=new", "distill.temperature=2.0"],  # softer teacher scores on new items
    # ranking distillation of the teacher's top-10 new items (Tang & Wang 2018): opt-in with
    # --variants, since it lost 0.07 NDCG@10 on validation against the earlier teacher
    "rank_kd_new": ["distill.ranking={k: 10, decay: 5.0, weight: 0.5, new_items: true}"],
}
LABELS = {"most_popular": "most-popular", "repeat": "repeat rule (last K lines, popularity tie-break)",
          "history_frequency": "history frequency (all earlier lines)",
          "co_occurrence": "co-occurrence (last 10 lines -> next invoice)", "blend": "blend (weights tuned on val)",
          "teacher": "teacher (chosen on val)", "teacher_recipe": "teacher (recipe)",
          "teacher_text": "teacher + item text", "student_alone": "student alone (CE)", "student_kd": "student + KD (chosen on val)",
          "student_kd_int8": "student + KD, int8"}


def never_ranked(ds) -> tuple[int, ...]:  # the dataset's exclude_ids (padding, unknown)
    return tuple(ds.info.postprocessing["exclude_ids"])


def baselines(data_dir: Path | None, history: int, long_history: int) -> dict[str, dict]:
    """Deterministic (no seed enters a count): fitted once on the full training split."""
    ds = load(data_dir, seed=0, history=history, long_history=long_history)  # what the teacher reads
    n, info = ds.info.num_outputs, ds.info
    pop = B.MostPopular(n).fit(ds.train)
    rows = {"most_popular": pop, "repeat": B.RepeatRule(n).fit(ds.train),
            "history_frequency": B.history_frequency(n).fit(ds.train),
            "co_occurrence": B.CoOccurrence(n, window=10).fit(ds.train)}
    blend = B.Blend({"repeat": rows["repeat"], "history_frequency": rows["history_frequency"],
                     "co_occurrence": rows["co_occurrence"], "popular": pop})
    blend.tune(ds.val, lambda s: ranking_metrics(s, ds.val.targets, (10,), exclude_ids=never_ranked(ds))["ndcg@10"],
               grid=(0.0, 0.3, 1.0, 3.0))
    rows["blend"] = blend
    out = {}
    for name, model in rows.items():
        out[name] = {"params": 0, "metrics": metrics(model.scores(ds.test), ds.test, info),
                     "val_metrics": metrics(model.scores(ds.val), ds.val, info)}
    out["blend"]["weights"] = blend.weights
    return out


def run(overrides: list[str], run_dir: Path, data_dir: Path | None) -> tuple[dict, dict]:
    cfg = load_pipeline(RECIPE, overrides)
    run_pipeline(cfg, run_dir=run_dir, data_dir=data_dir)
    summary = read_json(run_dir / "summary.json")
    return summary, read_json(run_dir / "distill" / "stage.json")["result"]


def off() -> list[str]:
    return [f"{s}=null" for s in LATER]


def mean_std(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "runs": [float(v) for v in values]}


def variant_row(runs: list[dict], key: str = "metrics") -> dict:
    return {"params": runs[0]["params"], "metrics": {m: mean_std([r[key][m] for r in runs]) for m in METRICS}}


def teacher_record(seed: int, teachers: list[str], work: Path, data_dir: Path | None) -> dict:
    """Every teacher variant of one seed, and the student alone (trained in the recipe teacher's run)."""
    path = work / f"seed{seed}" / "teachers.json"
    if path.exists():
        return read_json(path)
    rec: dict = {"teachers": {}}
    for name in teachers:
        run_dir = work / f"seed{seed}" / ("alone" if name == "recipe" else f"teacher-{name}")
        # a server-only teacher needs a student in its run: there a 1-epoch throwaway one
        student = ["distill.alpha=1.0"] + ([] if name == "recipe" else ["distill.epochs=1"])
        s, _ = run([f"seed={seed}", *TEACHERS[name], *student, *off()], run_dir, data_dir)
        t_stage = read_json(run_dir / "teacher" / "stage.json")["result"]
        rec["teachers"][name] = {**s["models"]["teacher"], "val_metrics": t_stage["val_metrics"],
                                 "checkpoint": str(run_dir / "teacher" / "teacher.pt")}
        if name == "recipe":
            d = read_json(run_dir / "distill" / "stage.json")["result"]
            rec["student_alone"] = {**s["models"]["student"], "val_metrics": d["val_metrics"]}
    write_json(path, rec)
    return rec


def mean_val(records: list[dict], names: list[str]) -> dict[str, float]:
    """Each variant's validation NDCG@10, averaged over the seeds' records {name: row}."""
    return {n: float(np.mean([r[n]["val_metrics"]["ndcg@10"] for r in records])) for n in names}


def kd_overrides(seed: int, teacher: str, checkpoint: str, variant: str) -> list[str]:
    return [f"seed={seed}", *TEACHERS[teacher], f"teacher.checkpoint={checkpoint}", *KD_VARIANTS[variant]]


def seed_record(seed: int, teacher: str, checkpoint: str, names: list[str], work: Path,
                data_dir: Path | None) -> dict:
    """Every KD variant of one seed, distilled from the chosen teacher (stages after distill off)."""
    path = work / f"seed{seed}" / f"kd-{teacher}.json"
    rec = read_json(path) if path.exists() else {}
    for name in names:
        if name not in rec:
            s, d = run([*kd_overrides(seed, teacher, checkpoint, name), *off()],
                       work / f"seed{seed}" / f"{teacher}-{name}", data_dir)
            rec[name] = {**s["models"]["student"], "val_metrics": d["val_metrics"]}
            write_json(path, rec)
    return rec


def final_summary(seed: int, teacher: str, checkpoint: str, chosen: str, work: Path, data_dir: Path | None) -> dict:
    """The chosen variant with every stage on; its data/teacher/distill stages are cached."""
    path = work / f"seed{seed}" / f"final-{teacher}-{chosen}.json"
    if path.exists():
        return read_json(path)
    s, _ = run(kd_overrides(seed, teacher, checkpoint, chosen), work / f"seed{seed}" / f"{teacher}-{chosen}", data_dir)
    write_json(path, s)
    return s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared CPU)")
    p.add_argument("--work", type=Path, default=Path("/tmp/mobilekd-shopping-guide"))
    p.add_argument("--teachers", nargs="+", default=list(TEACHERS), choices=list(TEACHERS))
    p.add_argument("--variants", nargs="+", default=["logit_kd", "logit_kd_alpha0.2", "kd_new", "kd_new_T2"],
                   choices=list(KD_VARIANTS))
    p.add_argument("--phase", choices=["all", "baselines", "teachers", "seeds", "final", "report"], default="all",
                   help="run one part only (each part's results are kept in --work, so parts can run as "
                        "parallel processes: baselines, teachers per seed, seeds per seed once every seed's "
                        "teachers are done, final per seed, then report)")
    p.add_argument("--no-docs", action="store_true")
    args = p.parse_args()
    if "recipe" not in args.teachers:
        p.error("--teachers must include recipe (its run trains the student alone)")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    options = load_pipeline(RECIPE).data.options
    history, long_history = int(options.get("history", 50)), int(options.get("long_history", 2000))
    base_path = args.work / "baselines.json"
    if args.phase in ("all", "baselines") and not base_path.exists():
        write_json(base_path, baselines(args.data_dir, history, long_history))
        print(f"baselines done {time.perf_counter() - t0:.0f}s", flush=True)
    if args.phase in ("all", "teachers"):
        for seed in args.seeds:
            rec = teacher_record(seed, args.teachers, args.work, args.data_dir)
            print(f"seed {seed} teachers done {time.perf_counter() - t0:.0f}s: "
                  + " ".join(f"{k} {v['metrics']['ndcg@10']:.4f} (val {v['val_metrics']['ndcg@10']:.4f})"
                             for k, v in rec["teachers"].items())
                  + f" alone {rec['student_alone']['metrics']['ndcg@10']:.4f}", flush=True)
    if args.phase in ("baselines", "teachers"):
        return
    # every seed whose teachers are trained, read once: one choice of teacher (and of KD) for all seeds
    trained = {int(f.parent.name[4:]): read_json(f) for f in sorted(args.work.glob("seed*/teachers.json"))}
    teacher_val = mean_val([r["teachers"] for r in trained.values()], args.teachers)
    teacher = max(teacher_val, key=teacher_val.get)
    ckpt = {seed: r["teachers"][teacher]["checkpoint"] for seed, r in trained.items()}
    if args.phase in ("all", "seeds"):
        for seed in args.seeds:
            rec = seed_record(seed, teacher, ckpt[seed], args.variants, args.work, args.data_dir)
            print(f"seed {seed} KD from {teacher} done {time.perf_counter() - t0:.0f}s: "
                  + " ".join(f"{k} {v['metrics']['ndcg@10']:.4f}" for k, v in rec.items()), flush=True)
    if args.phase == "seeds":
        return
    kd_all = {seed: read_json(args.work / f"seed{seed}" / f"kd-{teacher}.json") for seed in trained}
    val = mean_val(list(kd_all.values()), args.variants)
    chosen = max(val, key=val.get)
    finals = [final_summary(s, teacher, ckpt[s], chosen, args.work, args.data_dir) for s in args.seeds]
    if args.phase == "final":
        return
    base = read_json(base_path)
    variants: dict[str, dict] = {}
    for name, b in base.items():
        variants[name] = {"params": 0, "metrics": {m: mean_std([b["metrics"][m]] * len(args.seeds)) for m in METRICS},
                          "deterministic": True, **({"weights": b["weights"]} if "weights" in b else {})}
    for name in args.teachers:
        variants[f"teacher_{name}"] = {**variant_row([trained[s]["teachers"][name] for s in args.seeds]),
                                       "val_ndcg@10": teacher_val[name]}
    variants["teacher"] = {**variants[f"teacher_{teacher}"], "variant": teacher}
    variants["student_alone"] = variant_row([trained[s]["student_alone"] for s in args.seeds])
    for name in args.variants:
        variants[f"student_{name}"] = {**variant_row([kd_all[s][name] for s in args.seeds]), "val_ndcg@10": val[name]}
    variants["student_kd"] = {**variants[f"student_{chosen}"], "variant": chosen}
    variants["student_kd_int8"] = variant_row([f["models"]["student_int8"] for f in finals])
    arts = finals[0]["artifacts"]
    variants["student_kd_int8"]["bytes"] = {f"{a['format']}_{a['variant']}": a["bytes"] for a in arts}
    variants["student_kd_int8"]["p50_ms"] = {f"{a['format']}_{a['variant']}": (a.get("latency_ms") or {}).get("p50")
                                             for a in arts if a.get("latency_ms")}
    variants["student_kd_int8"]["parity"] = [{f"{a['format']}_{a['variant']}": a["parity"] for a in f["artifacts"]}
                                             for f in finals]
    result = {"benchmark": SECTION, "seeds": args.seeds, "variants": variants, "selected_on": "validation",
              "teacher_selected": teacher,
              "kd_selected": chosen, "kd_val_ndcg@10": val, "history": history,
              "machine": f"{platform.processor() or platform.machine()}, shared 2-core CPU",
              "command": "python benchmarks/shopping_guide.py --data-dir ../shared/datasets"}
    result["targets"] = targets(variants)
    write_json(RESULTS, result)
    md = table(result)
    print(md)
    if not args.no_docs:
        write_section(DOCS, SECTION, f"## Shopping guide (next-purchase recommender)\n\n{md}\n\n")


def targets(v: dict) -> dict[str, dict]:
    def m(name: str, metric: str = "ndcg@10") -> float:
        return v[name]["metrics"][metric]["mean"]

    def sd(name: str, metric: str) -> float:
        return v[name]["metrics"][metric]["std"]

    base = ("most_popular", "repeat", "history_frequency", "co_occurrence", "blend")
    best = max(base, key=m)
    gap = {k: m("student_kd", k) - m("student_alone", k) for k in ("ndcg@10", "ndcg@10_new")}
    noise = {k: 2 * max(sd("student_kd", k), sd("student_alone", k)) for k in gap}
    ratio = v["student_kd"]["params"] / v["teacher"]["params"]
    drop = 1 - m("student_kd_int8") / m("student_kd")
    small = min(b for k, b in v["student_kd_int8"].get("bytes", {}).items() if k.endswith("int8"))
    return {
        "teacher_vs_best_baseline": {"value": m("teacher") / m(best), "baseline": best, "target": ">= 1.05",
                                     "met": m("teacher") >= 1.05 * m(best)},
        "teacher_new_vs_co_occurrence_new": {"value": m("teacher", "ndcg@10_new") / m("co_occurrence", "ndcg@10_new"),
                                             "target": ">= 1.2",
                                             "met": m("teacher", "ndcg@10_new") >= 1.2 * m("co_occurrence", "ndcg@10_new")},
        "kd_beats_alone_overall": {"value": gap["ndcg@10"], "target": f"> {noise['ndcg@10']:.4f} (2x larger std)",
                                   "met": gap["ndcg@10"] > noise["ndcg@10"]},
        "kd_beats_alone_new": {"value": gap["ndcg@10_new"], "target": f"> {noise['ndcg@10_new']:.4f} (2x larger std)",
                               "met": gap["ndcg@10_new"] > noise["ndcg@10_new"]},
        "kd_keeps_95pct_of_teacher": {"value": m("student_kd") / m("teacher"), "target": ">= 0.95",
                                      "met": m("student_kd") >= 0.95 * m("teacher")},
        "student_params_at_most_tenth": {"value": ratio, "target": "<= 0.1", "met": ratio <= 0.1},
        "int8_loses_at_most_2pct": {"value": drop, "target": "<= 0.02", "met": drop <= 0.02},
        "int8_file_at_most_1mb": {"value": small, "target": "<= 1,000,000 B (smallest int8 file)",
                                  "met": max(b for k, b in v["student_kd_int8"]["bytes"].items() if k.endswith("int8")
                                             and not k.startswith("coreml")) <= 1_000_000},
    }


def table(result: dict) -> str:
    v = result["variants"]
    lines = [f"Online Retail, the whole next invoice from the last {result['history']} lines; test = each held-out "
             f"customer's last invoice; mean ± std over seeds {result['seeds']} (baselines have no seed). `_new`: "
             "items not in the history, ranked with history items removed; `_repeat`: items bought before "
             f"(Li et al. TOIS 2023). Teacher distilled, chosen on validation: **{result['teacher_selected']}**; KD "
             f"variant chosen on validation: **{result['kd_selected']}**. "
             f"{result['machine']}.", "",
             "| model | NDCG@10 | NDCG@10 new | NDCG@10 repeat | Recall@10 | Recall@10 new | params |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    order = [k for k in ("most_popular", "repeat", "history_frequency", "co_occurrence", "blend") if k in v]
    order += [k for k in v if k.startswith("teacher_")] + ["teacher", "student_alone"]
    order += [k for k in v if k.startswith("student_") and k not in order and k not in ("student_kd", "student_kd_int8")]
    order += ["student_kd", "student_kd_int8"]
    for k in order:
        cells = [f"{v[k]['metrics'][m]['mean']:.4f} ± {v[k]['metrics'][m]['std']:.4f}" for m in METRICS]
        lines.append(f"| {LABELS.get(k, k.replace('_', ' '))} | " + " | ".join(cells) + f" | {v[k]['params']:,} |")
    q = v["student_kd_int8"]
    lines += ["", "int8 files: " + ", ".join(f"{k} {b / 1e3:,.0f} kB" for k, b in q.get("bytes", {}).items())
              + "; p50 ms (1 thread): " + ", ".join(f"{k} {x:.3f}" for k, x in q.get("p50_ms", {}).items() if x),
              "", "| target | value | met |", "|---|---|---|"]
    for name, t in result["targets"].items():
        val = t["value"]
        lines.append(f"| {name} ({t['target']}) | {val:.4f} | {'yes' if t['met'] else '**no**'} |"
                     if isinstance(val, float) else f"| {name} ({t['target']}) | {val} | {'yes' if t['met'] else '**no**'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
