"""`pipeline validate`, also the first step of every run: everything a stage would refuse for a
reason of configuration is refused here, before any training, so that what validate accepts the
run never refuses for a config reason.

Two parts. `check_config` needs only the pipeline: import paths resolve, option combinations a stage
refuses, budgets that name models/files/measurements the enabled stages will not produce, and the
direction of each bound. `check_models` needs the dataset's spec and one real batch: it builds the
teacher and the student once, checks their output on that batch, the hint/relation layer names and
the teacher checkpoint's keys and shapes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from mobilekd.config import Budget, PipelineConfig
from mobilekd.errors import ConfigError, ModelError


def produced_models(cfg: PipelineConfig) -> list[str]:
    """The model names summary.json will list, given which stages are on."""
    names = ["teacher"]
    if cfg.distill is not None:
        names.append("student")
    if cfg.prune is not None:
        names.append("student_pruned")
    if cfg.quantize is not None and cfg.quantize.executorch is not None:
        names.append("student_int8")
    return names


def produced_files(cfg: PipelineConfig) -> list[tuple[str, str]]:
    """(format, variant) of every file the export stage will write (mirrors mobilekd.stages.export)."""
    if cfg.export is None:
        return []
    out = []
    for fmt in cfg.export.formats:
        if "fp32" in cfg.export.variants:
            out.append((fmt, "fp32"))
        if "int8" in cfg.export.variants and cfg.quantize is not None and getattr(cfg.quantize, fmt) is not None:
            out.append((fmt, "int8"))
    return out


BENCH_MEASURED = ("zipped_bytes", "macs", "flops")  # file metrics that the bench stage measures


def _budget_problem(b: Budget, cfg: PipelineConfig) -> str | None:
    from mobilekd.gate import LATENCY, PARITY

    models = produced_models(cfg)
    if b.model is not None:
        for who in (b.model, b.against):
            if who is not None and who not in models:
                return f"model {who!r} is not produced by the stages that are on; expected one of {', '.join(models)}"
        if b.metric.startswith("latency") and cfg.bench is None:
            return "a model latency needs the bench stage (bench: is off)"
        return None
    files = produced_files(cfg)
    rows = [(f, v) for f, v in files if (b.format is None or f == b.format) and (b.variant is None or v == b.variant)]
    if not rows:
        have = ", ".join(f"{f}/{v}" for f, v in files) or "none (export is off)"
        return f"no exported file has format={b.format} variant={b.variant}; the run will export {have}"
    if len(rows) > 1:
        return f"matches {len(rows)} files ({', '.join(f'{f}/{v}' for f, v in rows)}); set format and variant"
    fmt = rows[0][0]
    if b.metric in PARITY and cfg.verify is None:
        return f"{b.metric} is measured by the verify stage, which is off"
    if b.metric in PARITY and fmt == "coreml" and sys.platform != "darwin":
        return f"CoreML files are not executed on {sys.platform}, so they have no {b.metric}; budget their size"
    if b.metric in LATENCY or b.metric in BENCH_MEASURED or b.metric.startswith("weight_bytes"):
        if cfg.bench is None:
            return f"{b.metric} is measured by the bench stage, which is off"
        if b.metric in LATENCY and b.profile is None:
            if fmt == "coreml":
                return "CoreML files are not timed (they run only on macOS/iOS); budget their size, or an estimate with profile:"
            threads = b.threads or 1
            if threads not in cfg.bench.threads:
                return f"threads={threads} is not timed; bench.threads is {cfg.bench.threads}"
            if b.runtime == "executorch-native" and not cfg.bench.native:
                return "runtime executorch-native needs bench.native: true"
        if b.profile is not None and b.profile not in cfg.bench.profiles:
            return f"profile {b.profile!r} is not estimated; add it to bench.profiles (now {cfg.bench.profiles})"
    return None


def _combination_problems(cfg: PipelineConfig) -> list[str]:
    problems = []
    if cfg.prune is not None and cfg.prune.importance == "taylor":
        problems.append("prune.importance: 'taylor' needs gradients of a loss that the pipeline's prune stage does "
                        "not provide; use l1, l2 or random (or call mobilekd.compress.prune with taylor_loss)")
    if cfg.quantize is not None and cfg.quantize.coreml is not None and cfg.quantize.coreml.scheme == "int8_weights_activations":
        problems.append("quantize.coreml.scheme: 'int8_weights_activations' is refused at export on every OS "
                        "(calibrating activations needs CoreML execution); use int8_weights or palettize4/6/8")
    if cfg.bundle is not None:
        files = produced_files(cfg)
        chosen = [(f, v) for f, v in files if f in cfg.bundle.formats and v in cfg.bundle.variants]
        if not chosen:
            problems.append(f"bundle: no exported file matches bundle.formats={cfg.bundle.formats} and "
                            f"bundle.variants={cfg.bundle.variants}; the run will export "
                            f"{', '.join(f'{f}/{v}' for f, v in files) or 'nothing (export is off)'}")
    if cfg.bundle is not None and cfg.export is None:
        problems.append("bundle: needs the export stage, which is off (export: null)")
    if cfg.verify is not None and cfg.export is None:
        problems.append("verify: needs the export stage, which is off (export: null)")
    if cfg.teacher.checkpoint is not None and not Path(cfg.teacher.checkpoint).is_file():
        problems.append(f"teacher.checkpoint: {str(cfg.teacher.checkpoint)!r} does not exist")
    return problems


def _import_problems(cfg: PipelineConfig) -> list[str]:
    from mobilekd.imports import import_object
    from mobilekd.models import BUILTIN_MODELS

    specs = [("teacher.model", cfg.teacher.model)] if cfg.teacher.model is not None else []  # else teacher.hf
    if cfg.distill is not None:
        specs.append(("distill.student", cfg.distill.student))
    problems = []
    for key, spec in specs:
        if spec in BUILTIN_MODELS:
            continue
        try:
            import_object(spec, what=key)
        except ModelError as e:
            problems.append(str(e))
    return problems


def check_config(cfg: PipelineConfig) -> None:
    """Every configuration problem that needs no data, listed together; ConfigError if any."""
    problems = _import_problems(cfg) + _combination_problems(cfg)
    if cfg.gate is not None:
        from mobilekd.gate import check_name

        for i, b in enumerate(cfg.gate.budgets):
            p = _budget_problem(b, cfg)
            if p:
                problems.append(f"gate.budgets.{i} ({check_name(b)}): {p}")
    if problems:
        raise ConfigError("invalid pipeline:\n  " + "\n  ".join(problems))


# -- with the data's spec and one real batch ----------------------------------------------------------

def example_batch(ds: Any, n: int = 2, info: Any = None) -> tuple[Any, ...]:
    """The first n training rows of each input `info` (default the dataset's own) reads."""
    import torch

    specs = (info or ds.info).inputs
    return tuple(torch.from_numpy(np.ascontiguousarray(ds.train.inputs[s.name][:n])) for s in specs)


def check_models(cfg: PipelineConfig, ds: Any) -> None:
    """Build the teacher and student once, run one real batch, check hints, relation and checkpoint."""
    from mobilekd.distill.hints import find_module
    from mobilekd.models import build_model, check_output, load_state

    example = example_batch(ds)
    t = cfg.teacher
    try:
        tinfo = ds.info.view(t.inputs)
    except KeyError as e:
        raise ConfigError(f"teacher.inputs: no input {e.args[0]}") from None
    if t.inputs and cfg.distill is None:
        raise ConfigError("teacher.inputs: a teacher reading server-only inputs cannot be the shipped model; "
                          "add a distill section (the student reads the dataset's own inputs)")
    teacher = None
    if t.model is not None and not (t.checkpoint is not None and Path(t.checkpoint).suffix == ".pt2"):
        teacher = build_model(t.model, t.args, tinfo, key="teacher.model")
        if t.checkpoint is not None:
            load_state(teacher, t.checkpoint, key="teacher.checkpoint")
        check_output(teacher.eval(), example_batch(ds, info=tinfo), tinfo, key="teacher.model", name=t.model)
    d = cfg.distill
    if d is None:
        if teacher is not None and cfg.prune is not None:
            for name in cfg.prune.ignore:
                find_module(teacher, name, "prune.ignore")
        return
    student = build_model(d.student, d.args, ds.info, key="distill.student")
    check_output(student.eval(), example, ds.info, key="distill.student", name=d.student)
    pairs = [(f"distill.hints.{i}", h.teacher, h.student) for i, h in enumerate(d.hints)]
    if d.relation is not None:
        pairs.append(("distill.relation", d.relation.teacher, d.relation.student))
    for key, t_name, s_name in pairs:
        if teacher is not None:
            find_module(teacher, t_name, f"{key}.teacher")
        find_module(student, s_name, f"{key}.student")
    if cfg.prune is not None:
        for name in cfg.prune.ignore:
            find_module(student, name, "prune.ignore")
