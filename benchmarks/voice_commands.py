"""Voice commands (keyword spotting): does distillation help the DS-CNN student on held-out voices?

Variants, all overrides of pipelines/voice_commands.yaml (same data, student, optimiser; the KD
weights are spelled out, so the variants stay what was measured when the recipe's own settings change):
  teacher              the ~686k-parameter KWS ResNet (SpecAugment + time shift)
  student_alone        DS-CNN on labels only (alpha = 1: no KD term)
  student_kd_logit     + Hinton logit KD, alpha 0.3, T 4
  student_kd_feature   + the same logit KD + the recipe's FitNets hint
  student_kd_feature_label  logit KD with more weight on the labels and a softer T (alpha 0.7, T 2)
                       + the hint: the recipe's distill section since it won on validation
  best KD student int8 the KD variant with the best mean validation accuracy, PT2E int8 (XNNPACK)
Each seed and variant is one run directory (so re-running the script reuses every finished stage); every
variant runs the quantize stage, so the int8 numbers of the chosen variant come from the same runs.
Bytes and p50/p90 latency come from one full run (export, verify, bench) of the chosen variant.

Sized for 2 shared cores: the teacher is trained once (seed 0, the recipe's settings) and loaded by
every student run as teacher.checkpoint (it is the "server model"; its seed is not what is compared),
students train `--student-epochs` epochs. torch.set_num_threads(1).
Writes benchmarks/results/voice_commands.json and the `voice_commands` section of docs/benchmarks.md.
Run: python benchmarks/voice_commands.py [--data-dir ../shared/datasets] [--teacher-run RUN_DIR]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from distill import mean_std, stage_result  # benchmarks/distill.py (this folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "benchmarks" / "results" / "voice_commands.json"
DOC = REPO / "docs" / "benchmarks.md"
RECIPE = REPO / "mobilekd" / "recipes" / "voice_commands.yaml"
AFTER_QUANTIZE = ("export", "verify", "bench", "gate", "bundle")
KD = ("student_kd_logit", "student_kd_feature", "student_kd_feature_label")
METRICS = ("accuracy", "f1_macro", "false_accept_rate")


def variant_docs(base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    d = dict(base["distill"])
    plain = {k: v for k, v in d.items() if k != "hints"}
    hard = {**plain, "alpha": 0.3, "temperature": 4.0}
    return {"student_alone": {**plain, "alpha": 1.0}, "student_kd_logit": hard,
            "student_kd_feature": {**hard, "hints": d["hints"]},
            "student_kd_feature_label": {**plain, "hints": d["hints"], "alpha": 0.7, "temperature": 2.0}}


def run_once(doc: dict[str, Any], run_dir: Path, data_dir: str) -> dict[str, Any]:
    from mobilekd.config import PipelineConfig
    from mobilekd.pipeline import run_pipeline

    run_pipeline(PipelineConfig.model_validate(doc), run_dir=run_dir, data_dir=data_dir)
    return json.loads((run_dir / "summary.json").read_text())


def _pct(ms: dict[str, Any]) -> str:
    return f"{100 * ms['mean']:.2f} ± {100 * ms['std']:.2f}"


def table(result: dict[str, Any]) -> str:
    rows = ["| variant | params | test accuracy (%) | macro F1 (%) | false accepts (%) | val accuracy (%) |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, v in result["variants"].items():
        rows.append(f"| {name} | {v['params']:,} | {_pct(v['accuracy'])} | {_pct(v['f1_macro'])} | "
                    f"{_pct(v['false_accept_rate'])} | {_pct(v['val_accuracy']) if 'val_accuracy' in v else '-'} |")
    files = ["| file | bytes | p50 ms (1 thread) | p90 ms | parity |", "|---|---:|---:|---:|---|"]
    for a in result["files"]:
        lat = a.get("latency_ms") or {}
        files.append(f"| {a['path']} | {a['bytes']:,} | {lat.get('p50', float('nan')):.3f} | "
                     f"{lat.get('p90', float('nan')):.3f} | {a['parity']} |")
    t = result["targets"]
    lines = [
        f"Best KD student (chosen on validation): {t['best_kd']}. Over the student alone: "
        f"{t['gain_points']:+.2f} points (target: more than the seed std {t['gain_std_points']:.2f}: "
        f"{'met' if t['gain_met'] else 'MISSED'}).",
        f"Fraction of the teacher's accuracy: {100 * t['fraction_of_teacher']:.1f}% (target >= 97%: "
        f"{'met' if t['fraction_met'] else 'MISSED'}) with 1/{t['param_ratio']:.0f} of its parameters (target "
        f">= 20: {'met' if t['ratio_met'] else 'MISSED'}).",
        f"int8 (PT2E XNNPACK) loses {t['int8_drop_points']:+.2f} points (target <= 0.5: "
        f"{'met' if t['int8_met'] else 'MISSED'}).",
    ]
    if not result["files"]:
        files = ["Files, parity and latency: not measured in this run (--no-files)."]
    return "\n".join(rows) + "\n\n" + "\n".join(files) + "\n\n" + "\n".join(lines) + f"\n\n{result['setup']}\n"


def write_doc_section(text: str) -> None:
    from doc_section import write_section  # benchmarks/doc_section.py (this script's folder is on sys.path)

    write_section(DOC, "voice_commands", f"## Voice commands (synthetic keyword spotting, held-out voices)\n\nProduced by `python benchmarks/voice_commands.py`.\n\n{text}")


def train_teacher(base: dict[str, Any], work: Path, data_dir: str) -> Path:
    doc = copy.deepcopy({**base, "seed": 0, "distill": None, "quantize": None, **{k: None for k in AFTER_QUANTIZE}})
    doc["data"]["options"].pop("limit_train_speakers", None)  # the teacher hears every training voice
    run_once(doc, work / "teacher", data_dir)
    return work / "teacher"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "datasets"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--student-epochs", type=int, default=None, help="default: the recipe's distill.epochs")
    ap.add_argument("--student-speakers", type=int, default=None,
                    help="training voices the students see (default: all of them, as in the recipe)")
    ap.add_argument("--teacher-run", type=Path, default=None,
                    help="a finished run of the recipe whose teacher (seed 0) the students load")
    ap.add_argument("--work", type=Path, default=None, help="run directories (default: a temporary folder)")
    ap.add_argument("--variants", nargs="+", default=None, help="a subset of the student variants")
    ap.add_argument("--no-files", action="store_true", help="skip the full run (files, parity, latency)")
    ap.add_argument("--no-full", action="store_true",
                    help="train the variants only (e.g. one process per seed into one --work); a later run "
                         "with every seed and the same --work reuses them and does the full run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from mobilekd.store import write_json

    t_start = time.perf_counter()
    base = yaml.safe_load(RECIPE.read_text())
    recipe_epochs = base["distill"]["epochs"]
    args.student_epochs = args.student_epochs or recipe_epochs
    base["distill"]["epochs"] = args.student_epochs
    if args.student_speakers is not None:  # students on a subset of the voices the teacher was trained on
        base["data"]["options"]["limit_train_speakers"] = args.student_speakers
    speakers = args.student_speakers or base["data"]["options"]["train_speakers"]
    base["quantize"] = {**base["quantize"], "onnx": None, "coreml": None}
    work = args.work or Path(tempfile.mkdtemp(prefix="mobilekd-bench-voice-"))
    teacher_run = args.teacher_run or train_teacher(base, work, args.data_dir)
    t = stage_result(teacher_run, "teacher")
    teacher_doc = {**{k: v for k, v in base["teacher"].items() if k != "epochs"},
                   "checkpoint": str(teacher_run / "teacher" / "teacher.pt")}
    print(f"teacher: acc {t['result']['metrics']['accuracy']:.4f}", flush=True)
    runs: dict[str, dict[str, list[float]]] = {}
    params: dict[str, int] = {"teacher": t["result"]["params"]}
    for seed in args.seeds:
        for name, distill in variant_docs(base).items():
            if args.variants and name not in args.variants:
                continue
            doc = copy.deepcopy({**base, "seed": seed, "teacher": teacher_doc, "distill": distill,
                                 **{k: None for k in AFTER_QUANTIZE}})
            run_dir = work / f"seed{seed}-{name}"  # one folder per variant: a re-run of the script is all cached
            run_once(doc, run_dir, args.data_dir)
            d = stage_result(run_dir, "distill")["result"]
            q = stage_result(run_dir, "quantize")["result"]
            r = runs.setdefault(name, {})
            for m in METRICS:
                r.setdefault(m, []).append(d["metrics"][m])
                r.setdefault(f"int8_{m}", []).append(q["metrics"][m])
            r.setdefault("val_accuracy", []).append(d["val_metrics"]["accuracy"])
            params[name] = d["params"]
            print(f"seed {seed} {name}: acc {d['metrics']['accuracy']:.4f} int8 {q['metrics']['accuracy']:.4f} "
                  f"val {d['val_metrics']['accuracy']:.4f} ({time.perf_counter() - t_start:.0f} s)", flush=True)
    variants: dict[str, Any] = {"teacher": {"params": params["teacher"], "seeds": [0],
                                            **{m: mean_std([t["result"]["metrics"][m]]) for m in METRICS},
                                            "val_accuracy": mean_std([t["result"]["val_metrics"]["accuracy"]])}}
    for name in runs:
        variants[name] = {"params": params[name], **{m: mean_std(runs[name][m]) for m in METRICS},
                          "val_accuracy": mean_std(runs[name]["val_accuracy"])}
    if args.no_full:
        return 0
    best = max((k for k in KD if k in variants), key=lambda k: variants[k]["val_accuracy"]["mean"])
    variants[f"{best}_int8"] = {"params": params[best], **{m: mean_std(runs[best][f"int8_{m}"]) for m in METRICS}}
    # One full run of the chosen variant (seed 0): files, parity on held-out clips, latency.
    files: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    if not args.no_files:
        full = copy.deepcopy({**base, "seed": args.seeds[0], "teacher": teacher_doc,
                              "distill": variant_docs(base)[best]})
        full["quantize"] = yaml.safe_load(RECIPE.read_text())["quantize"]
        summary = run_once(full, work / f"seed{args.seeds[0]}-{best}", args.data_dir)
        files = [{"path": a["path"], "bytes": a["bytes"], "latency_ms": a.get("latency_ms"),
                  "parity": a["parity"]["status"]} for a in summary["artifacts"]]
    acc = {k: variants[k]["accuracy"] for k in variants}
    gain = 100 * (acc[best]["mean"] - acc["student_alone"]["mean"])
    gain_std = 100 * max(acc[best]["std"], acc["student_alone"]["std"])
    frac = acc[best]["mean"] / acc["teacher"]["mean"]
    ratio = params["teacher"] / params[best]
    drop = 100 * (acc[best]["mean"] - acc[f"{best}_int8"]["mean"])
    opts = base["data"]["options"]
    setup = (f"Setup: espeak-ng synthetic voice commands, {opts['train_speakers']} training / {opts['val_speakers']} "
             f"validation / {opts['test_speakers']} test voices (15 clips each; no voice variant shared between "
             f"splits), 12 classes. Teacher (the server model): the recipe's, on all {opts['train_speakers']} "
             f"training voices (seed 0, {base['teacher']['epochs']} epochs), loaded by every student as "
             f"teacher.checkpoint. Students: the first {speakers} training voices "
             f"({15 * speakers} clips), {args.student_epochs} epochs (the recipe has "
             f"{recipe_epochs}), best validation epoch kept, seeds "
             f"{args.seeds}; test = held-out voices. Latency: the chosen variant's files, seed "
             f"{args.seeds[0]}, 1 thread of a shared 2-core CPU (load from other jobs inflates it). "
             f"torch.set_num_threads({args.threads}). Total {time.perf_counter() - t_start:.0f} s.")
    result = {"dataset": "voice_commands (synthetic)", "seeds": args.seeds, "setup": setup,
              "recipe": "mobilekd/recipes/voice_commands.yaml (pipelines/voice_commands.yaml)", "variants": variants, "files": files,
              "gate": summary.get("gate"),
              "targets": {"best_kd": best, "gain_points": gain, "gain_std_points": gain_std, "gain_met": gain > gain_std,
                          "fraction_of_teacher": frac, "fraction_met": frac >= 0.97, "param_ratio": ratio,
                          "ratio_met": ratio >= 20, "int8_drop_points": drop, "int8_met": drop <= 0.5},
              "torch": torch.__version__}
    write_json(RESULT, result)
    text = table(result)
    write_doc_section(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
