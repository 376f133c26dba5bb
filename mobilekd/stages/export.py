"""export stage: write the student (fp32) and its int8 versions in the formats phones run."""

from __future__ import annotations

import shutil

import numpy as np
from pydantic import BaseModel

from mobilekd.config import ExportConfig
from mobilekd.context import RunContext
from mobilekd.export.types import TASK_OUTPUT, ExportedModel


class ExportResult(BaseModel):
    artifacts: list[ExportedModel]
    skipped: list[str] = []


def run(cfg: ExportConfig, ctx: RunContext) -> ExportResult:
    from mobilekd.compress import quantize as q
    from mobilekd.export import SUFFIX
    from mobilekd.export.executorch import export_executorch

    ds = ctx.dataset()
    out = ctx.stage_dir("export")
    inputs, outputs = list(ds.info.inputs), [TASK_OUTPUT[ds.info.task].name]
    student = ctx.student()
    qres, qcfg = ctx.result("quantize"), ctx.config.quantize
    artifacts: list[ExportedModel] = []
    skipped: list[str] = []

    def keep(a: ExportedModel) -> None:
        artifacts.append(a.model_copy(update={"path": ctx.rel(a.path)}))

    n = len(cfg.formats) * len(cfg.variants)
    with ctx.reporter.task("export", total=n) as advance:
        for fmt in cfg.formats:
            fp32 = None
            if "fp32" in cfg.variants or ("int8" in cfg.variants and fmt in ("onnx", "coreml")):
                fp32 = _export_fp32(fmt, student, inputs, outputs, out, cfg)
                if "fp32" in cfg.variants:
                    keep(fp32)
                advance(1, info=f"{fmt} fp32")
            if "int8" not in cfg.variants:
                continue
            scheme_cfg = getattr(qcfg, fmt, None) if qcfg is not None else None
            if qres is None or scheme_cfg is None:
                skipped.append(f"{fmt}/int8: quantize.{fmt} is off")
                advance(1, info=f"{fmt} int8 skipped")
                continue
            path = out / f"student_int8{SUFFIX[fmt]}"
            if fmt == "executorch":
                program = ctx.load_model(qres.model, "quantize")
                keep(export_executorch(program, inputs, outputs, path, cfg.executorch,
                                       variant="int8", scheme=qres.schemes["executorch"]))
            elif fmt == "onnx":
                with np.load(ctx.path(qres.calibration)) as z:
                    calib = {k: z[k] for k in z.files}
                count = len(next(iter(calib.values())))
                feeds = [{k: v[i : i + 1] for k, v in calib.items()} for i in range(count)]
                scheme = q.quantize_onnx(fp32.path, path, options=scheme_cfg, calibration_feeds=feeds,
                                         keep_float=qres.keep_float)
                keep(_describe("onnx", "int8", path, fp32, scheme, ctx.rel(fp32.path)))
            else:
                scheme = q.quantize_coreml(fp32.path, path, options=scheme_cfg)
                keep(_describe("coreml", "int8", path, fp32, scheme, ctx.rel(fp32.path)))
            advance(1, info=f"{fmt} int8")
    if "fp32" not in cfg.variants:
        for stale in out.glob("student_fp32.*"):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    return ExportResult(artifacts=artifacts, skipped=skipped)


def _export_fp32(fmt: str, model, inputs, outputs, out, cfg: ExportConfig) -> ExportedModel:
    from mobilekd.export import SUFFIX, export_model

    return export_model(fmt, model, inputs, outputs, out / f"student_fp32{SUFFIX[fmt]}",  # type: ignore[arg-type]
                        options=getattr(cfg, fmt), variant="fp32")


def _describe(fmt: str, variant: str, path, like: ExportedModel, scheme: str, source: str) -> ExportedModel:
    """An int8 file made from an fp32 one by a quantization tool keeps its inputs and outputs."""
    return ExportedModel.of_file(format=fmt, variant=variant, path=path, inputs=like.inputs, outputs=like.outputs,
                                 scheme=scheme, details={"from": source})
