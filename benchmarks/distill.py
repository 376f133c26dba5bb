"""Does distillation beat training the student alone? Fashion-MNIST, 3 seeds, same student and budget.

Variants (the teacher and student architectures, epochs and optimiser of pipelines/fashion.yaml):
  teacher              the ~1.15M-parameter CNN trained on labels
  student_alone        the 40.5k-parameter student on labels only (alpha = 1: no KD term)
  student_kd_logit     + Hinton logit KD (T = 4, alpha = 0.3)
  student_kd_feature   + logit KD + the recipe's FitNets hint
  student_kd_rkd       + logit KD + the recipe's RKD (distance + angle) on the embeddings
and the distill stage's seconds without the teacher-output cache (teacher run every batch) and with
it (built by an earlier run, read memory-mapped). Each seed is one run directory, so the teacher is
trained once per seed and each variant re-runs only the distill stage (the pipeline's stage cache).

Sized for 2 shared cores: limit_train as in the recipe, torch.set_num_threads(1).
Writes benchmarks/results/distill_fashion_mnist.json and the `distill` section of docs/benchmarks.md.
Run: python benchmarks/distill.py [--data-dir ../shared/datasets] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "benchmarks" / "results" / "distill_fashion_mnist.json"
DOC = REPO / "docs" / "benchmarks.md"
RECIPE = REPO / "mobilekd" / "recipes" / "fashion.yaml"
OFF = ("prune", "quantize", "export", "verify", "bench", "gate", "bundle")


def variant_docs(base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The distill section of each variant; everything but the loss terms is the recipe's."""
    d = dict(base["distill"])
    plain = {k: v for k, v in d.items() if k not in ("hints", "relation")}
    return {
        "student_alone": {**plain, "alpha": 1.0},
        "student_kd_logit": plain,
        "student_kd_feature": {**plain, "hints": d["hints"]},
        "student_kd_rkd": {**plain, "relation": d["relation"]},
    }


def run_once(doc: dict[str, Any], run_dir: Path, data_dir: str) -> tuple[dict[str, Any], float]:
    from mobilekd.config import PipelineConfig
    from mobilekd.pipeline import run_pipeline

    cfg = PipelineConfig.model_validate(doc)
    out = run_pipeline(cfg, run_dir=run_dir, data_dir=data_dir)
    return out.statuses, out.summary


def stage_result(run_dir: Path, stage: str) -> dict[str, Any]:
    return json.loads((run_dir / stage / "stage.json").read_text())


def mean_std(values: list[float]) -> dict[str, Any]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "runs": values}


def table(result: dict[str, Any]) -> str:
    rows = ["| variant | params | val accuracy (mean, %) | test accuracy (mean ± std, %) | distill stage s (mean) |",
            "|---|---:|---:|---:|---:|"]
    for name, v in result["variants"].items():
        acc = v["test_accuracy"]
        val = v.get("val_accuracy")
        val_cell = "-" if val is None else f"{100 * val['mean']:.2f}"
        secs = v.get("distill_seconds")
        rows.append(f"| {name} | {v['params']:,} | {val_cell} | {100 * acc['mean']:.2f} ± {100 * acc['std']:.2f} | "
                    f"{'-' if secs is None else f'{secs:.1f}'} |")
    c = result["teacher_cache"]
    t = result["targets"]
    return "\n".join(rows) + (
        f"\n\nTeacher-output cache, distill stage ({c['variant']}, seed {c['seed']}): "
        f"{c['seconds_without']:.1f} s without (teacher run every batch), {c['seconds_with_cold']:.1f} s building it, "
        f"{c['seconds_with']:.1f} s reusing it ({c['speedup']:.2f}x).\n\n"
        f"Best KD student (picked on validation accuracy, test reported): {t['best_kd']} — "
        f"{t['gain_points']:.2f} test points over the student alone "
        f"(target >= 0.5: {'met' if t['gain_met'] else 'missed'}), {100 * t['fraction_of_teacher']:.1f}% of the "
        f"teacher's accuracy (target >= 97%: {'met' if t['fraction_met'] else 'missed'}) with 1/"
        f"{t['param_ratio']:.0f} of its parameters.\n\n{result['setup']}\n")


def write_doc_section(text: str) -> None:
    from doc_section import write_section  # benchmarks/doc_section.py (this script's folder is on sys.path)

    write_section(DOC, "distill", f"## Distillation (Fashion-MNIST)\n\nProduced by `python benchmarks/distill.py`.\n\n{text}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/datasets")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=None, help="run directories (default: a temporary folder)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes to check the script (writes nothing)")
    ap.add_argument("--teacher-data", choices=("full", "subset"), default="full",
                    help="full: the teacher (the 'server model') trains on all training images and the students "
                         "load it as teacher.checkpoint; subset: the teacher trains on the students' subset too")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from mobilekd.store import write_json

    base = yaml.safe_load(RECIPE.read_text())
    for k in OFF:
        base[k] = None
    if args.smoke:
        base["data"]["options"].update(limit_train=200, limit_test=200)
        base["teacher"]["epochs"] = base["distill"]["epochs"] = 1
    work = args.work or Path(tempfile.mkdtemp(prefix="mobilekd-bench-distill-"))
    runs: dict[str, list[float]] = {}
    val_runs: dict[str, list[float]] = {}  # validation accuracy: what the best KD student is picked on
    secs: dict[str, list[float]] = {}
    params: dict[str, int] = {}
    cache: dict[str, Any] = {}
    t_start = time.perf_counter()
    for seed in args.seeds:
        run_dir = work / f"seed{seed}"
        teacher_doc = dict(base["teacher"])
        if args.teacher_data == "full":
            # The teacher alone, on every training image (same seed: same test images as the students).
            full = copy.deepcopy({**base, "seed": seed, "distill": None})
            full["data"]["options"]["limit_train"] = None if not args.smoke else 400
            # 13.5x the images: fewer, larger steps keep it affordable on 2 cores (about 2 min a seed).
            full["teacher"].update(epochs=1 if args.smoke else 3, batch_size=128)
            t_dir = work / f"teacher{seed}"
            run_once(full, t_dir, args.data_dir)
            t = stage_result(t_dir, "teacher")
            runs.setdefault("teacher", []).append(t["result"]["metrics"]["accuracy"])
            secs.setdefault("teacher_train", []).append(t["seconds"])
            params["teacher"] = t["result"]["params"]
            teacher_doc = {k: v for k, v in teacher_doc.items() if k not in ("epochs",)}
            teacher_doc["checkpoint"] = str(t_dir / "teacher" / "teacher.pt")
            print(f"seed {seed} teacher (all training images): acc {runs['teacher'][-1]:.4f} ({t['seconds']:.0f} s)",
                  flush=True)
        for name, distill in variant_docs(base).items():
            doc = copy.deepcopy({**base, "seed": seed, "distill": distill, "teacher": teacher_doc})
            statuses, _ = run_once(doc, run_dir, args.data_dir)
            r = stage_result(run_dir, "distill")["result"]
            runs.setdefault(name, []).append(r["metrics"]["accuracy"])
            val_runs.setdefault(name, []).append(r["val_metrics"]["accuracy"])
            secs.setdefault(name, []).append(statuses["distill"]["seconds"])
            params[name] = r["params"]
            if name == "student_alone" and args.teacher_data == "subset":
                t = stage_result(run_dir, "teacher")
                runs.setdefault("teacher", []).append(t["result"]["metrics"]["accuracy"])
                secs.setdefault("teacher_train", []).append(t["seconds"])
                params["teacher"] = t["result"]["params"]
            print(f"seed {seed} {name}: acc {r['metrics']['accuracy']:.4f} ({statuses['distill']['seconds']:.1f} s, "
                  f"cache {r['teacher_cache']})", flush=True)
        if seed == args.seeds[0]:
            # Same variant three ways: cache off; cache built (fresh cache folder); cache reused.
            name = "student_kd_logit"
            timing = {}
            for label, on in (("seconds_without", False), ("seconds_with_cold", True), ("seconds_with", True)):
                doc = copy.deepcopy({**base, "seed": seed, "teacher": teacher_doc,
                                     "distill": {**variant_docs(base)[name], "cache_teacher": on}})
                d = run_dir
                if label == "seconds_with_cold":
                    import shutil

                    shutil.rmtree(d / ".cache", ignore_errors=True)
                from mobilekd.config import PipelineConfig
                from mobilekd.pipeline import run_pipeline

                out = run_pipeline(PipelineConfig.model_validate(doc), run_dir=d, data_dir=args.data_dir,
                                   from_stage="distill")
                timing[label] = out.statuses["distill"]["seconds"]
                print(f"cache timing {label}: {timing[label]:.1f} s", flush=True)
            cache = {"variant": name, "seed": seed, **timing, "speedup": timing["seconds_without"] / timing["seconds_with"]}
    variants: dict[str, Any] = {}
    for name in ("teacher", "student_alone", "student_kd_logit", "student_kd_feature", "student_kd_rkd"):
        s = secs["teacher_train" if name == "teacher" else name]
        variants[name] = {"params": params[name], "test_accuracy": mean_std(runs[name]),
                          "distill_seconds": None if name == "teacher" else statistics.fmean(s)}
        if name in val_runs:
            variants[name]["val_accuracy"] = mean_std(val_runs[name])
        if name == "teacher":
            variants[name]["train_seconds"] = statistics.fmean(s)
    # Picked on validation (mean over seeds), reported on test: a pick made on test would flatter it.
    kd = max(("student_kd_logit", "student_kd_feature", "student_kd_rkd"), key=lambda k: variants[k]["val_accuracy"]["mean"])
    gain = 100 * (variants[kd]["test_accuracy"]["mean"] - variants["student_alone"]["test_accuracy"]["mean"])
    frac = variants[kd]["test_accuracy"]["mean"] / variants["teacher"]["test_accuracy"]["mean"]
    ratio = variants["teacher"]["params"] / variants[kd]["params"]
    opts = base["data"]["options"]
    teacher_note = ("the teacher trains on all 54,000 training images for 3 epochs at batch 128 (the server "
                    "model; loaded by the students' pipelines as teacher.checkpoint), the students on the subset; "
                    if args.teacher_data == "full"
                    else "teacher and students on the same subset; ")
    teacher_epochs = "" if args.teacher_data == "full" else f"teacher {base['teacher']['epochs']} epochs, "
    setup = (f"Setup: Fashion-MNIST, {teacher_note}{opts['limit_train']} training images (limit_train; validation "
             f"{round(opts['limit_train'] * opts['val_fraction'])}), {opts['limit_test']} test images; "
             f"{teacher_epochs}every student {base['distill']['epochs']} epochs (early stopping "
             f"patience {base['distill']['early_stopping_patience']}, best validation epoch kept), batch "
             f"{base['distill']['batch_size']}, AdamW lr {base['distill']['lr']}, cosine schedule; seeds "
             f"{args.seeds} (the seed also draws the training subset); torch.set_num_threads({args.threads}) on a "
             f"shared 2-core CPU. Total {time.perf_counter() - t_start:.0f} s.")
    result = {"dataset": "fashion_mnist", "seeds": args.seeds, "setup": setup,
              "recipe": "mobilekd/recipes/fashion.yaml (stages after distill switched off)",
              "variants": variants, "teacher_cache": cache,
              "targets": {"best_kd": kd, "picked_on": "validation accuracy (mean over seeds)", "gain_points": gain, "gain_met": gain >= 0.5, "fraction_of_teacher": frac,
                          "fraction_met": frac >= 0.97, "param_ratio": ratio, "ratio_met": ratio >= 20},
              "torch": torch.__version__}
    text = table(result)
    if not args.smoke:
        write_json(RESULT, result)
        write_doc_section(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
