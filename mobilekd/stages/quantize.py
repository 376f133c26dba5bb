"""quantize stage: int8 post-training quantization of the student, calibrated on real training
samples. The PT2E (XNNPACKQuantizer) model is scored here; the ONNX and CoreML routes reuse the
same calibration samples in the export stage, each through its own library."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import BaseModel

from mobilekd.config import QuantizeConfig
from mobilekd.context import ModelRef, RunContext
from mobilekd.evaluate import HEADLINE, evaluate
from mobilekd.stages.prune import example_inputs, save_program
from mobilekd.store import atomic_path, write_json


class QuantizeResult(BaseModel):
    model: ModelRef | None = None  # the PT2E int8 program (ExecuTorch route)
    metrics: dict[str, float] = {}
    calibration: str  # npz of the calibration inputs, for the ONNX route
    calibration_samples: int
    schemes: dict[str, str] = {}
    keep_float: list[str] = []
    sensitivity: str | None = None


def calibration_split(ctx: RunContext, n: int) -> dict[str, np.ndarray]:
    ds = ctx.dataset()
    rng = np.random.default_rng(ctx.config.seed)
    idx = np.sort(rng.choice(len(ds.train), size=min(n, len(ds.train)), replace=False))
    return {s.name: ds.train.inputs[s.name][idx] for s in ds.info.inputs}


def run(cfg: QuantizeConfig, ctx: RunContext) -> QuantizeResult:
    from mobilekd.compress import quantize as q

    ds = ctx.dataset()
    out = ctx.stage_dir("quantize")
    calib = calibration_split(ctx, cfg.calibration_samples)
    calib_path = out / "calibration.npz"
    with atomic_path(calib_path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **calib)
    n = len(next(iter(calib.values())))
    names = [s.name for s in ds.info.inputs]
    batches = [tuple(torch.from_numpy(calib[k][i : i + 1]) for k in names) for i in range(n)]
    result = QuantizeResult(calibration=ctx.rel(calib_path), calibration_samples=n)
    if cfg.onnx is not None:
        result.schemes["onnx"] = q.scheme_label("onnx", cfg.onnx)
    if cfg.coreml is not None:
        result.schemes["coreml"] = q.scheme_label("coreml", cfg.coreml)
    if cfg.executorch is None:
        return result
    student = ctx.student()
    example = example_inputs(ctx)
    keep_float: list[str] = []
    if cfg.sensitivity or cfg.max_metric_drop is not None:
        from mobilekd.compress import sensitivity as sens

        metric = HEADLINE[ds.info.task]

        def score(model: Any) -> float:
            return evaluate(model, ds.val, ds.info)[metric]

        if cfg.max_metric_drop is not None:
            fb = sens.fallback(student, example, batches, score, max_metric_drop=cfg.max_metric_drop,
                               max_float_layers=cfg.max_float_layers, per_channel=cfg.executorch.per_channel)
            table, keep_float = fb.table, list(fb.keep_float)
        else:
            table = sens.layer_sensitivity(student, example, batches, score, per_channel=cfg.executorch.per_channel)
        result.sensitivity = ctx.rel(write_json(out / "sensitivity.json", [row.model_dump() for row in table]))
    scheme = "dynamic" if cfg.executorch.scheme == "dynamic" else "static"
    quantized = q.quantize_pt2e(student, example, batches, scheme=scheme,
                                per_channel=cfg.executorch.per_channel, keep_float=keep_float)
    path = out / "student_int8.pt2"
    save_program(quantized, example, path)
    result.model = ModelRef(kind="program", path=ctx.rel(path))
    ctx._memo[f"model:{result.model.path}"] = quantized
    result.metrics = evaluate(quantized, ds.test, ds.info)
    result.schemes["executorch"] = q.scheme_label("executorch", cfg.executorch)
    result.keep_float = keep_float
    return result
