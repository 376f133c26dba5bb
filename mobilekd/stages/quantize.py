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
from mobilekd.evaluate import evaluate
from mobilekd.specs import HEADLINE
from mobilekd.stages.prune import example_inputs, save_program
from mobilekd.store import atomic_path, write_json


CALIBRATION_BATCH = 32  # calibration samples per forward pass; PT2E models take any batch


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
    batches = [tuple(torch.from_numpy(calib[k][i : i + CALIBRATION_BATCH]) for k in names)
               for i in range(0, n, CALIBRATION_BATCH)]
    result = QuantizeResult(calibration=ctx.rel(calib_path), calibration_samples=n)
    student = ctx.student()
    keep_float: list[str] = list(cfg.keep_float)
    q.check_module_names(student, keep_float, "quantize.keep_float")
    result.keep_float = keep_float
    if cfg.onnx is not None:
        result.schemes["onnx"] = q.scheme_label("onnx", cfg.onnx, keep_float=keep_float)
    if cfg.coreml is not None:
        result.schemes["coreml"] = q.scheme_label("coreml", cfg.coreml)
    if cfg.executorch is None:
        return result
    example = example_inputs(ctx)
    if cfg.sensitivity or cfg.max_metric_drop is not None:
        from mobilekd.compress import sensitivity as sens

        metric = HEADLINE[ds.info.task]

        def score(model: Any) -> float:
            return evaluate(model, ds.val, ds.info)[metric]

        per_channel = cfg.executorch.per_channel
        table = sens.layer_sensitivity(student, example, batches, score, per_channel=per_channel) if cfg.sensitivity else []
        if cfg.max_metric_drop is not None:
            fb = sens.fallback(student, example, batches, score, max_metric_drop=cfg.max_metric_drop,
                               max_float_layers=cfg.max_float_layers, per_channel=per_channel, table=table or None,
                               always_float=keep_float)
            table, keep_float = fb.table or table, list(fb.keep_float)
        if table:
            result.sensitivity = ctx.rel(write_json(out / "sensitivity.json", [row.model_dump() for row in table]))
    if cfg.executorch.scheme == "qat":
        quantized = _qat(ctx, cfg, student, example, keep_float)
    else:
        quantized = q.quantize_pt2e(student, example, batches, scheme=cfg.executorch.scheme,
                                    per_channel=cfg.executorch.per_channel, keep_float=keep_float)
    path = out / "student_int8.pt2"
    save_program(quantized, example, path)
    result.model = ModelRef(kind="program", path=ctx.rel(path))
    ctx.remember(result.model, quantized)
    result.metrics = evaluate(quantized, ds.test, ds.info)
    result.schemes["executorch"] = q.scheme_label("executorch", cfg.executorch, keep_float=keep_float)
    result.keep_float = keep_float
    return result


def _qat(ctx: RunContext, cfg: QuantizeConfig, student: Any, example: tuple[torch.Tensor, ...],
         keep_float: list[str]) -> Any:
    """Quantization-aware training: fake-quant inserted by PT2E, fine-tuned with the KD loss
    against the teacher (labels and soft targets as in the distill stage), then converted."""
    import copy

    from torchao.quantization.pt2e import move_exported_model_to_train

    from mobilekd.compress import quantize as q
    from mobilekd.distill.trainer import batch_targets, seed_everything, train_targets
    from mobilekd.stages.distill import recovery_objective

    ds = ctx.dataset()
    objective, settings = recovery_objective(ctx)
    prepared = q.prepare_qat(copy.deepcopy(student), example, per_channel=cfg.executorch.per_channel,
                             keep_float=keep_float)
    move_exported_model_to_train(prepared)
    gen = seed_everything(ctx.config.seed)
    xs = [torch.from_numpy(ds.train.inputs[s.name]) for s in ds.info.inputs]
    ys = train_targets(ds.train)
    opt = torch.optim.Adam(prepared.parameters(), lr=cfg.qat_lr)
    n = len(ds.train)
    with ctx.reporter.task("qat epochs", total=cfg.qat_epochs) as advance:
        for _ in range(cfg.qat_epochs):
            perm = torch.randperm(n, generator=gen)
            for i in range(0, n, settings.batch_size):
                idx = perm[i : i + settings.batch_size]
                y = batch_targets(ys, idx, ds.info.num_outputs)  # next-invoice rows -> distributions
                loss, _ = objective(prepared, tuple(x[idx] for x in xs), y, idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            advance(1, info=f"loss {float(loss):.4f}")
    return q.convert_qat(prepared)
