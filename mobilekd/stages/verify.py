"""verify stage: run every exported file on its real runtime over held-out real inputs and compare
it with the PyTorch student. CoreML on Linux is loaded and checked, never reported as passed."""

from __future__ import annotations

from pydantic import BaseModel

from mobilekd.config import VerifyConfig
from mobilekd.context import RunContext
from mobilekd.evaluate import predict
from mobilekd.export.types import ExportedModel, Parity


class VerifyResult(BaseModel):
    samples: int
    reference: str
    parity: dict[str, Parity]  # keyed "format/variant"
    metrics: dict[str, dict[str, float]] = {}  # retrieval: each executed file's metrics on the test split


def artifact_key(a: ExportedModel) -> str:
    return f"{a.format}/{a.variant}"


def precision(a: ExportedModel, ctx: RunContext) -> str:
    if a.variant != "fp32":
        return "int8"
    export = ctx.config.export
    if a.format == "coreml" and export is not None and export.coreml.compute_precision == "fp16":
        return "fp16"
    return "fp32"


def test_feeds(ctx: RunContext, samples: int) -> tuple[list[dict], object]:
    """Batch-1 feeds of the first `samples` held-out test rows, and that slice of the split."""
    ds = ctx.dataset()
    part = ds.test.take(slice(0, min(samples, len(ds.test))))
    feeds = [{k: v[i : i + 1] for k, v in part.inputs.items()} for i in range(len(part))]
    return feeds, part


def run(cfg: VerifyConfig, ctx: RunContext) -> VerifyResult:
    from mobilekd.export.types import DEFAULT_TOLERANCES
    from mobilekd.export.verify import verify_file

    ds = ctx.dataset()
    exported = ctx.require("export", "verify").artifacts
    feeds, part = test_feeds(ctx, cfg.samples)
    stage, _ = ctx.student_ref()
    student = ctx.student()
    reference = predict(student, part, ds.info)
    parity: dict[str, Parity] = {}
    file_scores: dict[str, dict[str, float]] = {}
    with ctx.reporter.task("verify", total=len(exported)) as advance:
        for a in exported:
            prec = precision(a, ctx)
            tol = cfg.tolerances.get(prec, DEFAULT_TOLERANCES[prec])
            absolute = a.model_copy(update={"path": str(ctx.path(a.path))})
            parity[artifact_key(a)] = verify_file(absolute, reference, feeds, task=ds.info.task, tolerance=tol,
                                                  k=cfg.k, inputs_kind="real", model=student)
            if ds.info.task == "retrieval":
                from mobilekd.stages.verify_text import file_metrics

                scores = file_metrics(absolute, ds)
                if scores is not None:
                    file_scores[artifact_key(a)] = scores
            advance(1, info=f"{artifact_key(a)}: {parity[artifact_key(a)].status}")
    return VerifyResult(samples=len(feeds), reference=f"PyTorch student ({stage} stage), fp32 eager", parity=parity,
                        metrics=file_scores)
